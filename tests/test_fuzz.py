"""Property-based equivalence: random small models drawn from the supported op set
(tests/fuzz_strategies.py) must compute the same thing in PyTorch, the NumPy interpreter and the
generated C on the host.

- float32: interpreter and C each within relative L2 1e-5 of PyTorch, on several input sets per model;
- int8: the C equals the int8 interpreter bit for bit, on calibration inputs and on fresh ones
  (including inputs three times wider than the calibration range, which saturate);
- some examples of each property also run as a stand-alone program under ASan + UBSan.

Derandomized and bounded (`max_examples`), so CI sees the same examples every run and the file
stays fast; bench/fuzz_soak.py runs the same strategies for as long as one wants. `note()` records
the recipe of a failing example (paste it into `fuzz_strategies.build` to reproduce it) and
`event()` the families and ops that ran (`pytest --hypothesis-show-statistics`).
"""

import json
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import modelblocks
from fuzz_strategies import FLOAT_FAMILIES, INT8_FAMILIES, build, make_inputs
from helpers import FLOAT_TOL, outputs_of
from modelblocks.api import rel_l2

INPUT_SETS = 3  # input sets checked per compiled model

FUZZ = settings(max_examples=10, deadline=None, derandomize=True, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _events(recipe: dict) -> None:
    event(f"family={recipe['family']}")
    if recipe["family"] in ("chain", "binary", "layout"):
        for layer in recipe["layers" if recipe["family"] == "chain" else "steps"]:
            event(f"op={layer['op']}")
    elif recipe["family"] == "rnn":
        event(f"op={recipe['kind']}")


@pytest.mark.parametrize("family", sorted(FLOAT_FAMILIES))
@FUZZ
@given(data=st.data())
def test_float_model_matches_pytorch(family, data):
    recipe = data.draw(FLOAT_FAMILIES[family], label="recipe")
    note(json.dumps(recipe))
    _events(recipe)
    sanitize = data.draw(st.integers(0, 7), label="sanitize") in (0, 3)  # about one example in four
    model = build(recipe)
    input_sets = [make_inputs(recipe, k) for k in range(INPUT_SETS)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's note on padding='same' with even kernels
        compiled = modelblocks.compile(model, input_sets[0])
    for k, xs in enumerate(input_sets):
        arrays = [x.numpy() for x in xs]
        expected = outputs_of(model, xs)
        got_ref = compiled.run_reference(arrays)
        got_c = compiled.run_c(arrays)
        assert len(got_ref) == len(got_c) == len(expected)
        for j, (e, r, c) in enumerate(zip(expected, got_ref, got_c)):
            assert r.shape == e.shape and c.shape == e.shape, (k, j, r.shape, c.shape, e.shape)
            assert rel_l2(r, e) < FLOAT_TOL, f"input set {k}, output {j}: interpreter rel L2 {rel_l2(r, e):.3e}"
            assert rel_l2(c, e) < FLOAT_TOL, f"input set {k}, output {j}: C rel L2 {rel_l2(c, e):.3e}"
    if sanitize:
        event("sanitized")
        arrays = [x.numpy() for x in input_sets[-1]]
        for s, c in zip(compiled.run_sanitized(arrays), compiled.run_c(arrays)):
            assert rel_l2(s, c) < 1e-6  # -O1 with sanitizers vs -O2: same float expressions


@pytest.mark.parametrize("family", sorted(INT8_FAMILIES))
@settings(FUZZ, max_examples=14)
@given(data=st.data())
def test_int8_c_matches_interpreter_bit_exact(family, data):
    recipe = data.draw(INT8_FAMILIES[family], label="recipe")
    note(json.dumps(recipe))
    _events(recipe)
    sanitize = data.draw(st.integers(0, 7), label="sanitize") in (0, 3)
    model = build(recipe)
    calibration = [make_inputs(recipe, k) for k in range(4)]
    # per input, the calibration samples stacked along dim 0 (calibration.py splits them again)
    batch = tuple(torch.cat([xs[i] for xs in calibration], dim=0) for i in range(len(calibration[0])))
    compiled = modelblocks.compile(model, calibration[0], quantize="int8", calibration=batch)
    assert compiled.quantize_mode == "int8"
    checks = [calibration[0], make_inputs(recipe, 10), make_inputs(recipe, 11, scale=3.0)]
    for k, xs in enumerate(checks):
        arrays = [x.numpy() for x in xs]
        ref = compiled.run_reference(arrays)
        got = compiled.run_c(arrays)
        assert len(ref) == len(got)
        for j, (r, c) in enumerate(zip(ref, got)):
            np.testing.assert_array_equal(c, r, err_msg=f"input set {k}, output {j}: C != int8 interpreter")
    if sanitize:
        event("sanitized")
        arrays = [x.numpy() for x in checks[-1]]
        for r, s in zip(compiled.run_reference(arrays), compiled.run_sanitized(arrays)):
            np.testing.assert_array_equal(s, r)
