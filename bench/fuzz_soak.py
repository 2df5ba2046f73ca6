"""Soak run of the property-based equivalence tests: the properties of tests/test_fuzz.py and
tests/test_fuzz_onnx.py (the very same test bodies), not derandomized, for a time budget.

    PYTHONPATH=src .venv/bin/python bench/fuzz_soak.py --minutes 10 [--families chain,rnn,int8:chain_int8]
                                                      [--seed 0] [--round 8] [--json out.json]

Families: the PyTorch ones (`chain`, ..., `int8:chain_int8`, ...), and the ONNX ones:
`onnx:handbuilt`, `onnx:handbuilt_int8` (graphs written with onnx.helper), `onnx:torchscript:<family>`
and `onnx:dynamo:<family>` (a PyTorch family exported by that exporter). The default is every
PyTorch family, then the hand-built ONNX ones and each PyTorch family through the TorchScript
exporter (the dynamo exporter takes seconds per model: name its families to soak them).

Rounds of `--round` examples go to each family in turn, each round with its own hypothesis seed
(printed, so a round can be replayed with --seed), until the budget is spent. A failing round is
shrunk by hypothesis and its minimal recipe printed: paste it into `tests/fuzz_strategies.build` (and
`make_inputs`), or for `onnx:handbuilt*` into `test_fuzz_onnx.onnx_model` (and `onnx_inputs`), to
reproduce it. Prints the models and input sets tried per family, and the models an exporter could not
write (not counted as tried). Exits 1 if any property failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import torch  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import UnsatisfiedAssumption  # noqa: E402

import test_fuzz  # noqa: E402  (the properties, with their assertions)
import test_fuzz_onnx  # noqa: E402
from fuzz_strategies import FLOAT_FAMILIES, INT8_FAMILIES  # noqa: E402

_float_body = test_fuzz.test_float_model_matches_pytorch.hypothesis.inner_test  # the functions under @given
_int8_body = test_fuzz.test_int8_c_matches_interpreter_bit_exact.hypothesis.inner_test


def _onnx_body(test: str):
    return getattr(test_fuzz_onnx, test).hypothesis.inner_test


def _exported_body(exporter: str):
    return _onnx_body(f"test_{exporter}_export_matches_onnxruntime_and_pytorch")

PROPERTIES = {  # family -> (property taking hypothesis' `data`, input sets checked per model)
    **{f: (lambda data, f=f: _float_body(f, data), test_fuzz.INPUT_SETS) for f in FLOAT_FAMILIES},
    **{f"int8:{f}": (lambda data, f=f: _int8_body(f, data), 3) for f in INT8_FAMILIES},
    "onnx:handbuilt": (_onnx_body("test_handbuilt_onnx_matches_onnxruntime"), test_fuzz_onnx.INPUT_SETS),
    "onnx:handbuilt_int8": (_onnx_body("test_handbuilt_onnx_int8_c_matches_interpreter_bit_exact"), 3),
    **{f"onnx:{exporter}:{f}": (lambda data, f=f, body=_exported_body(exporter): body(f, data), test_fuzz_onnx.INPUT_SETS)
       for exporter in ("torchscript", "dynamo") for f in FLOAT_FAMILIES},
}
DEFAULT = [k for k in PROPERTIES if not k.startswith("onnx:dynamo:")]


def run_round(key: str, examples: int, round_seed: int, counts: dict) -> str | None:
    """`examples` random models of one family; returns the failure report, or None."""
    prop, inputs_per_model = PROPERTIES[key]

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @seed(round_seed)
    @given(data=st.data())
    def soak(data):
        counts[key]["models"] += 1
        counts[key]["inputs"] += inputs_per_model
        try:
            prop(data)
        except UnsatisfiedAssumption:  # the exporter cannot write this model: not a model tried
            counts[key]["models"] -= 1
            counts[key]["inputs"] -= inputs_per_model
            counts[key]["refused"] += 1
            raise

    try:
        soak()
    except Exception as exc:  # noqa: BLE001 (a failing property: report it and go on)
        return "\n".join(_report(e) for e in getattr(exc, "exceptions", [exc]))  # several distinct failures
    return None


def _report(exc: BaseException) -> str:
    notes = "\n".join(getattr(exc, "__notes__", []))
    return f"{type(exc).__name__}: {exc}\n{notes}\n{''.join(traceback.format_tb(exc.__traceback__)[-2:])}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--families", default=",".join(DEFAULT), help=f"comma-separated, from {list(PROPERTIES)}")
    parser.add_argument("--seed", type=int, default=None, help="first round's seed (default: from the clock)")
    parser.add_argument("--round", type=int, default=8, help="examples per round")
    parser.add_argument("--json", default=None, help="write the counts and failures here")
    args = parser.parse_args(argv)
    keys = args.families.split(",")
    unknown = [k for k in keys if k not in PROPERTIES]
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {list(PROPERTIES)}")
    torch.set_num_threads(1)
    first_seed = args.seed if args.seed is not None else int(time.time())
    counts = {k: {"models": 0, "inputs": 0, "refused": 0, "rounds": 0, "failures": 0} for k in keys}
    failures = []
    start, budget, n = time.monotonic(), args.minutes * 60, 0
    while time.monotonic() - start < budget:
        key, round_seed = keys[n % len(keys)], first_seed + n
        n += 1
        report = run_round(key, args.round, round_seed, counts)
        counts[key]["rounds"] += 1
        if report:
            counts[key]["failures"] += 1
            failures.append({"family": key, "seed": round_seed, "report": report})
            print(f"FAIL {key} (round seed {round_seed}):\n{report}", flush=True)
        else:
            print(f"ok   {key} round seed {round_seed} ({time.monotonic() - start:.0f} s)", flush=True)
    elapsed = time.monotonic() - start
    # models count every example run, shrinking included; refused: an exporter could not write the model
    print(f"\n{'family':<28}{'models':>8}{'inputs':>8}{'refused':>9}{'rounds':>8}{'failed':>8}")
    for key, c in counts.items():
        print(f"{key:<28}{c['models']:>8}{c['inputs']:>8}{c['refused']:>9}{c['rounds']:>8}{c['failures']:>8}")
    total_m = sum(c["models"] for c in counts.values())
    total_i = sum(c["inputs"] for c in counts.values())
    print(f"{'total':<28}{total_m:>8}{total_i:>8}   in {elapsed / 60:.1f} min, first seed {first_seed}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"counts": counts, "failures": failures, "minutes": elapsed / 60, "first_seed": first_seed}, f,
                      indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
