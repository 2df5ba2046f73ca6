"""The `modelblocks` command line.

    modelblocks compile model.py:Net --weights net.pth --input-shape 1,3,32,32 -o out/
    modelblocks compile exported.pt2 -o out/ --json
    modelblocks verify model.py:Net --weights net.pth --input-shape 1,3,32,32 --runs 5
    modelblocks analyze model.py:Net --weights net.pth --input-shape 1,3,32,32 --target stm32h723zg --plot arena.png
    modelblocks analyze out/ --target mcu=512K,128K --json
    modelblocks simulate model.py:Net --weights net.pth --input-shape 1,3,32,32 --target cortex-m7
    modelblocks simulate out/ --target all --json
    modelblocks study model.py:Net --weights net.pth --input-shape 1,1,8,8 --data eval.npz --train train.npz
        --ranks b0.5 --sparsity 0.5,0.8 --target stm32h723zg --max-accuracy-drop 1.0 -o study/
    modelblocks compile model.py:Net --weights net.pth --input-shape 1,3,32,32 -o out/ --target stm32h723zg
    modelblocks demo --out build/demo

Every command that prints a report takes --json: the report as one JSON document on stdout and
nothing else there (tables, notes and progress go to stderr). Colours are off when the output is
not a terminal or NO_COLOR is set; spinners and progress bars go to stderr, only on a terminal.
The exit codes are `EXIT_CODES` below (docs/cli.md has the same table).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
from contextlib import contextmanager
import traceback
import warnings
from pathlib import Path
from typing import Sequence

from . import __version__
from .errors import (CompileError, ExportError, InputError, ModelBlocksError, NonFiniteWeightsWarning, ToolchainError,
                     UnsupportedOpError)

EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # verify/compile/simulate: an output differs; analyze: does not fit; study: no point qualifies
EXIT_USER_ERROR = 2  # bad file, shape or option; argparse usage errors
EXIT_INTERNAL = 3  # a ModelBlocks bug (also: the C compiler rejected generated code)
EXIT_UNSUPPORTED = 4  # the model uses an op or construct ModelBlocks cannot compile, or torch.export cannot capture it
EXIT_TOOLCHAIN = 5  # a tool this command needs (arm-none-eabi-gcc, newlib, qemu-system-arm) is missing
EXIT_INTERRUPTED = 130

EXIT_CODES = (
    (EXIT_OK, "ok (analyze: the model fits; study: a point qualifies)"),
    (EXIT_CHECK_FAILED, "a check failed: the C differs from PyTorch or the reference (compile, verify, simulate, "
                        "study), the model does not fit the board (analyze), no study point fits within the "
                        "accuracy drop (study)"),
    (EXIT_USER_ERROR, "bad input or usage: a file, shape, option or weights problem (one message, no traceback)"),
    (EXIT_INTERNAL, "internal error: a ModelBlocks bug (traceback printed; please report it)"),
    (EXIT_UNSUPPORTED, "unsupported model: an op or construct ModelBlocks has no kernel for, or torch.export "
                       "cannot capture the model (dynamic shapes, data-dependent control flow)"),
    (EXIT_TOOLCHAIN, "toolchain missing: arm-none-eabi-gcc, its newlib or qemu-system-arm (the message says how "
                     "to install them)"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)
ISSUES = "the ModelBlocks issue tracker"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# -- argument parsing -------------------------------------------------------------------------------

def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model.py:ClassName (a Python file and the nn.Module class in it), "
                                 "a .pt2 file saved with torch.export.save, or an .onnx file")
    p.add_argument("--weights", "-w", metavar="FILE",
                   help="weights: a state_dict, or a checkpoint dict with a 'state_dict'/'model_state_dict' entry")
    p.add_argument("--input-shape", "-s", action="append", default=[], metavar="SHAPE",
                   help="example input shape, e.g. 1,3,32,32; repeat for several inputs (optional for .pt2, "
                        "and for .onnx files without dynamic dimensions)")
    p.add_argument("--input-dtype", action="append", default=[], metavar="DTYPE",
                   help="dtype of each input, in order: float32 (default), int64 or int32; repeatable")
    p.add_argument("--init-args", metavar="JSON", help="constructor arguments as a JSON object, "
                                                       "e.g. '{\"num_classes\": 6}'")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a weights file that is a whole pickled model (this runs code from the file)")


def _quantize_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("quantization")
    g.add_argument("--quantize", "-q", choices=["int8", "int8-weights"],
                   help="int8: weights and activations in int8 (TFLite/CMSIS-NN scheme; needs --calibration, except "
                        "for an ONNX QDQ model, which brings its scales); "
                        "int8-weights: int8 weights with per-channel scales, float32 activations")
    g.add_argument("--calibration", metavar="DATA",
                   help="typical inputs for int8 calibration: an .npz (arrays by input name or in input order), an "
                        ".npy, a folder of .npy batches, or module:function / file.py:function returning batches")
    g.add_argument("--observer", choices=["mse", "minmax", "percentile", "moving_average"],
                   help="how activation ranges are chosen from the calibration data (default mse)")
    g.add_argument("--keep-float", action="append", default=[], metavar="GLOB",
                   help="keep layers whose module path matches GLOB in float32, e.g. 'blocks.*.norm*'; repeatable")
    p.add_argument("--sparse", choices=["auto", "off", "always"], default="auto",
                   help="CSR storage of pruned linear weights: auto (default: where it saves flash and "
                        "instructions), off, always (wherever a weight is zero)")
    p.add_argument("--kernels", choices=["optimized", "reference"], default="optimized",
                   help="C kernels: optimized (default: Armv7E-M DSP instructions, im2col, register tiling, "
                        "portable elsewhere) or reference (the plain loops the optimised kernels are tested against)")
    p.add_argument("--allow-nonfinite", action="store_true",
                   help="compile weights that hold NaN or Inf (refused by default; a warning names them)")


def _verify_options(p: argparse.ArgumentParser, runs: int) -> None:
    p.add_argument("--runs", type=int, default=runs, help=f"random inputs to verify on (default {runs})")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--tol", type=float, default=1e-5, help="relative L2 tolerance (default 1e-5)")


EXAMPLES = {
    None: [
        ("modelblocks compile net.py:Net -w net.pth -s 1,3,32,32 -o out/",
         "compile a model to C in out/ and verify it against PyTorch"),
        ("modelblocks analyze out/ --target stm32h723zg", "will it fit? per-layer memory and the verdict"),
        ("modelblocks simulate out/ --target all", "run it in QEMU on four Cortex-M cores: instructions, flash, RAM"),
        ("modelblocks compile --help", "options and examples of one command"),
    ],
    "compile": [
        ("modelblocks compile net.py:Net -w net.pth -s 1,3,32,32 -o out/",
         "write out/model.c, model.h, model_weights.c, report.json and the IR; checks the C on 3 inputs"),
        ("modelblocks compile net.py:Net -w net.pth -s 1,3,32,32 -o out/ -q int8 --calibration calib.npz",
         "int8 weights and activations, calibrated on calib.npz; also writes out/quantization.json"),
        ("modelblocks compile exported.pt2 -o out/ --prefix kws --target stm32h723zg",
         "a torch.export file; kws_run() in kws.h, plus a NUCLEO-H723ZG firmware project built in out/stm32h723zg/"),
        ("modelblocks compile net.py:Net -s 1,8 -o out/ --json > compile.json",
         "the report, the verification and the written files as JSON"),
    ],
    "verify": [
        ("modelblocks verify net.py:Net -w net.pth -s 1,3,32,32", "PyTorch vs NumPy reference vs host C on 5 random inputs"),
        ("modelblocks verify net.py:Net -w net.pth -s 1,3,32,32 --runs 20 --seed 1 --tol 1e-6",
         "more inputs, another seed, a tighter tolerance"),
        ("modelblocks verify net.py:Net -s 1,8 -q int8 --calibration calib.npz --json",
         "int8: the C must equal the int8 reference bit for bit; the errors as JSON"),
        ("modelblocks verify model.onnx -s 1,3,32,32",
         "an ONNX file (its dynamic batch fixed to 1), checked against onnxruntime"),
    ],
    "analyze": [
        ("modelblocks analyze net.py:Net -w net.pth -s 1,3,32,32", "memory table and fit verdict for the STM32H723ZG"),
        ("modelblocks analyze out/ --target mcu=512K,128K --json", "a compiled folder against a custom board, as JSON"),
        ("modelblocks analyze net.py:Net -s 1,3,32,32 --target nrf52840 --plot arena.png",
         "another board, and a plot of arena use per step"),
    ],
    "simulate": [
        ("modelblocks simulate net.py:Net -w net.pth -s 1,3,32,32", "QEMU Cortex-M7: outputs checked, instructions per layer"),
        ("modelblocks simulate out/ --target all", "a compiled folder on cortex-m4/m7/m33/m55, compared in one table"),
        ("modelblocks simulate out/ --cpi 1.3 --clock-mhz 480 --keep build/sim --json",
         "other estimate assumptions, keep the ELF and QEMU files, results as JSON"),
    ],
    "study": [
        ("modelblocks study net.py:Net -w net.pth -s 1,1,8,8 --data eval.npz --train train.npz --ranks 0.95,0.9 "
         "--sparsity 0.5,0.8 -o study/", "every combination at float32, int8-weights and int8: study.csv, study.json, plots"),
        ("modelblocks study net.py:Net -w net.pth -s 1,1,8,8 --data eval.npz --channels 0.25,0.5 --combine axes "
         "--target stm32h723zg --max-accuracy-drop 1.0 -o study/", "the smallest point that fits and loses at most 1 point"),
        ("modelblocks study net.py:Net -s 1,1,8,8 --data eval.npz --sparsity 0.5 --precision int8 -o study/ --json",
         "the points and the best point as JSON"),
    ],
    "report": [
        ("modelblocks report net.py:Net -w net.pth -s 1,3,32,32 -o report.html",
         "one self-contained HTML page: summary, fit verdict, per-layer table, memory plot, verification"),
        ("modelblocks report net.py:Net -w net.pth -s 1,3,32,32 -q int8 --calibration calib.npz --simulate "
         "--board stm32h723zg -o report.html", "int8 with per-layer SQNR, and instruction counts from QEMU (Cortex-M7)"),
        ("modelblocks report out/ -o report.html --json > page.json", "a compiled folder; the page model as JSON"),
    ],
    "demo": [
        ("modelblocks demo", "compile the bundled TinyViT to build/demo/, verify the C against PyTorch, print the report"),
        ("modelblocks demo --out /tmp/demo", "the same in another folder"),
    ],
}


def _epilog(command: str | None) -> str:
    lines = ["examples:"]
    for cmd, what in EXAMPLES[command]:
        lines += [f"  {cmd}", f"      {what}"]
    if command is None:
        lines += ["", "exit codes:"] + [textwrap.fill(text, 100, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7)
                                         for code, text in EXIT_CODES]
        lines += ["", "--json (compile, verify, analyze, simulate, study, report): one JSON document on stdout, messages on "
                      "stderr.", "Colours are off when stdout is not a terminal or NO_COLOR is set. Full guide: docs/cli.md"]
    else:
        lines += ["", "exit codes: 0 ok, 1 a check failed, 2 bad input, 3 internal error, 4 unsupported model, "
                      "5 toolchain missing (modelblocks --help)"]
    return "\n".join(lines)


def _sub(sub, name: str, **kw) -> argparse.ArgumentParser:
    if "description" in kw:  # the raw formatter keeps line breaks: wrap the prose here
        kw["description"] = textwrap.fill(kw["description"], 100)
    return sub.add_parser(name, epilog=_epilog(name), formatter_class=argparse.RawDescriptionHelpFormatter, **kw)


def _json_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true",
                   help=f"print {what} as one JSON document on stdout (messages and tables go to stderr)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelblocks",
        description="Compile trained PyTorch models into dependency-free C99 for microcontrollers, "
                    "verified against PyTorch.",
        epilog=_epilog(None), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"modelblocks {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _sub(sub, "compile", help="compile a model to C and write it to a folder",
                       description="Compile a model to C99, verify it against PyTorch and write the sources, "
                                   "the IR and a report to the output folder.")
    _model_options(p)
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder (replaced as a whole)")
    p.add_argument("--name", default="model", help="model name (default: model)")
    p.add_argument("--prefix", help="C symbol prefix, e.g. kws -> kws_run(), kws.h (default: the name)")
    p.add_argument("--arena-section", default="", metavar="SECTION",
                   help="linker section of the activation arena, e.g. .axisram")
    p.add_argument("--target", "-t", metavar="TARGET",
                   help="also build for a target: cortex-m4|cortex-m7|cortex-m33|cortex-m55 (the model with the QEMU "
                        "harness, ELF in OUT/<core>/; run it with `modelblocks simulate`) or stm32h723zg (a complete "
                        "firmware project for the NUCLEO-H723ZG in OUT/stm32h723zg/, built to .elf/.bin/.hex)")
    p.add_argument("--arena-region", default="dtcm", choices=["dtcm", "axisram"],
                   help="stm32h723zg: RAM that holds the arena (default dtcm: 128 KB, fastest; axisram: 320 KB)")
    p.add_argument("--no-verify", action="store_true", help="skip checking the C against PyTorch")
    p.add_argument("--force", action="store_true",
                   help="replace an existing output folder even if it does not hold a previous ModelBlocks output")
    _json_option(p, "the report, the verification, the written files and the target build")
    _quantize_options(p)
    _verify_options(p, runs=3)
    p.set_defaults(func=cmd_compile)

    p = _sub(sub, "verify", help="compile a model and check the C and the reference against PyTorch",
                       description="Compile a model, run PyTorch, the NumPy reference and the host C on seeded "
                                   "random inputs, and report the errors. Exits 1 if any relative L2 >= --tol.")
    _model_options(p)
    _quantize_options(p)
    _verify_options(p, runs=5)
    _json_option(p, "the errors per output and the verdict")
    p.set_defaults(func=cmd_verify)

    p = _sub(sub, "analyze", help="per-layer memory table, totals and whether the model fits a board",
                       description="Compile a model (or load a compiled output folder) and print the per-layer "
                                   "memory table, flash and RAM totals and the fit verdict against a board's "
                                   "memory map. Exits 0 if the model fits, 1 if it does not.")
    _model_options(p)
    p.add_argument("--target", "-t", default="stm32h723zg", metavar="BOARD",
                   help="built-in board (stm32h723zg (default), stm32f746ng, stm32l476rg, nrf52840, rp2040) "
                        "or NAME=FLASH,RAM, e.g. mcu=512K,128K")
    p.add_argument("--target-file", metavar="FILE", help="a board description in JSON or TOML (overrides --target)")
    p.add_argument("--plot", metavar="PNG", help="write a plot of arena usage per execution step")
    _json_option(p, "the report, board and verdict")
    p.add_argument("--no-estimate", action="store_true",
                   help="skip the host-compiler code size and stack estimates (flash = weights, RAM = arena)")
    _quantize_options(p)
    p.set_defaults(func=cmd_analyze)

    p = _sub(sub, "simulate", help="run the model in QEMU on Cortex-M cores: outputs, instructions, flash, RAM",
                       description="Cross-compile the model with arm-none-eabi-gcc, run it in qemu-system-arm on "
                                   "seeded random inputs, check the outputs against PyTorch (float: relative L2 "
                                   "< --tol; integers: bit-exact with the reference), and report exact executed "
                                   "instructions per inference and per layer, flash and RAM from the ELF, the "
                                   "measured stack, and latency/energy ESTIMATES. Exits 1 if an output differs.")
    _model_options(p)
    _verify_options(p, runs=3)
    p.add_argument("--target", "-t", default="cortex-m7", metavar="CORE",
                   help="cortex-m7 (default, QEMU mps2-an500), cortex-m4, cortex-m33, cortex-m55, a comma list, "
                        "or all (prints a comparison table)")
    p.add_argument("--opt", default="-O2", choices=["-O0", "-O1", "-O2", "-O3", "-Os"],
                   help="optimisation level of the cross-compiler (default -O2)")
    p.add_argument("--board", default="stm32h723zg", metavar="BOARD",
                   help="board for the fit verdict (default stm32h723zg; any --target of `analyze`)")
    p.add_argument("--cpi", type=float, default=1.0, help="assumed cycles per instruction for the estimates (default 1.0)")
    p.add_argument("--clock-mhz", type=float, default=550.0, help="clock for the latency estimate (default 550)")
    p.add_argument("--nj-per-cycle", type=float, default=0.46,
                   help="energy per cycle for the energy estimate (default 0.46 nJ, board level)")
    p.add_argument("--keep", metavar="DIR", help="keep the builds (C, ELF, map, QEMU files) in DIR/<core>/")
    _json_option(p, "the results per core")
    _quantize_options(p)
    p.set_defaults(func=cmd_simulate)

    p = _sub(sub, "study", help="sweep compression settings: accuracy vs flash, RAM and MACs, with plots",
                       description="Compress the model in many ways (layer removal, channel and head pruning, low-rank "
                                   "factorization, weight sparsity, each at float32 / int8-weights / int8), compile "
                                   "each point to C, measure accuracy (or agreement with the original) on --data by "
                                   "running the C, and write study.csv, study.json and plots of accuracy vs flash "
                                   "and vs MACs with the Pareto front. Prints the best point that fits --target. "
                                   "Exits 1 if no point qualifies or a point's C differs from its reference.")
    _model_options(p)
    p.add_argument("--data", required=True, metavar="NPZ",
                   help="evaluation samples: .npz with 'x' [N, ...] and optional integer labels 'y' [N] (or .npy)")
    p.add_argument("--train", metavar="NPZ", help="training samples (and labels) for data-aware pruning and --finetune")
    p.add_argument("--calibration", metavar="NPZ", help="int8 calibration samples (default: 256 of --train or --data)")
    p.add_argument("--ranks", default="", metavar="LIST",
                   help="low-rank settings (data-aware on --train): energy levels in (0, 1), integer ranks, weight "
                        "budgets bFRACTION, or per-layer ranks GLOB=D (several joined by +), e.g. 0.99,0.95 or 8,16 "
                        "or b0.5,b0.3 or 'blocks.*.mlp.*=16,blocks.*.mlp.*=8+head=4'")
    p.add_argument("--sparsity", default="", metavar="LIST", help="weight sparsities, e.g. 0.5,0.7,0.9")
    p.add_argument("--channels", default="", metavar="LIST",
                   help="fractions of neurons/channels removed, e.g. 0.25,0.5")
    p.add_argument("--heads", default="", metavar="LIST", help="fractions of attention heads removed, e.g. 0.25,0.5")
    p.add_argument("--remove-layers", default="", metavar="LIST", help="numbers of stack layers removed, e.g. 1,2")
    p.add_argument("--precision", default="float32,int8-weights,int8", metavar="LIST",
                   help="float32, int8-weights, int8 (default: all three)")
    p.add_argument("--combine", default="grid", choices=["grid", "axes"],
                   help="grid: every combination of the settings (default); axes: each setting alone")
    p.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                   help="distillation epochs per compressed point (needs --train; default 0: none)")
    p.add_argument("--finetune-lr", type=float, default=1e-3, metavar="LR",
                   help="learning rate of the fine-tuning (Adam, cosine schedule; default 1e-3)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="module paths never compressed, e.g. 'head'; repeatable")
    p.add_argument("--target", "-t", metavar="BOARD", help="board the best point must fit, e.g. stm32h723zg")
    p.add_argument("--max-accuracy-drop", type=float, metavar="POINTS",
                   help="the best point may lose at most this many percentage points of the baseline's score")
    p.add_argument("--minimize", default="flash", choices=["flash", "macs"], help="what the best point minimises")
    p.add_argument("--code", default="auto", choices=["auto", "m7", "host", "none"],
                   help="code size in flash: measured on a Cortex-M7 build (m7; auto when the toolchain is there), "
                        "a host-compiler estimate, or none")
    p.add_argument("--seed", type=int, default=0, help="seed of the fine-tuning (default 0)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for study.csv, study.json and the plots")
    _json_option(p, "the points, the best point and failed checks")
    p.set_defaults(func=cmd_study)

    p = _sub(sub, "report", help="write a self-contained HTML report: fit, per-layer costs, memory, verification",
             description="Compile a model (or load a compiled folder), verify it (PyTorch, NumPy reference, host C "
                         "and, with --simulate, QEMU on a Cortex-M7), check its fit on --board and write one "
                         "self-contained HTML page (inline CSS and images, no script, no URL). Exits 1 if a check "
                         "failed or the model does not fit the board.")
    _model_options(p)
    p.add_argument("-o", "--out", default="report.html", metavar="HTML", help="the page to write (default report.html)")
    p.add_argument("--board", "-b", default="stm32h723zg", metavar="BOARD",
                   help="board for the fit verdict (default stm32h723zg; any --target of `analyze`)")
    p.add_argument("--simulate", action="store_true",
                   help="also run the C in QEMU on a Cortex-M7: instruction counts per layer, measured code and stack")
    p.add_argument("--no-estimate", action="store_true",
                   help="without --simulate: skip the code size and stack estimates (flash = weights, RAM = arena)")
    _verify_options(p, runs=3)
    _json_option(p, "the page model (the numbers the page shows)")
    _quantize_options(p)
    p.set_defaults(func=cmd_report, parser=p)

    p = _sub(sub, "demo", help="run the bundled end-to-end demo")
    p.add_argument("--out", "-o", default="build/demo", metavar="DIR", help="output folder (default build/demo)")
    p.set_defaults(func=cmd_demo)
    return parser


# -- commands ---------------------------------------------------------------------------------------

def _colour(stream) -> bool:
    """Colours and cursor control only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _console(args=None):
    """Where the human-readable output goes: stdout, or stderr when --json owns stdout."""
    from rich.console import Console  # noqa: PLC0415

    stream = sys.stderr if getattr(args, "json", False) else sys.stdout
    colour = _colour(stream)
    return Console(file=stream, width=None if stream.isatty() else 120, highlight=False, soft_wrap=False,
                   force_terminal=colour, no_color=not colour, color_system="auto" if colour else None)


