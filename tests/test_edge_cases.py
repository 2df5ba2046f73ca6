"""Edge cases found in review: each must give the right numbers or a clear error, never silently
wrong C."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import modelblocks
from helpers import check_model, op_model
from modelblocks.errors import ExportError, InputError, ModelBlocksError, UnsupportedOpError


class Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.register_buffer("calls", torch.zeros(1))

    def forward(self, x):
        self.calls.add_(1)
        return self.fc(x)


def test_state_mutation_is_refused():
    with pytest.raises(UnsupportedOpError, match="modifies buffer 'calls' in place"):
        modelblocks.compile(Counter(), (torch.randn(1, 3),))
    with pytest.raises(UnsupportedOpError, match="modifies input"):
        modelblocks.compile(op_model(lambda x: x.mul_(2) + 1), (torch.randn(3),))


@dataclass
class Pair:
    a: torch.Tensor
    b: torch.Tensor


torch.export.register_dataclass(Pair)


def test_verify_compares_every_output_of_a_dataclass():
    model = op_model(lambda x: Pair(torch.tanh(x), x * 2))
    results = modelblocks.verify(model, (torch.randn(2, 3),), runs=2, print_table=False)
    assert [r.name for r in results] == ["output0", "output1"]
    assert all(r.rel_l2_c < 1e-6 for r in results)


@pytest.mark.parametrize("prefix", ["mb_linear", "mb_common", "main", "int"])
def test_reserved_prefixes(prefix):
    with pytest.raises(InputError, match="reserved"):
        modelblocks.compile(nn.Linear(2, 2), (torch.randn(1, 2),), name=prefix)


class Clashing(nn.Module):
    """Names that sanitize to the same C identifier, or to names the generated code uses itself."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.fc_ = nn.Linear(3, 3)
        self.register_buffer("run", torch.randn(3))
        self.register_buffer("arena", torch.randn(3))

    def forward(self, out0, x_):
        return self.fc(out0) + self.fc_(x_) * self.run - self.arena


def test_colliding_names_get_distinct_c_symbols():
    res = check_model(Clashing(), (torch.randn(2, 3), torch.randn(2, 3)), sanitize=True)
    weights = res["compiled"].source.files["model_weights.h"]
    assert "model_fc_weight[9]" in weights and "model_fc_weight_1[9]" in weights
    assert "model_run_1" in weights and "model_arena_1" in weights


def test_empty_dimension_is_refused():
    with pytest.raises(ExportError, match="empty dimension"):
        modelblocks.compile(op_model(lambda x: torch.sigmoid(x * 2)), (torch.randn(0, 3),))


def test_bad_pass_list_and_section_are_refused():
    with pytest.raises(InputError, match="pass names"):
        modelblocks.compile(nn.Linear(2, 2), (torch.randn(1, 2),), passes=("nope",))
    with pytest.raises(InputError, match="pass names"):
        modelblocks.compile(nn.Linear(2, 2), (torch.randn(1, 2),), passes="dead_code")
    with pytest.raises(InputError, match="linker section"):
        modelblocks.compile(nn.Linear(2, 2), (torch.randn(1, 2),), arena_section='x") evil("')


def test_malformed_ir_file_is_an_input_error(tmp_path):
    compiled = modelblocks.compile(nn.Linear(2, 2), (torch.randn(1, 2),), name="lin")
    compiled.save(tmp_path / "out")
    model_json = tmp_path / "out" / "ir" / "model.json"
    text = model_json.read_text()
    model_json.write_text(text.replace('"float32"', '"float17"', 1))
    with pytest.raises(InputError, match="not a valid ModelBlocks IR file"):
        modelblocks.load(tmp_path / "out")
    model_json.write_text(text)
    assert modelblocks.load(tmp_path / "out").prefix == "lin"  # the saved name is kept


def test_verify_accepts_an_exported_program():
    ep = torch.export.export(nn.Sequential(nn.Linear(4, 3), nn.Tanh()).eval(), (torch.randn(2, 4),))
    results = modelblocks.verify(ep, runs=2, print_table=False)
    assert results[0].rel_l2_c < 1e-5


def test_clamp_with_min_above_max_matches_torch():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), op_model(lambda x: torch.clamp(x, min=0.5, max=-0.5)))
    res = check_model(model, torch.randn(1, 2, 5, 5), sanitize=False)
    np.testing.assert_array_equal(res["compiled"].run_c([torch.randn(1, 2, 5, 5).numpy()])[0], -0.5)


@pytest.mark.parametrize("name,fn,match", [
    ("copy_other_dtype", lambda x: torch.zeros_like(x, dtype=torch.int32).copy_(x * 3), "copy_ into a tensor"),
    ("pool_indices", lambda x: F.max_pool2d(x, 2, return_indices=True)[1], "indices"),
    ("layer_norm_stats", lambda x: torch.ops.aten.native_layer_norm(x, [4], None, None, 1e-5)[1] * 2, "output 1"),
    ("full_like_overflow", lambda x: torch.full_like(x, 3e9, dtype=torch.long), "does not fit"),
    ("batch_norm_no_stats", nn.BatchNorm2d(4, track_running_stats=False), "track_running_stats=False"),
])
def test_unsupported_variants_say_why(name, fn, match):
    model = fn if isinstance(fn, nn.Module) else op_model(fn)
    with pytest.raises(ModelBlocksError, match=match):
        modelblocks.compile(model.eval(), (torch.randn(1, 4, 4, 4),))


@pytest.mark.parametrize("offset,std,n", [(10.0, 0.1, 256), (100.0, 1.0, 256), (20.0, 0.5, 768)])
def test_layer_norm_rows_with_a_large_offset(offset, std, n):
    x = torch.randn(4, n) * std + offset
    check_model(nn.LayerNorm(n), x, sanitize=False)


def test_softmax_over_a_long_row():
    check_model(op_model(lambda x: torch.softmax(x, -1)), torch.randn(2, 30000) * 3, sanitize=False)


def test_embedding_verify_draws_indices_over_the_whole_table():
    from modelblocks.api import _index_bound

    model = nn.Sequential(nn.Embedding(50, 4), nn.Flatten(), nn.Linear(32, 2)).eval()
    compiled = modelblocks.compile(model, (torch.zeros(1, 8, dtype=torch.long),))
    assert _index_bound(compiled.graph, compiled.graph.inputs[0]) == 50
    results = modelblocks.verify(model, (torch.zeros(1, 8, dtype=torch.long),), compiled=compiled, runs=3,
                                 print_table=False)
    assert results[0].rel_l2_c < 1e-5
