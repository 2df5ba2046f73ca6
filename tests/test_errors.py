"""Clear errors for bad input: each names the cause, the place and what to change, is raised as a
modelblocks.errors.* subclass (so the CLI exits 2 without a traceback), and leaves nothing
half-written behind."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import modelblocks
import modelblocks.errors
from helpers import op_model
from modelblocks import cli
import modelblocks.api as api
from modelblocks.api import rel_l2
from modelblocks.errors import ExportError, InputError, ModelBlocksError, UnsupportedOpError
from modelblocks.frontend import loader


def line_of(obj, text: str) -> str:
    """'test_errors.py:N' of the line of `obj`'s source that contains `text`."""
    lines, start = inspect.getsourcelines(obj)
    for k, line in enumerate(lines):
        if text in line:
            return f"{Path(inspect.getsourcefile(obj)).name}:{start + k}"
    raise AssertionError(f"{text!r} not in the source of {obj}")


def cli_run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- models ------------------------------------------------------------------------------------------

class CumHead(nn.Module):
    def forward(self, x):
        return torch.cumsum(x, dim=1)  # nobody supports cumsum


class WithCumsum(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.head = CumHead()

    def forward(self, x):
        return self.head(self.fc(x))


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent
            return self.fc(x)
        return -x


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


class SmallMLP(nn.Module):
    def __init__(self, n_in=8, num_classes=3):
        super().__init__()
        self.fc1 = nn.Linear(n_in, 16)
        self.drop = nn.Dropout(0.5)
        self.bn = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.drop(self.fc1(x)))))


# -- errors from the model itself --------------------------------------------------------------------

def test_unsupported_op_names_op_module_line_and_supported_ops():
    with pytest.raises(UnsupportedOpError) as info:
        modelblocks.compile(WithCumsum().eval(), (torch.randn(2, 4),))
    msg = str(info.value)
    assert "aten.cumsum" in msg
    assert "module 'head'" in msg
    assert line_of(CumHead.forward, "torch.cumsum") in msg
    assert "Supported aten ops:" in msg and "aten.linear.default" in msg


def test_data_dependent_control_flow_says_what_to_change():
    with pytest.raises(ExportError) as info:
        modelblocks.compile(Branchy().eval(), (torch.randn(2, 4),))
    msg = str(info.value)
    assert line_of(Branchy.forward, "if x.sum() > 0") in msg
    assert "torch.where" in msg and "What to change" in msg
    assert info.value.__cause__ is None and "Traceback" not in msg  # no chained torch traceback


