"""Hostile and broken inputs (issue 9): each gets a clear error naming the cause and the place,
through the command line (exit code + message) and, where it applies, the Python API.

Already covered elsewhere, not repeated here: state_dict with missing / unexpected / mis-shaped keys
and a non-torch file (test_errors.py::test_file_and_option_errors), unsupported ops
(test_errors.py, test_cli_polish.py), data-dependent control flow through the API and empty
dimensions through the API (test_errors.py, test_edge_cases.py), a whole pickled model
(test_cli.py), analyze's "does not fit" verdict (test_cli_polish.py, test_analyze.py)."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from helpers import MLP_PY

import modelblocks
from modelblocks import cli
from modelblocks.errors import InputError, NonFiniteWeightsWarning, UnsupportedOpError
from modelblocks.frontend.loader import import_file
from modelblocks.metrics import rel_l2

MODEL_PY = MLP_PY + textwrap.dedent("""\


    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            if x.sum() > 0:
                return self.fc(x)
            return -self.fc(x)


    class Wide(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(512, 600)

        def forward(self, x):
            return self.fc(x)


    class Conv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            return self.conv(x)
    """)


class Evil:
    """A pickle that would run a shell command when loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    (d / "model.py").write_text(MODEL_PY)
    module = import_file(d / "model.py")
    torch.manual_seed(0)
    state = module.MLP().state_dict()
    torch.save(state, d / "good.pth")
    data = (d / "good.pth").read_bytes()
    (d / "truncated.pth").write_bytes(data[: len(data) // 2])
    (d / "foreign.pth").write_bytes(b"hello world, not a checkpoint " * 10)  # the legacy-pickle path: KeyError
    bad = {k: v.clone() for k, v in state.items()}
    bad["fc1.weight"][0, :3] = float("nan")
    bad["fc2.bias"][1] = float("inf")
    torch.save(bad, d / "nonfinite.pth")
    torch.save({"fc1.weight": Evil(d / "PWNED")}, d / "evil.pth")
    ep = torch.export.export(module.MLP().eval(), (torch.randn(1, 8),))
    torch.export.save(ep, d / "good.pt2")
    data = (d / "good.pt2").read_bytes()
    (d / "truncated.pt2").write_bytes(data[: len(data) // 2])
    onnx.save(_gemm_onnx(np.ones((4, 8), np.float32)), d / "good.onnx")
    data = (d / "good.onnx").read_bytes()
    (d / "truncated.onnx").write_bytes(data[: len(data) // 2])
    nan_w = np.ones((4, 8), np.float32)
    nan_w[2, 5] = np.nan
    onnx.save(_gemm_onnx(nan_w), d / "nan.onnx")
    return d


def _gemm_onnx(weight: np.ndarray) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    init = numpy_helper.from_array(weight, "head.weight")
    node = helper.make_node("Gemm", ["x", "head.weight"], ["y"], name="head", transB=1)
    graph = helper.make_graph([node], "g", [x], [y], [init])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def compile_argv(d, spec, *extra):
    return ["compile", spec if str(spec).endswith((".pt2", ".onnx")) else f"{d}/{spec}", "-o", d / "out",
            "--no-verify", *extra]


# -- corrupt and truncated files --------------------------------------------------------------------

@pytest.mark.parametrize("spec, extra, needles", [
    ("model.py:MLP", ["-s", "1,8", "-w", "{d}/truncated.pth"],
     ["cannot read weights file", "truncated.pth", "not a complete file written by torch.save"]),
    ("model.py:MLP", ["-s", "1,8", "-w", "{d}/foreign.pth"],
     ["cannot read weights file", "foreign.pth", "not a complete file written by torch.save"]),
    ("{d}/truncated.pt2", [], ["cannot load", "truncated.pt2", "torch.export program"]),
    ("{d}/truncated.onnx", [], ["truncated.onnx is not a readable ONNX model", "copied completely"]),
], ids=["pth-truncated", "pth-foreign-bytes", "pt2-truncated", "onnx-truncated"])
def test_corrupt_files_exit_2_naming_the_file(d, capsys, spec, extra, needles):
    argv = compile_argv(d, spec.replace("{d}", str(d)), *[e.replace("{d}", str(d)) for e in extra])
    code, out, err = run(argv, capsys)
    assert code == cli.EXIT_USER_ERROR, err
    for needle in needles:
        assert needle in err
    assert "Traceback" not in err and "internal error" not in err
    assert not (d / "out").exists()


def test_malicious_pickle_is_never_run(d, capsys):
    code, _, err = run(compile_argv(d, "model.py:MLP", "-s", "1,8", "-w", d / "evil.pth"), capsys)
    assert code == cli.EXIT_USER_ERROR
    assert not (d / "PWNED").exists()  # weights_only=True: the os.system call was never made
    assert "evil.pth" in err and "system" in err and "--trust-pickle" in err and "did not run it" in err


# -- NaN and Inf weights -----------------------------------------------------------------------------

def test_nonfinite_weights_refused_on_the_command_line(d, capsys):
    code, _, err = run(compile_argv(d, "model.py:MLP", "-s", "1,8", "-w", d / "nonfinite.pth"), capsys)
    assert code == cli.EXIT_USER_ERROR
    assert "fc1.weight: 3 NaN of 128 values" in err and "fc2.bias: 1 +Inf of 4 values" in err
    assert "--allow-nonfinite" in err
    assert not (d / "out").exists()


def test_allow_nonfinite_compiles_with_a_warning(d, capsys):
    argv = compile_argv(d, "model.py:MLP", "-s", "1,8", "-w", d / "nonfinite.pth", "--allow-nonfinite")
    code, _, err = run(argv, capsys)
    assert code == cli.EXIT_OK, err
    assert "warning: 2 weight tensor(s)" in err and "fc1.weight: 3 NaN" in err
    assert (d / "out" / "model.c").is_file()


def test_study_refuses_nonfinite_weights_before_any_point(d, capsys):
    np.savez(d / "eval.npz", x=np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32))
    argv = ["study", f"{d}/model.py:MLP", "-s", "1,8", "-w", d / "nonfinite.pth", "--data", d / "eval.npz",
            "--sparsity", "0.5", "--code", "none", "-o", d / "study"]
    code, _, err = run(argv, capsys)
    assert code == cli.EXIT_USER_ERROR
    assert "fc1.weight: 3 NaN of 128 values" in err and "fc2.bias: 1 +Inf of 4 values" in err
    assert "A study measures accuracy" in err and "allow_nonfinite" not in err
    assert not (d / "study").exists()


def _nan_mlp():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)).eval()
    with torch.no_grad():
        model[2].weight[1, 0] = float("nan")  # poisons output column 1 only
    return model


def test_nonfinite_weights_api_names_the_parameter():
    with pytest.raises(InputError) as info:
        modelblocks.compile(_nan_mlp(), (torch.randn(1, 8),))
    msg = str(info.value)
    assert "2.weight: 1 NaN of 64 values" in msg and "allow_nonfinite=True" in msg


def test_allow_nonfinite_api_c_matches_torch_including_the_nan():
    model, x = _nan_mlp(), torch.randn(3, 8)
    with pytest.warns(NonFiniteWeightsWarning, match=r"2\.weight: 1 NaN"):
        compiled = modelblocks.compile(model, (x,), allow_nonfinite=True)
    got = compiled.run_c([x.numpy()])[0]
    want = model(x).detach().numpy()
    assert np.isnan(want[:, 1]).all() and np.isnan(got[:, 1]).all()
    assert rel_l2(np.delete(got, 1, axis=1), np.delete(want, 1, axis=1)) < 1e-5


class MaskedScores(torch.nn.Module):
    """A buffer of -inf above the diagonal: an additive attention mask, not a broken weight."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mask", torch.full((4, 4), float("-inf")).triu(1))

    def forward(self, x):
        return torch.softmax(x @ x.transpose(-1, -2) + self.mask, dim=-1)


def test_minus_inf_mask_buffer_is_accepted_and_correct():
    model, x = MaskedScores().eval(), torch.randn(1, 4, 3)
    compiled = modelblocks.compile(model, (x,))
    assert rel_l2(compiled.run_c([x.numpy()])[0], model(x).numpy()) < 1e-5


def test_nonfinite_onnx_initializer(d, capsys):
    with pytest.raises(InputError) as info:
        modelblocks.compile(str(d / "nan.onnx"))
    assert "head.weight: 1 NaN of 32 values" in str(info.value) and "nan.onnx" in str(info.value)
    code, _, err = run(compile_argv(d, d / "nan.onnx"), capsys)
    assert code == cli.EXIT_USER_ERROR and "head.weight: 1 NaN of 32 values" in err


# -- shapes -------------------------------------------------------------------------------------------

def test_zero_sized_input_shape_on_the_command_line(d, capsys):
    code, _, err = run(compile_argv(d, "model.py:MLP", "-s", "1,0"), capsys)
    assert code == cli.EXIT_USER_ERROR and "--input-shape '1,0' has a dimension <= 0" in err


def test_shape_beyond_int32_refused_before_allocating(d, capsys):
    code, _, err = run(compile_argv(d, "model.py:MLP", "-s", "65536,65536,8"), capsys)
    assert code == cli.EXIT_USER_ERROR
    assert "input 0 of shape [65536, 65536, 8]" in err and "int32_t" in err


def test_tensor_beyond_int32_refused_by_compile():
    """Compiled from the ONNX file's declared shapes: nothing of this size is ever allocated."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1 << 29])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1 << 29])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="act")], "g", [x], [y])
    with pytest.raises(InputError, match=r"input 'x' has shape \[1, 536870912\]: 536,870,912 elements, "
                                         r"2,147,483,648 bytes.*int32_t"):
        modelblocks.compile(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_arena_beyond_int32_refused_by_compile():
    """Each tensor fits in 2**31 bytes (1 GiB of float32 each), the ones alive together at 'pick' do not: the
    arena's int32_t offsets could not reach them. Compiled from declared shapes, nothing is allocated."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1 << 28])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1 << 28])
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="act"), helper.make_node("Neg", ["a"], ["b"], name="neg"),
             helper.make_node("Abs", ["a"], ["c"], name="abs"), helper.make_node("Greater", ["b", "c"], ["m"], name="cmp"),
             helper.make_node("Where", ["m", "b", "c"], ["d"], name="pick"),
             helper.make_node("Add", ["a", "d"], ["y"], name="sum")]
    graph = helper.make_graph(nodes, "g", [x], [y])
    # b, c (1 GiB each), the mask m (256 MiB) and the result d (1 GiB) are alive at once
    with pytest.raises(InputError, match=r"the activation arena needs 3,489,660,928 bytes, more than the 2\*\*31 - 1 "
                                         r"the generated C can address.*at layer 'pick' \(op where\)"):
        modelblocks.compile(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_compile_for_the_board_says_when_weights_do_not_fit(d, capsys):
    """Linear(512, 600): 1.23 MB of float32 weights, the NUCLEO-H723ZG has 1 MB of flash."""
    code, out, err = run(compile_argv(d, "model.py:Wide", "-s", "1,512", "--target", "stm32h723zg"), capsys)
    assert code == cli.EXIT_CHECK_FAILED, err
    assert "stm32h723zg: does not fit" in out and "flash" in out
    assert (d / "out" / "model.c").is_file() and not (d / "out" / "stm32h723zg").exists()


def test_compile_for_the_board_says_when_the_arena_does_not_fit_dtcm(d, capsys):
    """Conv2d(3, 8) on 64x64: a 128 KB arena plus the stack overflows DTCM (AXI SRAM would hold it);
    the board as a whole fits, so the firmware link is what finds it and says so."""
    code, _, err = run(compile_argv(d, "model.py:Conv", "-s", "1,3,64,64", "--target", "stm32h723zg"), capsys)
    assert code == cli.EXIT_USER_ERROR, err
    assert "does not fit the NUCLEO-H723ZG" in err and "region DTCM is" in err and "axisram" in err


# -- dtypes -------------------------------------------------------------------------------------------

def test_float64_model_compiles_to_float32_with_a_warning():
    torch.manual_seed(2)
    model, x = torch.nn.Sequential(torch.nn.Linear(8, 4)).double().eval(), torch.randn(2, 8, dtype=torch.float64)
    with pytest.warns(UserWarning, match="is float64: the C computes in float32"):
        compiled = modelblocks.compile(model, (x,))
    assert compiled.graph.tensors[compiled.graph.inputs[0]].dtype.value == "float32"
    assert rel_l2(compiled.run_c([x.numpy().astype(np.float32)])[0], model(x).detach().numpy()) < 1e-5


def test_float64_on_the_command_line_is_refused_with_the_choices(d, capsys):
    code, _, err = run(compile_argv(d, "model.py:MLP", "-s", "1,8", "--input-dtype", "float64"), capsys)
    assert code == cli.EXIT_USER_ERROR and "--input-dtype float64 is not supported; choose one of float32" in err


class ComplexIn(torch.nn.Module):
    def forward(self, z):
        return torch.view_as_real(z) * 2


def test_complex_input_is_refused():
    with pytest.raises(UnsupportedOpError, match=r"z has dtype complex64: the generated C has no complex numbers.*"
                                                 r"view_as_real"):
        modelblocks.compile(ComplexIn(), (torch.randn(1, 4, dtype=torch.complex64),))


class MaskedSelect(torch.nn.Module):
    def forward(self, x, keep):
        return torch.where(keep, x, torch.zeros_like(x)) * 2


def test_bool_input_is_supported_and_exact():
    x, keep = torch.randn(2, 8), torch.rand(2, 8) > 0.5
    compiled = modelblocks.compile(MaskedSelect(), (x, keep))
    assert compiled.graph.tensors[compiled.graph.inputs[1]].dtype.value == "bool"
    np.testing.assert_array_equal(compiled.run_c([x.numpy(), keep.numpy()])[0], MaskedSelect()(x, keep).numpy())


# -- control flow and output folders -----------------------------------------------------------------

def test_data_dependent_control_flow_on_the_command_line(d, capsys):
    code, _, err = run(compile_argv(d, "model.py:Branchy", "-s", "1,8"), capsys)
    line = next(k + 1 for k, text in enumerate(MODEL_PY.splitlines()) if "if x.sum() > 0" in text)
    assert code == cli.EXIT_UNSUPPORTED
    assert f"model.py:{line} (`if x.sum() > 0:`)" in err and "torch.where" in err


def test_output_folder_under_a_file(d, capsys):
    code, _, err = run(["compile", f"{d}/model.py:MLP", "-s", "1,8", "--no-verify", "-o", d / "good.pth" / "sub"],
                       capsys)
    assert code == cli.EXIT_USER_ERROR
    assert f"cannot create the output folder {d}/good.pth/sub: {d}/good.pth is a file, not a folder" in err
    compiled = modelblocks.compile(torch.nn.Linear(8, 4).eval(), (torch.randn(1, 8),))
    with pytest.raises(InputError, match=r"cannot write the output folder .*good.pth/sub: .*good.pth is a file"):
        compiled.save(d / "good.pth" / "sub")
    assert (d / "good.pth").is_file()  # untouched