def _show_progress() -> bool:
    return _colour(sys.stderr)


@contextmanager
def _working(text: str):
    """A progress line on stderr while a slow step runs (only on a terminal; gone afterwards). Yields
    the `progress(step, done, total)` callback the API takes (None off a terminal): the line then
    names the current step and fills a bar with it."""
    if not _show_progress():
        yield None
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn,  # noqa: PLC0415
                               TextColumn, TimeElapsedColumn)

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(file=sys.stderr, highlight=False), transient=True) as bar:
        task = bar.add_task(text, total=None)  # a pulsing bar until a step says how many there are

        def progress(step: str, done: int, total: int) -> None:
            bar.update(task, description=f"{text}: {step}", completed=done, total=total)

        yield progress


def _emit_json(data) -> None:
    """The --json document: the only thing on stdout."""
    import json  # noqa: PLC0415

    print(json.dumps(data, indent=1, default=str))


def _load(args):
    from .frontend.loader import load_model  # noqa: PLC0415 (imports torch)

    with _working(f"loading {args.model}"):
        return load_model(args.model, weights=args.weights, input_shapes=args.input_shape,
                          input_dtypes=args.input_dtype, init_args=args.init_args, trust_pickle=args.trust_pickle)


def _check_verify_options(args) -> None:
    if args.runs < 1:
        raise InputError(f"--runs must be at least 1, got {args.runs}")
    if not args.tol > 0:
        raise InputError(f"--tol must be positive, got {args.tol}")