def test_dynamic_shapes_exported_program():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).eval()
    ep = torch.export.export(model, (torch.randn(2, 4),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    with pytest.raises(ExportError) as info:
        modelblocks.compile(ep)
    msg = str(info.value)
    assert "dynamic" in msg and "static shapes" in msg and "dynamic_shapes" in msg


def test_dynamic_shapes_pt2_file_on_the_command_line(tmp_path, capsys):
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).eval()
    ep = torch.export.export(model, (torch.randn(2, 4),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, tmp_path / "dyn.pt2")
    code, _, err = cli_run(["compile", tmp_path / "dyn.pt2", "-o", tmp_path / "out"], capsys)
    assert code == 4  # unsupported model
    assert "dynamic shapes" in err and "input 0" in err and "export again without dynamic_shapes" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("shape, needles", [
    ((1, 3, 16), ["input 0", "[1, 3, 16]", "module 'features.0' (Conv2d)", "in_channels=3", "[N, 3, H, W]"]),
    ((1, 5, 8, 8), ["[1, 5, 8, 8]", "5 channels", "in_channels=3"]),
], ids=["wrong-rank", "wrong-channels"])
def test_wrong_input_shape_conv(shape, needles):
    with pytest.raises(InputError) as info:
        modelblocks.compile(SmallCNN().eval(), (torch.randn(*shape),))
    msg = str(info.value)
    for needle in needles:
        assert needle in msg, (needle, msg)
    assert line_of(SmallCNN.forward, "self.features(x)") in msg
    assert "Traceback" not in msg and info.value.__cause__ is None


def test_wrong_input_features_linear():
    with pytest.raises(InputError) as info:
        modelblocks.compile(SmallMLP().eval(), (torch.randn(2, 5),))
    msg = str(info.value)
    assert "module 'fc1' (Linear)" in msg and "in_features=8" in msg and "[..., 8]" in msg


def test_training_mode_is_fine():
    torch.manual_seed(0)
    model = SmallMLP()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.5, 2)
    model.train()
    x = torch.randn(4, 8)
    compiled = modelblocks.compile(model, (x,))
    assert not model.training  # compile put it in eval mode: dropout off, BatchNorm uses running stats
    expected = model(x).detach().numpy()
    assert rel_l2(compiled.run_reference([x.numpy()])[0], expected) < 1e-5


@pytest.mark.parametrize("inputs, needle", [
    ((1.0,), "example input 0 is a float"),
    ((np.zeros((2, 8), np.float32),), "example input 0 is a ndarray"),
    ((torch.zeros(2, 8), [1, 2]), "example input 1 is a list"),
], ids=["float", "ndarray", "list"])
def test_non_tensor_example_inputs(inputs, needle):
    with pytest.raises(InputError) as info:
        modelblocks.compile(SmallMLP().eval(), inputs)
    assert needle in str(info.value) and "tuple of tensors" in str(info.value)


# -- errors from files and options -------------------------------------------------------------------

MODEL_PY = textwrap.dedent("""\
    import torch
    from torch import nn


    class MLP(nn.Module):
        def __init__(self, n_in=8, num_classes=3):
            super().__init__()
            self.fc1 = nn.Linear(n_in, 16)
            self.fc2 = nn.Linear(16, num_classes)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))


    class Picky(nn.Module):
        def __init__(self, width):
            super().__init__()
            if width < 1:
                raise ValueError("width must be positive")
            self.fc = nn.Linear(4, width)

        def forward(self, x):
            return self.fc(x)


    class Cumulative(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return torch.cumsum(self.fc(x), 1)


    HELPER = 3
    """)


def MODEL_LINE(text: str) -> str:
    """'model.py:N' of the line of MODEL_PY that contains `text`."""
    return "model.py:" + str(next(k + 1 for k, line in enumerate(MODEL_PY.splitlines()) if text in line))


@pytest.fixture()
def model_dir(tmp_path):
    (tmp_path / "model.py").write_text(MODEL_PY)
    module = loader.import_file(tmp_path / "model.py")
    torch.manual_seed(0)
    torch.save(module.MLP().state_dict(), tmp_path / "mlp.pth")
    torch.save(module.MLP(n_in=6, num_classes=5).state_dict(), tmp_path / "other.pth")
    torch.save({"fc1.weight": torch.zeros(16, 8), "extra.weight": torch.zeros(1)}, tmp_path / "partial.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a torch file")
    return tmp_path


def _compile_argv(d, spec, *extra, shape="1,8"):
    return ["compile", f"{d}/{spec}", "--input-shape", shape, "-o", d / "out", "--no-verify", *extra]


@pytest.mark.parametrize("spec, extra, needles", [
    ("missing.py:MLP", [], ["model file not found", "missing.py", "model.py"]),
    ("model.py:Missing", [], ["class 'Missing' not found in model.py", "MLP, Picky, Cumulative"]),
    ("model.py:HELPER", [], ["not a torch.nn.Module subclass"]),
    ("model.py:MLP", ["--init-args", "{num_classes: 3}"], ["--init-args is not valid JSON", "Example"]),
    ("model.py:MLP", ["--init-args", "[3]"], ["must be a JSON object"]),
    ("model.py:MLP", ["--init-args", '{"classes": 3}'], ["MLP(n_in=8, num_classes=3)", "unexpected keyword"]),
    ("model.py:Picky", [], ["Picky(width)", "missing a required argument: 'width'"]),
    ("model.py:Picky", ["--init-args", '{"width": 0}'], ["Picky(width)", "{ctor_line}", "width must be positive"]),
    ("model.py:MLP", ["--weights", "{d}/nope.pth"], ["weights file not found", "mlp.pth"]),
    ("model.py:MLP", ["--weights", "{d}/garbage.pth"], ["cannot read weights file", "not a file written by torch.save"]),
    ("model.py:MLP", ["--weights", "{d}/list.pth"], ["holds a list, expected a state_dict"]),
    ("model.py:MLP", ["--weights", "{d}/other.pth"],
     ["do not match the model MLP", "shape mismatches", "fc1.weight: file [16, 6] vs model [16, 8]",
      "fc2.bias: file [5] vs model [3]", "--init-args"]),
    ("model.py:MLP", ["--weights", "{d}/partial.pth"],
     ["missing keys", "fc1.bias", "fc2.weight", "unexpected keys", "extra.weight"]),
], ids=["file-not-found", "class-missing", "not-a-module", "bad-json", "json-not-object", "ctor-bad-kwarg",
        "ctor-missing-arg", "ctor-raises", "weights-not-found", "weights-garbage", "weights-not-dict",
        "weights-shape-mismatch", "weights-missing-unexpected"])
def test_file_and_option_errors(model_dir, capsys, spec, extra, needles):
    extra = [e.replace("{d}", str(model_dir)).replace("{ctor_line}", MODEL_LINE("width must be positive"))
             for e in extra]
    needles = [n.replace("{ctor_line}", MODEL_LINE("width must be positive")) for n in needles]
    code, _, err = cli_run(_compile_argv(model_dir, spec, *extra), capsys)
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not (model_dir / "out").exists()


def test_unsupported_op_on_the_command_line_names_the_file_line(model_dir, capsys):
    code, _, err = cli_run(_compile_argv(model_dir, "model.py:Cumulative", shape="2,4"), capsys)
    assert code == 4  # unsupported model
    assert "aten.cumsum" in err and MODEL_LINE("torch.cumsum") in err and "Supported aten ops" in err
    assert not (model_dir / "out").exists()


def test_syntax_error_in_model_file(tmp_path, capsys):
    (tmp_path / "broken.py").write_text("import torch\n\nclass Net(torch.nn.Module)\n    pass\n")
    code, _, err = cli_run(_compile_argv(tmp_path, "broken.py:Net"), capsys)
    assert code == 2 and "broken.py:3" in err and "syntax error" in err


def test_import_error_in_model_file(tmp_path, capsys):
    (tmp_path / "needs.py").write_text("import torch\nimport not_a_real_module_xyz\n")
    code, _, err = cli_run(_compile_argv(tmp_path, "needs.py:Net"), capsys)
    assert code == 2 and "needs.py:2" in err and "not_a_real_module_xyz" in err


def test_sibling_imports_work(tmp_path, capsys):
    (tmp_path / "blocks_xyz.py").write_text("import torch\n\ndef block(n):\n    return torch.nn.Linear(n, 2)\n")
    (tmp_path / "net_xyz.py").write_text("import torch\nfrom blocks_xyz import block\n\n"
                                         "class Net(torch.nn.Module):\n    def __init__(self):\n"
                                         "        super().__init__()\n        self.fc = block(4)\n\n"
                                         "    def forward(self, x):\n        return self.fc(x)\n")
    code, _, err = cli_run(_compile_argv(tmp_path, "net_xyz.py:Net", shape="1,4"), capsys)
    assert code == 0, err


# -- nothing half-written ----------------------------------------------------------------------------

def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_failed_compile_leaves_no_output_folder(model_dir, capsys):
    out = model_dir / "fresh" / "out"
    code, _, _ = cli_run(["compile", f"{model_dir}/model.py:Cumulative", "--input-shape", "2,4", "-o", out],
                         capsys)
    assert code == 4  # unsupported model
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_failed_compile_keeps_previous_output_untouched(model_dir, capsys):
    out = model_dir / "out"
    code, _, err = cli_run(_compile_argv(model_dir, "model.py:MLP", "--weights", model_dir / "mlp.pth"), capsys)
    assert code == 0, err
    before = _snapshot(out)
    assert "model.c" in before
    code, _, _ = cli_run(_compile_argv(model_dir, "model.py:Cumulative", shape="2,4"), capsys)
    assert code == 4  # unsupported model
    code, _, _ = cli_run(_compile_argv(model_dir, "model.py:MLP", "--weights", model_dir / "other.pth"), capsys)
    assert code == 2
    assert _snapshot(out) == before
    assert sorted(p.name for p in model_dir.iterdir() if p.name.startswith(".out")) == []


def test_failure_while_writing_keeps_previous_output(model_dir, capsys, monkeypatch):
    out = model_dir / "out"
    code, _, err = cli_run(_compile_argv(model_dir, "model.py:MLP", "--weights", model_dir / "mlp.pth"), capsys)
    assert code == 0, err
    before = _snapshot(out)

    def save_then_fail(graph, directory):
        real_save_graph(graph, directory)
        raise OSError(28, "No space left on device")

    # the failure happens after the C sources and the IR were written into the temporary folder
    real_save_graph = api.save_graph
    monkeypatch.setattr(api, "save_graph", save_then_fail)
    code, _, err = cli_run(_compile_argv(model_dir, "model.py:MLP", "--init-args", '{"num_classes": 4}'), capsys)
    assert code == 2 and "cannot write" in err and "No space left" in err
    assert _snapshot(out) == before
    assert [p.name for p in model_dir.iterdir() if p.name.startswith(".out")] == []


def test_errors_are_modelblocks_errors():
    for cls in (UnsupportedOpError, ExportError, InputError):
        assert issubclass(cls, ModelBlocksError)


def test_random_op_in_forward_is_refused():
    model = op_model(lambda x: x + torch.rand(3))
    with pytest.raises(modelblocks.errors.UnsupportedOpError, match="random op aten.rand"):
        modelblocks.compile(model, (torch.randn(2, 3),))


def test_eager_fast_path_mismatch_is_refused():
    """nn.TransformerEncoder's nested-tensor fast path computes something torch.export does not record."""
    layer = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True, dropout=0.0)
    encoder = torch.nn.TransformerEncoder(layer, 1, enable_nested_tensor=True).eval()

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder

        def forward(self, x, pad):
            return self.encoder(x, src_key_padding_mask=pad).mean(1)

    x = torch.randn(2, 5, 8)
    pad = torch.tensor([[False, False, False, True, True], [False, False, False, False, True]])
    with pytest.raises(modelblocks.errors.ExportError, match="enable_nested_tensor=False"):
        modelblocks.compile(Pooled(), (x, pad))
