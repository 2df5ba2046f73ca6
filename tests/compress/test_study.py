"""The compression study on the digits MLP: every point is measured on the generated C, and its
numbers equal independent measurements (PyTorch for float, the interpreter for int8); the CLI
writes the CSV, JSON and plots and picks the best point for a board."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

import modelblocks  # noqa: E402
from modelblocks.cli import main  # noqa: E402
from modelblocks.compress.modules import count_params  # noqa: E402
from modelblocks.compress.study import Setting, StudyData, StudySpec, run_study, setting_name  # noqa: E402
from modelblocks.errors import InputError  # noqa: E402
from modelblocks.models import digits  # noqa: E402
from modelblocks.reports.study import read_csv  # noqa: E402

N_EVAL = 200


@pytest.fixture(scope="module")
def setup():
    data = digits.load_data()
    study_data = StudyData(data.x_test[:N_EVAL].numpy(), data.y_test[:N_EVAL].numpy(), data.x_train.numpy(),
                           data.y_train.numpy(), data.x_calib.numpy())
    return digits.trained("mlp"), study_data


def test_settings_grid_and_axes():
    spec = StudySpec(ranks=[None, 0.9, 8], sparsity=[0.0, 0.5], channels=[0.0, 0.25], layers=[0])
    assert len(spec.settings()) == 3 * 2 * 2
    assert spec.settings()[0] == Setting()
    spec.combine = "axes"
    assert len(spec.settings()) == 1 + 2 + 1 + 1  # original, two ranks, one sparsity, one channel level
    assert setting_name(Setting(1, 0.25, 0.5, 0.9, 0.5)) == \
        "-1 layer + channels -25% + heads -50% + rank e=0.9 + sparsity 50%"
    assert setting_name(Setting(rank="b0.3")) == "rank budget 30%"
    assert setting_name(Setting(rank=(("net.1", 8), ("net.3", 4)))) == "rank net.1=8,net.3=4"
    with pytest.raises(InputError, match="precision 'int4'"):
        StudySpec(precisions=["int4"]).check()


def test_study_points_equal_independent_measurements(setup):
    model, data = setup
    spec = StudySpec(ranks=[None, 0.9], sparsity=[0.0, 0.6], precisions=["float32", "int8"], combine="axes")
    study = run_study(model, torch.zeros(1, 1, 8, 8), data, spec, code="none")
    assert len(study.points) == 3 * 2
    by_name = {p.name: p for p in study.points}
    base = by_name["float32"]
    assert base.baseline and base.agreement == 1.0 and base.output_rel_l2 < 1e-5
    assert base.accuracy == pytest.approx(digits.accuracy(model, data.x_eval, data.y_eval))
    rank = by_name["rank e=0.9, float32"]
    small = study.models["rank e=0.9"].model
    assert rank.accuracy == pytest.approx(digits.accuracy(small, data.x_eval, data.y_eval))
    assert rank.params == count_params(small) < base.params
    sparse = by_name["sparsity 60%, float32"]
    assert sparse.params == sum(int(torch.count_nonzero(p)) for p in study.models["sparsity 60%"].model.parameters())
    assert rank.macs < base.macs and rank.weights_bytes < base.weights_bytes
    # the int8 point's accuracy is the interpreter's (the C is bit-exact with it)
    q = modelblocks.compile(small, (torch.zeros(1, 1, 8, 8),), quantize="int8", calibration=data.calibration)
    ref = np.array([q.run_reference([data.x_eval[i:i + 1]])[0].argmax() for i in range(N_EVAL)])
    assert by_name["rank e=0.9, int8"].accuracy == pytest.approx(float(np.mean(ref == data.y_eval)))
    for p in study.points:
        assert not p.c_check.startswith("FAILED"), (p.name, p.c_check)
        assert p.flash_bytes == p.weights_bytes  # code="none"
    assert by_name["int8"].weights_bytes < base.weights_bytes / 3


def test_cli_study_writes_csv_json_plots_and_the_best_point(setup, tmp_path, capsys):
    model, data = setup
    torch.save(model.state_dict(), tmp_path / "mlp.pth")
    (tmp_path / "net.py").write_text("from modelblocks.models.digits import DigitsMLP\n\n\n"
                                     "class Net(DigitsMLP):\n    pass\n")
    np.savez(tmp_path / "eval.npz", x=data.x_eval, y=data.y_eval)
    np.savez(tmp_path / "train.npz", x=data.x_train, y=data.y_train)
    out = tmp_path / "study"
    args = [f"{tmp_path / 'net.py'}:Net", "-w", str(tmp_path / "mlp.pth"), "-s", "1,1,8,8",
            "--data", str(tmp_path / "eval.npz"), "--train", str(tmp_path / "train.npz"),
            "--channels", "0.25", "--ranks", "net.1=8+net.3=6", "--combine", "axes",
            "--precision", "float32,int8", "--code", "host",
            "--target", "stm32h723zg", "--max-accuracy-drop", "1.0", "-o", str(out)]
    assert main(["study", *args]) == 0
    text = capsys.readouterr().out
    points = read_csv(out / "study.csv")
    assert len(points) == 6
    ranked = next(p for p in points if p.name == "rank net.1=8,net.3=6, float32")
    base = next(p for p in points if p.baseline)
    # net.1 (64x64) -> 8 (64+64) weights, net.3 (32x64) -> 6 (64+32); biases unchanged
    assert base.params - ranked.params == (64 * 64 - 8 * 128) + (32 * 64 - 6 * 96)
    saved = json.loads((out / "study.json").read_text())
    best = next(p for p in points if p.name == saved["best"])
    qualifying = [p for p in points if 100 * (base.accuracy - p.accuracy) <= 1.0 + 1e-9]
    assert best.flash_bytes == min(p.flash_bytes for p in qualifying)
    assert f"best point: {best.name}" in text
    for png in ("accuracy_vs_flash.png", "accuracy_vs_macs.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(p.flash_bytes > p.weights_bytes for p in points)  # host code estimate included
    # bad input: exit 2 with the cause
    no_train = [a for i, a in enumerate(args) if a != "--train" and (i == 0 or args[i - 1] != "--train")]
    assert main(["study", *no_train, "--finetune", "2"]) == 2
    assert "--finetune needs --train" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", x=data.x_eval[:, :, :4])
    assert main(["study", *[a if a != str(tmp_path / "eval.npz") else str(tmp_path / "bad.npz") for a in args]]) == 2
    assert "the model takes [N, 1, 8, 8]" in capsys.readouterr().err