def _check_out_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"output path {out} exists and is not a folder")
    from .folders import file_in_the_way  # noqa: PLC0415

    blocker = file_in_the_way(out.parent)
    if blocker is not None:  # fail before the (slow) compile, not when saving
        raise InputError(f"cannot create the output folder {out}: {blocker} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        previous = (out / "report.json").is_file() and (out / "ir").is_dir()
        if not previous:
            raise InputError(f"output folder {out} is not empty and does not hold a previous ModelBlocks output; "
                             "compile replaces the whole folder, so pick a new one or pass --force")


def _verify(compiled, loaded, args, console) -> tuple[bool, dict]:
    """Run `api.verify`, print the table; returns the verdict and its JSON form."""
    from .api import verify  # noqa: PLC0415

    source = compiled.reference_name
    with _working("verifying") as progress:
        results = verify(compiled, loaded.example_inputs, runs=args.runs, seed=args.seed, print_table=False,
                         progress=progress)
    from rich.table import Table  # noqa: PLC0415

    mode = compiled.quantize_mode
    console.print(f"verification on {args.runs} seeded random inputs (worst case, tolerance {args.tol:g}):")
    table = Table()
    for col in ("output", "C max|err|", "C rel L2", "ref max|err|", "ref rel L2", "C vs ref", ""):
        table.add_column(col, justify="left" if col == "output" else "right")
    ok = True
    rows = []
    for r in results:
        good = r.passes(args.tol, mode)
        ok &= good
        rows.append({"output": r.name, "max_abs_c": r.max_abs_c, "rel_l2_c": r.rel_l2_c, "max_abs_ref": r.max_abs_ref,
                     "rel_l2_ref": r.rel_l2_ref, "rel_l2_c_ref": r.rel_l2_c_ref, "exact_c_ref": r.exact_c_ref,
                     "check": r.check, "ok": good})
        table.add_row(r.name, f"{r.max_abs_c:.3e}", f"{r.rel_l2_c:.3e}", f"{r.max_abs_ref:.3e}",
                      f"{r.rel_l2_ref:.3e}", "bit-exact" if r.exact_c_ref else f"{r.rel_l2_c_ref:.3e}",
                      "ok" if good else "FAIL")
    console.print(table)
    if ok and mode == "int8":
        console.print("verification passed: the C equals the int8 reference bit for bit (the distance to "
                      f"{source} is the quantization error; see the quantization report)")
    elif ok and mode:
        console.print(f"verification passed: the C is within rel L2 < {args.tol:g} of the int8-weights reference "
                      f"(the distance to {source} is the quantization error)")
    elif ok:
        console.print(f"verification passed: every output within rel L2 < {args.tol:g} of {source}")
    else:
        console.print(f"verification FAILED: rel L2 >= {args.tol:g} (the C does not compute what {source} computes; "
                      f"please report this with the model on {ISSUES})")
    return ok, {"ok": ok, "reference": source, "runs": args.runs, "seed": args.seed, "tol": args.tol,
                "quantize": mode, "outputs": rows}


def _print_report(report: dict, console) -> None:
    from rich.table import Table  # noqa: PLC0415

    console.print(f"model {report['name']}: {len(report['layers'])} layers, {report['macs']:,} MACs, "
                  f"{report['params']:,} params, weights {report['weights_bytes']:,} B, "
                  f"arena {report['arena_bytes']:,} B")
    table = Table()
    for col, just in (("#", "right"), ("op", "left"), ("module", "left"), ("source", "left"),
                      ("output", "left"), ("MACs", "right"), ("params", "right")):
        table.add_column(col, justify=just)
    layers = report["layers"]
    for row in layers[:80]:
        out = "x".join(str(d) for d in row["outputs"][0]) if row["outputs"] else ""
        table.add_row(str(row["index"]), row["op"], row["scope"] or "-", row["source"] or "", out,
                      f"{row['macs']:,}", f"{row['params']:,}")
    if len(layers) > 80:
        table.add_row("...", f"{len(layers) - 80} more layers", "", "", "", "", "")
    console.print(table)


def _files(out: Path) -> list[str]:
    """Files of the output folder; a target's sub-folder is one line."""
    return sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir())


