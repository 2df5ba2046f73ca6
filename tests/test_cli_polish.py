"""The command line as a tool other programs call: examples in every --help, --json documents that
parse and carry the documented keys (nothing else on stdout), the exit-code table, no ANSI codes
off a terminal, and docs/ops.md and docs/cli.md in step with the code."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from modelblocks import cli, docs_ops
from modelblocks.errors import ExportError, SimulationError, ToolchainError, UnsupportedOpError

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("compile", "verify", "analyze", "simulate", "study", "report", "demo")

MODEL_PY = textwrap.dedent("""\
    import torch
    from torch import nn


    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(8, 16)
            self.fc2 = nn.Linear(16, 3)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))


    class Cumulative(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, 1)
    """)


@pytest.fixture()
def model(tmp_path):
    (tmp_path / "m.py").write_text(MODEL_PY)
    return tmp_path


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- help ------------------------------------------------------------------------------------------

def test_top_level_help_has_examples_and_the_exit_code_table(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    assert "examples:" in out and "modelblocks compile " in out and "exit codes:" in out
    for number, _ in cli.EXIT_CODES:
        assert f"\n  {number:<4} " in out
    assert "NO_COLOR" in out and "--json" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_help_ends_with_examples(command, capsys):
    code, out, _ = run([command, "--help"], capsys)
    assert code == 0
    epilog = out[out.index("examples:"):]
    assert epilog.count(f"modelblocks {command}") >= 2 and "exit codes:" in epilog
    if command != "demo":
        assert "--json" in out


# -- --json ----------------------------------------------------------------------------------------

def test_compile_json_is_the_only_thing_on_stdout(model, capsys):
    code, out, err = run(["compile", f"{model}/m.py:MLP", "-s", "1,8", "-o", model / "out", "--runs", "1",
                          "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)  # the whole of stdout is one document
    assert set(data) == {"ok", "out", "files", "notes", "report", "verification", "quantization", "target"}
    assert data["ok"] and "model.c" in data["files"] and data["report"]["macs"] == 8 * 16 + 16 * 3
    assert data["verification"]["ok"] and data["verification"]["outputs"][0]["rel_l2_c"] < 1e-5
    assert "verification passed" in err and "wrote" in err  # the human report went to stderr


def test_verify_json_and_a_failed_check_exits_1(model, capsys):
    argv = ["verify", f"{model}/m.py:MLP", "-s", "2,8", "--runs", "2", "--json"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    data = json.loads(out)
    assert {"ok", "runs", "seed", "tol", "quantize", "outputs", "notes", "model"} <= set(data)
    assert set(data["outputs"][0]) == {"output", "max_abs_c", "rel_l2_c", "max_abs_ref", "rel_l2_ref",
                                       "rel_l2_c_ref", "exact_c_ref", "check", "ok"}
    code, out, _ = run(argv + ["--tol", "1e-15"], capsys)
    assert code == cli.EXIT_CHECK_FAILED == 1
    assert json.loads(out)["ok"] is False


def test_analyze_json_and_does_not_fit_exits_1(model, capsys):
    argv = ["analyze", f"{model}/m.py:MLP", "-s", "1,8", "--no-estimate", "--json"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    data = json.loads(out)
    assert {"report", "board", "verdict", "plot", "notes"} <= set(data) and data["verdict"]["fits"]
    code, out, _ = run(argv + ["--target", "tiny=256,16"], capsys)
    assert code == 1 and json.loads(out)["verdict"]["fits"] is False


def test_study_json(model, capsys):
    rng = np.random.default_rng(0)
    np.savez(model / "eval.npz", x=rng.standard_normal((16, 8)).astype(np.float32), y=rng.integers(0, 3, 16))
    code, out, err = run(["study", f"{model}/m.py:MLP", "-s", "1,8", "--data", model / "eval.npz", "--sparsity",
                          "0.5", "--precision", "float32", "--code", "none", "-o", model / "study", "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert {"points", "best", "failed_checks", "written"} <= set(data) and len(data["points"]) == 2
    assert "wrote" in err


# -- exit codes ------------------------------------------------------------------------------------

def test_exit_code_table_is_consistent():
    numbers = [n for n, _ in cli.EXIT_CODES]
    assert numbers == sorted(set(numbers))
    assert (cli.EXIT_OK, cli.EXIT_CHECK_FAILED, cli.EXIT_USER_ERROR, cli.EXIT_INTERNAL, cli.EXIT_UNSUPPORTED,
            cli.EXIT_TOOLCHAIN, cli.EXIT_INTERRUPTED) == (0, 1, 2, 3, 4, 5, 130)


def test_unsupported_op_exits_4(model, capsys):
    code, out, err = run(["compile", f"{model}/m.py:Cumulative", "-s", "2,4", "-o", model / "o", "--json"], capsys)
    assert code == cli.EXIT_UNSUPPORTED == 4
    assert out == "" and "error: unsupported op aten.cumsum" in err and "Traceback" not in err


def test_bad_input_and_usage_exit_2(model, capsys):
    assert run(["compile", f"{model}/m.py:MLP", "-s", "1,0", "-o", model / "o"], capsys)[0] == 2
    assert run(["analyze", f"{model}/m.py:MLP", "-s", "1,8", "--target", "nosuchboard"], capsys)[0] == 2
    assert run(["verify", "--no-such-option"], capsys)[0] == 2


@pytest.mark.parametrize("error, expected", [
    (ToolchainError("arm-none-eabi-gcc not found"), 5), (UnsupportedOpError("no kernel"), 4),
    (ExportError("data-dependent control flow"), 4), (SimulationError("HardFault"), 2),
    (KeyboardInterrupt(), 130), (ZeroDivisionError("bug"), 3),
], ids=["toolchain", "unsupported", "export", "simulation", "interrupt", "internal"])
def test_errors_map_to_exit_codes(monkeypatch, capsys, error, expected):
    def fail(args):
        raise error

    monkeypatch.setattr(cli, "cmd_simulate", fail)
    code, out, _ = run(["simulate", "x.py:Net", "-s", "1", "--json"], capsys)
    assert code == expected and out == ""


# -- colours ---------------------------------------------------------------------------------------

class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colours_only_on_a_terminal_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for stream, env, ansi in ((io.StringIO(), None, False), (_Terminal(), None, True), (_Terminal(), "1", False)):
        if env:
            monkeypatch.setenv("NO_COLOR", env)
        monkeypatch.setattr(sys, "stdout", stream)
        cli._console().print("[bold red]x[/bold red]")
        assert ("\x1b[" in stream.getvalue()) is ansi, (type(stream).__name__, env)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not cli._show_progress()
    with cli._working("quiet"):  # no spinner off a terminal
        pass
    assert sys.stderr.getvalue() == ""


def test_no_ansi_codes_in_a_pipe(model):
    python = REPO / ".venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["PYTHONWARNINGS"] = "ignore"
    proc = subprocess.run([str(python if python.exists() else sys.executable), "-m", "modelblocks", "analyze",
                           "m.py:MLP", "-s", "1,8", "--no-estimate"], cwd=model, capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "model MLP" in proc.stdout or "layers" in proc.stdout
    assert "\x1b[" not in proc.stdout and "\x1b[" not in proc.stderr


# -- docs ------------------------------------------------------------------------------------------

def test_docs_ops_md_is_current():
    """docs/ops.md is generated from the op registry; regenerate it with `python -m modelblocks.docs_ops`."""
    assert docs_ops.DEFAULT_PATH.read_text() == docs_ops.render(), \
        "docs/ops.md is stale: run `python -m modelblocks.docs_ops`"


def test_docs_cli_md_covers_every_command_and_exit_code():
    """docs/cli.md has the conventions and exit codes and links one page per command; each page
    names every long option of its command (or the conventions do, for the shared ones)."""
    text = (REPO / "docs" / "cli.md").read_text()
    for number, _ in cli.EXIT_CODES:
        assert f"| {number} |" in text
    parser = cli.build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == set(COMMANDS)
    for command in COMMANDS:
        page = REPO / "docs" / "cli" / f"{command}.md"
        assert f"(cli/{command}.md)" in text
        body = page.read_text()
        assert body.startswith(f"# modelblocks {command}\n")
        options = {o for a in commands.choices[command]._actions for o in a.option_strings if o.startswith("--")}
        assert not [o for o in sorted(options - {"--help"}) if o not in body and o not in text], command
    assert (REPO / "docs" / "adding-an-op.md").is_file()
