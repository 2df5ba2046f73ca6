"""IR: serialisation round trip and the verifier's actionable messages."""

import numpy as np
import pytest
import torch

import modelblocks
from modelblocks.errors import GraphError
from modelblocks.ir import DType, Graph, Node, Tensor, load_graph, save_graph, verify
from modelblocks.models import tiny_vit


def _small_graph() -> Graph:
    g = Graph(name="g")
    g.add_tensor(Tensor("x", (2, 4), DType.float32))
    g.inputs.append("x")
    w = g.add_constant("w", np.arange(12, dtype=np.float32).reshape(3, 4) / 7).name
    b = g.add_constant("b", np.array([1e-7, -0.0, 3.5], dtype=np.float32)).name
    g.add_tensor(Tensor("y", (2, 3), DType.float32))
    g.add_tensor(Tensor("z", (2, 3), DType.float32))
    g.nodes.append(Node("fc", "linear", ("x", w, b), ("y",), {"act_min": None, "act_max": None}, "fc", "m.py:3"))
    g.nodes.append(Node("act", "clamp", ("y",), ("z",), {"min": 0.0, "max": 6.0}, "act", "m.py:4"))
    g.outputs.append("z")
    return g


def test_round_trip_small_graph(tmp_path):
    g = _small_graph()
    verify(g)
    save_graph(g, tmp_path)
    back = load_graph(tmp_path)
    assert back.same_as(g)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_array_equal(modelblocks.interpreter.run(back, [x])[0], modelblocks.interpreter.run(g, [x])[0])


def test_round_trip_vit_bit_identical(tmp_path):
    model, example = tiny_vit.build()
    compiled = modelblocks.compile(model, example)
    compiled.save(tmp_path / "out")
    back = modelblocks.load(tmp_path / "out")
    assert back.graph.same_as(compiled.graph)
    assert back.source.files == compiled.source.files
    x = example[0].numpy()
    np.testing.assert_array_equal(back.run_reference([x])[0], compiled.run_reference([x])[0])


def _expect(graph, *words):
    with pytest.raises(GraphError) as err:
        verify(graph, after="test_pass")
    for w in words:
        assert w in str(err.value), str(err.value)


def test_verifier_names_the_problem():
    g = _small_graph()
    g.nodes.reverse()
    _expect(g, "node act", "reads y before it is produced", "topological", "after pass 'test_pass'", "m.py:4")

    g = _small_graph()
    g.nodes[1] = g.nodes[1].replace(inputs=("nowhere",))
    _expect(g, "dangling", "nowhere")

    g = _small_graph()
    g.tensors["z"] = Tensor("z", (2, 5), DType.float32)
    _expect(g, "output z is declared float32[2, 5] but the op gives float32[2, 3]")

    g = _small_graph()
    g.nodes[1] = g.nodes[1].replace(attrs={"min": "zero", "max": 6.0})
    _expect(g, "attribute min='zero' is not of kind opt_float")

    g = _small_graph()
    g.nodes[1] = g.nodes[1].replace(op="frobnicate")
    _expect(g, "op 'frobnicate' is not registered")

    g = _small_graph()
    g.add_tensor(Tensor("orphan", (1,), DType.float32))
    _expect(g, "tensors nobody reads or writes", "orphan")

    g = _small_graph()
    g.nodes[0] = g.nodes[0].replace(inputs=("x", "w"))
    _expect(g, "takes 3..3 inputs, got 2")


def test_verifier_checks_constant_data():
    g = _small_graph()
    t = g.tensors["w"]
    g.tensors["w"] = Tensor("w", t.shape, t.dtype, data=t.data.astype(np.float64))
    _expect(g, "constant w holds data float64")


def test_every_registered_op_is_complete():
    from modelblocks.ops.registry import Prop, all_ops

    for name, op in all_ops().items():
        assert op.name == name
        assert callable(op.infer) and callable(op.reference)
        assert op.emit is not None or op.has(Prop.ALIAS), name
        assert op.emit is None or op.kernels or op.has(Prop.IDENTITY), f"{name} emits C but names no kernel"
    assert torch is not None


def test_every_op_is_in_the_readme_table():
    import re
    from pathlib import Path

    from modelblocks.ops.registry import all_ops

    readme = Path(__file__).resolve().parents[1] / "README.md"
    documented = set(re.findall(r"`([a-z_0-9]+)`", readme.read_text().split("## Supported ops")[1].split("## ")[0]))
    missing = sorted(set(all_ops()) - documented)
    assert not missing, f"ops missing from README's supported-ops table: {missing}"