def _compile(loaded, args, name="model", prefix=None, arena_section=""):
    from .api import compile as mb_compile  # noqa: PLC0415

    if prefix is not None and not _IDENT.match(prefix):
        raise InputError(f"--prefix '{prefix}' is not a C identifier (letters, digits, _; not starting with a digit)")
    if not _IDENT.match(name):
        raise InputError(f"--name '{name}' is not a C identifier (letters, digits, _; not starting with a digit)")
    if arena_section and not re.match(r"^[A-Za-z0-9_.$]+$", arena_section):
        raise InputError(f"--arena-section '{arena_section}' is not a valid linker section name")
    quant = {}
    if getattr(args, "quantize", None):
        # an ONNX QDQ model brings its own scales; compile() says which tensors lack them, if any
        if args.quantize == "int8" and not args.calibration and not isinstance(loaded.model, str):
            raise InputError("--quantize int8 needs --calibration DATA: typical inputs to choose the activation ranges")
        quant = {"quantize": args.quantize, "keep_float": tuple(args.keep_float), "observer": args.observer,
                 "calibration": args.calibration if args.quantize == "int8" else None}
    elif getattr(args, "calibration", None) or getattr(args, "keep_float", None) or getattr(args, "observer", None):
        raise InputError("--calibration, --observer and --keep-float need --quantize")
    with _working("compiling") as progress, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NonFiniteWeightsWarning)
        compiled = mb_compile(loaded.model, loaded.example_inputs, name=name, prefix=prefix,
                              arena_section=arena_section, sparse=getattr(args, "sparse", "auto"),
                              kernels=getattr(args, "kernels", "optimized"),
                              allow_nonfinite=getattr(args, "allow_nonfinite", False), progress=progress, **quant)
    for w in caught:  # ours as one plain line on stderr (not a file:line warning); others as they were
        if issubclass(w.category, NonFiniteWeightsWarning):
            print(f"warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return compiled


COMPILE_TARGETS = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "stm32h723zg")


def cmd_compile(args) -> int:
    _check_verify_options(args)
    if args.target and args.target.lower() not in COMPILE_TARGETS + ("stm32h723", "nucleo-h723zg"):
        raise InputError(f"--target {args.target!r}: choose one of {', '.join(COMPILE_TARGETS)}")
    out = Path(args.out)
    _check_out_dir(out, args.force)
    console = _console(args)
    loaded = _load(args)
    for note in loaded.notes:
        console.print(f"note: {note}")
    compiled = _compile(loaded, args, name=args.name, prefix=args.prefix, arena_section=args.arena_section)
    ok, verification = True, None
    if not args.no_verify:
        ok, verification = _verify(compiled, loaded, args, console)  # before saving: a crash here writes nothing
    try:
        compiled.save(out)  # atomic: on failure, a previous output folder stays as it was
    except OSError as exc:  # save() words the usual causes itself; this is the rest
        raise InputError(f"cannot write the output folder {out}: {exc}") from None
    _print_report(compiled.report, console)
    quantization = None
    if compiled.quantization is not None:
        quantization = _print_quantization(compiled, args, out, console)
    target = _build_target(compiled, args, out, console) if args.target else None
    ok = ok and (target or {}).get("fits", True)
    console.print(f"wrote {out}/:")
    for f in _files(out):
        console.print(f"  {f}")
    if args.json:
        _emit_json({"ok": ok, "out": str(out), "files": _files(out), "notes": list(loaded.notes),
                    "report": compiled.report, "verification": verification, "quantization": quantization,
                    "target": target})
    return EXIT_OK if ok else EXIT_CHECK_FAILED


def _print_quantization(compiled, args, out: Path, console) -> dict:
    """The quantization report on the calibration data (int8) or on the verification inputs
    (int8-weights), also saved as OUT/quantization.json; returns its JSON form."""
    import json  # noqa: PLC0415

    from .reports.quantization import format_quantization  # noqa: PLC0415

    if args.calibration:
        data = args.calibration
    else:
        from .api import _seeded_inputs  # noqa: PLC0415

        data = lambda: [[x.numpy() for x in s] for s in _seeded_inputs(compiled, _example(compiled), args.runs, args.seed)]  # noqa: E731
    with _working("quantization report: int8 reference vs float on the data"):
        report = compiled.quantization_report(data)
    console.print(format_quantization(report), markup=False, highlight=False)
    doc = report.to_json()
    (out / "quantization.json").write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def _example(compiled):
    import torch  # noqa: PLC0415

    return tuple(torch.zeros(compiled.graph.tensors[n].shape, dtype=getattr(torch, compiled.graph.tensors[n].dtype.value))
                 for n in compiled.graph.inputs)


def _sizes(s) -> dict:
    return {k: getattr(s, k) for k in ("flash", "ram_static", "model_code", "weights", "library_code", "arena")}


def _build_target(compiled, args, out: Path, console) -> dict:
    from .targets.boards import ALIASES  # noqa: PLC0415
    from .targets.cpus import CPUS  # noqa: PLC0415

    target = args.target.lower()
    if target in CPUS:
        with _working(f"cross-compiling for {target} (arm-none-eabi-gcc)"):
            build = compiled.build_for(target, workdir=out / target)
        s = build.sizes
        console.print(f"{target}: built {build.elf} for QEMU {build.cpu.machine}: flash {s.flash:,} B (model code {s.model_code:,} B, weights "
                      f"{s.weights:,} B, C library {s.library_code:,} B), static RAM {s.ram_static:,} B "
                      f"(arena {s.arena:,} B)", markup=False)
        return {"target": target, "machine": build.cpu.machine, "elf": str(build.elf), "sizes": _sizes(s)}
    if ALIASES.get(target, target) == "stm32h723zg":
        from .targets.firmware import build_firmware, write_firmware_project  # noqa: PLC0415

        refusal = _firmware_does_not_fit(compiled)
        if refusal:  # the linker would fail with a cryptic overflow: say it in the board's terms
            console.print(f"stm32h723zg: {refusal}", markup=False, soft_wrap=True)
            return {"target": "stm32h723zg", "fits": False, "verdict": refusal}

        project = write_firmware_project(compiled, out / "stm32h723zg", arena_region=args.arena_region)
        with _working("building the stm32h723zg firmware (arm-none-eabi-gcc)"):
            fw = build_firmware(project)
        s = fw.sizes
        console.print(f"stm32h723zg: firmware project in {project}, built {fw.elf.name}, {fw.bin.name}, {fw.hex.name}: "
                      f"flash {s.flash:,} B of 1,024 KB, static RAM {s.ram_static:,} B (arena {s.arena:,} B in "
                      f"{args.arena_region.upper()}); flash it with `make -C {project} flash`", markup=False)
        return {"target": "stm32h723zg", "project": str(project), "elf": str(fw.elf), "bin": str(fw.bin),
                "hex": str(fw.hex), "arena_region": args.arena_region, "sizes": _sizes(s)}
    raise InputError(f"--target {args.target!r}: choose one of {', '.join(COMPILE_TARGETS)}")


def _firmware_does_not_fit(compiled) -> str:
    """'' when the model fits the NUCLEO-H723ZG's flash and RAM, else the verdict of `analyze`."""
    from .reports.analyze import analyze_fit, memory_report  # noqa: PLC0415
    from .targets.boards import get_board  # noqa: PLC0415

    board = get_board("stm32h723zg")
    verdict = analyze_fit(memory_report(compiled, estimate=False), board)
    return "" if verdict.fits else verdict.text  # the arena's region is checked when the firmware links


def cmd_verify(args) -> int:
    _check_verify_options(args)
    console = _console(args)
    loaded = _load(args)
    for note in loaded.notes:
        console.print(f"note: {note}")
    compiled = _compile(loaded, args)
    ok, verification = _verify(compiled, loaded, args, console)
    if args.json:
        _emit_json({**verification, "notes": list(loaded.notes), "model": compiled.report["name"]})
    return EXIT_OK if ok else EXIT_CHECK_FAILED


def cmd_analyze(args) -> int:
    from .reports.analyze import analyze_fit, format_totals, format_verdict, memory_report  # noqa: PLC0415
    from .targets.boards import get_board, load_board_file  # noqa: PLC0415

    board = load_board_file(args.target_file) if args.target_file else get_board(args.target)
    if args.plot and not args.plot.lower().endswith(".png"):
        raise InputError(f"--plot {args.plot}: the plot is a PNG file; name it *.png")
    path = Path(args.model)
    if path.is_dir():  # a folder written by `modelblocks compile`
        from .api import load  # noqa: PLC0415

        compiled = load(path)
        notes = []
    else:
        loaded = _load(args)
        notes = loaded.notes
        compiled = _compile(loaded, args)
    with _working("measuring: memory plan and code size estimate"):
        report = memory_report(compiled, estimate=not args.no_estimate)
    verdict = analyze_fit(report, board)
    if args.plot:
        from .reports.plot import plot_arena  # noqa: PLC0415

        region = next(((r.name, r.size) for r in board.regions if r.name == verdict.arena_region), None)
        plot_arena(report, args.plot, region)
    console = _console(args)
    for note in notes:
        console.print(f"note: {note}")
    if args.json:
        _emit_json({"report": report, "board": board.to_dict(), "verdict": verdict.to_dict(), "plot": args.plot,
                    "notes": list(notes)})
        return EXIT_OK if verdict.fits else EXIT_CHECK_FAILED
    _print_memory_table(report, console)
    console.print(format_totals(report), markup=False, soft_wrap=True)
    console.print(f"target {board.name}: flash {board.flash // 1024:,} KB, RAM "
                  + ", ".join(f"{r.name} {r.size // 1024:,} KB" + ("" if r.data else " (code)") for r in board.regions), markup=False)
    console.print(format_verdict(verdict), markup=False, soft_wrap=True)
    if args.plot:
        console.print(f"wrote {args.plot}")
    return EXIT_OK if verdict.fits else EXIT_CHECK_FAILED


def _print_memory_table(report: dict, console) -> None:
    from rich.table import Table  # noqa: PLC0415

    console.print(f"model {report['name']}: {len(report['layers'])} layers, {report['macs']:,} MACs, "
                  f"{report['params']:,} params")
    table = Table()
    for col, just in (("#", "right"), ("op", "left"), ("module", "left"), ("output", "left"), ("params", "right"),
                      ("MACs", "right"), ("weight B", "right"), ("act B", "right"), ("live B", "right")):
        table.add_column(col, justify=just)
    layers = report["layers"]
    for row in layers[:80]:
        out = "x".join(str(d) for d in row["outputs"][0]) if row["outputs"] else ""
        table.add_row(str(row["index"]), row["op"], row["scope"] or "-", out, f"{row['params']:,}",
                      f"{row['macs']:,}", f"{row['weight_bytes']:,}", f"{row['activation_bytes']:,}",
                      f"{row['live_bytes']:,}")
    if len(layers) > 80:
        table.add_row("...", f"{len(layers) - 80} more layers", "", "", "", "", "", "", "")
    console.print(table)


def cmd_simulate(args) -> int:
    from .api import simulate  # noqa: PLC0415
    from .reports.simulation import expand_targets, format_simulation  # noqa: PLC0415
    from .targets.boards import get_board  # noqa: PLC0415
    from .targets.estimates import Assumptions  # noqa: PLC0415

    _check_verify_options(args)
    targets = expand_targets(args.target)  # bad names fail before the (slow) compile
    assumptions = Assumptions(clock_mhz=args.clock_mhz, cpi=args.cpi, nj_per_cycle=args.nj_per_cycle)
    board = get_board(args.board)
    path = Path(args.model)
    notes = []
    if path.is_dir():
        from .api import load  # noqa: PLC0415

        model, example = load(path), None
    else:
        loaded = _load(args)
        notes = loaded.notes
        model, example = _compile(loaded, args), loaded.example_inputs
    if args.keep:
        keep = Path(args.keep)
        if keep.exists() and not keep.is_dir():
            raise InputError(f"--keep {keep}: exists and is not a folder")
    with _working("simulating") as progress:
        report = simulate(model, example, target=targets, runs=args.runs, seed=args.seed, opt=args.opt, tol=args.tol,
                          assumptions=assumptions, board=board, workdir=args.keep, print_table=False,
                          progress=progress)
    console = _console(args)
    for note in notes:
        console.print(f"note: {note}")
    if args.json:
        _emit_json({**report.to_dict(), "notes": list(notes)})
        return EXIT_OK if report.ok else EXIT_CHECK_FAILED
    console.print(format_simulation(report), markup=False, soft_wrap=True)
    if args.keep:
        console.print(f"builds kept in {args.keep}/<core>/ (re-run one with the command in its run.sh)", markup=False)
    return EXIT_OK if report.ok else EXIT_CHECK_FAILED


def _number_list(text: str, option: str, kind=float) -> list:
    values = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        try:
            if kind == "rank" and "=" in item:  # per-layer ranks: GLOB=D, several joined by '+'
                pairs = [part.rsplit("=", 1) for part in item.split("+")]
                values.append(tuple((glob.strip(), int(d)) for glob, d in pairs))
                continue
            if kind == "rank" and item.startswith("b"):
                float(item[1:])
                values.append(item)
                continue
            values.append(int(item) if kind is int or (kind == "rank" and item.isdigit()) else float(item))
        except ValueError:
            raise InputError(f"{option} {text!r}: {item!r} is not a number") from None
    return values


def cmd_study(args) -> int:
    from .compress.study import StudyData, StudySpec, load_samples, run_study  # noqa: PLC0415
    from .reports.study import format_study, save_study, select_best, study_json  # noqa: PLC0415
    from .targets.boards import get_board  # noqa: PLC0415

    board = get_board(args.target) if args.target else None
    x_eval, y_eval = load_samples(args.data, "--data")
    x_train, y_train = load_samples(args.train, "--train") if args.train else (None, None)
    x_calib = load_samples(args.calibration, "--calibration")[0] if args.calibration else None
    spec = StudySpec(
        ranks=[None] + _number_list(args.ranks, "--ranks", "rank"),
        sparsity=[0.0] + _number_list(args.sparsity, "--sparsity"),
        channels=[0.0] + _number_list(args.channels, "--channels"),
        heads=[0.0] + _number_list(args.heads, "--heads"),
        layers=[0] + _number_list(args.remove_layers, "--remove-layers", int),
        precisions=[p.strip() for p in args.precision.split(",") if p.strip()],
        combine=args.combine, finetune=args.finetune, finetune_lr=args.finetune_lr, exclude=tuple(args.exclude))
    spec.check()
    if args.finetune and x_train is None:
        raise InputError("--finetune needs --train: the samples (and labels) to fine-tune on")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output path {out} exists and is not a folder")
    loaded = _load(args)
    console = _console(args)
    for note in loaded.notes:
        console.print(f"note: {note}")
    data = StudyData(x_eval, y_eval, x_train, y_train, x_calib)
    total = len(spec.settings()) * len(spec.precisions)
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(file=sys.stderr), transient=True, disable=not _show_progress()) as bar:
        task = bar.add_task("study", total=total)

        def progress(text: str) -> None:
            bar.update(task, description=text[:70])
            if text.startswith("compiling"):
                bar.advance(task)
        study = run_study(loaded.model, loaded.example_inputs, data, spec, seed=args.seed, code=args.code,
                          progress=progress)
    selection = select_best(study.points, board, args.max_accuracy_drop, minimize=args.minimize)
    try:
        written = save_study(study.points, selection, out, f"{Path(args.model).stem}: compression study", board)
    except OSError as exc:
        raise InputError(f"cannot write the study to {out}: {exc}") from None
    failed = [p.name for p in study.points if p.c_check.startswith("FAILED")]
    console.print(format_study(study.points, selection, board), markup=False, soft_wrap=True)
    console.print("wrote " + ", ".join(str(p) for p in written), markup=False, soft_wrap=True)
    if args.json:
        _emit_json({**study_json(study.points, selection), "failed_checks": failed,
                    "written": [str(p) for p in written]})
    if failed:
        console.print(f"error: the C of {len(failed)} point(s) differs from its reference: {', '.join(failed)}; "
                      f"please report this to {ISSUES}", markup=False)
    return EXIT_OK if selection.point is not None and not failed else EXIT_CHECK_FAILED


def _command_line(args) -> str:
    """The command as typed, from the parsed options that differ from their defaults (for the page)."""
    import shlex  # noqa: PLC0415

    words = ["modelblocks", args.command]
    for action in args.parser._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings:
            words += [str(value)] if action.dest != "help" and value is not None else []
        elif action.dest not in ("help", "json") and value not in (action.default, None, False, []):
            flag = max(action.option_strings, key=len)
            values = value if isinstance(value, list) else [value]
            words += [flag] if value is True else [w for v in values for w in (flag, str(v))]
    return shlex.join(words)


def cmd_report(args) -> int:
    from .api import report  # noqa: PLC0415
    from .targets.boards import get_board  # noqa: PLC0415

    _check_verify_options(args)
    board = get_board(args.board)  # a bad name fails before the (slow) compile
    if not args.out.lower().endswith((".html", ".htm")):
        raise InputError(f"--out {args.out}: the report is an HTML file; name it *.html")
    path = Path(args.model)
    notes = []
    if path.is_dir():  # a folder written by `modelblocks compile`: no PyTorch model to compare with
        from .api import load  # noqa: PLC0415

        if getattr(args, "quantize", None):
            raise InputError(f"{path} is a compiled folder: it is already compiled, --quantize does not apply")
        model, example = load(path), None
    else:
        loaded = _load(args)
        notes = loaded.notes
        model, example = _compile(loaded, args), loaded.example_inputs
    with _working("verifying" + (" and simulating on cortex-m7 (QEMU)" if args.simulate else "") + ", writing the report"):
        page = report(model, example, out=args.out, board=board, simulate=args.simulate, runs=args.runs,
                      seed=args.seed, tol=args.tol, estimate=not args.no_estimate,
                      quantization_data=getattr(args, "calibration", None), command=_command_line(args))
    console = _console(args)
    for note in notes:
        console.print(f"note: {note}")
    ok = page["fit"]["fits"] and (page["verification"] is None or page["verification"]["ok"])
    if args.json:
        _emit_json({**page, "out": args.out, "notes": list(notes)})
    console.print(page["fit"]["text"], markup=False, soft_wrap=True)
    console.print("verification " + ("passed" if page["verification"]["ok"] else "FAILED (see the page)"), markup=False)
    console.print(f"wrote {args.out}", markup=False)
    return EXIT_OK if ok else EXIT_CHECK_FAILED


def cmd_demo(args) -> int:
    from .models import demo  # noqa: PLC0415 (the demo model is only needed here)

    result = demo.run(args.out)
    return result if isinstance(result, int) else EXIT_OK


# -- entry point ------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USER_ERROR
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USER_ERROR
    try:
        with warnings.catch_warnings():
            # torch's deprecation notices are not the user's business; our own errors say what matters
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="torch")
            return args.func(args)
    except CompileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"The C compiler rejected code ModelBlocks generated. Unless your compiler is missing, this is a "
              f"ModelBlocks bug: please report it on {ISSUES}", file=sys.stderr)
        return EXIT_INTERNAL
    except ToolchainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TOOLCHAIN
    except (UnsupportedOpError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNSUPPORTED
    except ModelBlocksError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # anything else is our bug: show it in full and ask for a report
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        print(f"This is a ModelBlocks bug. Please report it on {ISSUES} with the command you ran, the traceback "
              "above and, if you can, the model file.", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
