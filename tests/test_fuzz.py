"""Property-based equivalence: random small models drawn from the supported op set
(tests/fuzz_strategies.py) must compute the same thing in PyTorch, the NumPy interpreter and the
generated C on the host.

- float32: interpreter and C each within relative L2 1e-5 of PyTorch, on several input sets per model;
- int8: the C equals the int8 interpreter bit for bit, on calibration inputs and on fresh ones
  (including inputs three times wider than the calibration range, which saturate);
- some examples of each property also run as a stand-alone program under ASan + UBSan;
- the comparisons have teeth: a generated C with one weight moved by 1000 float32 ULPs, or one int8
  weight by one LSB, fails them (the mutation tests at the end).

Derandomized and bounded (`max_examples`), so CI sees the same examples every run and the file
stays fast; bench/fuzz_soak.py runs the same strategies for as long as one wants. `note()` records
the recipe of a failing example (paste it into `fuzz_strategies.build` to reproduce it) and
`event()` the families and ops that ran (`pytest --hypothesis-show-statistics`).
"""

import dataclasses
import json
import re
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
from modelblocks.targets.host import HostLibrary

INPUT_SETS = 3  # input sets checked per compiled model

FUZZ = settings(max_examples=10, deadline=None, derandomize=True, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _events(recipe: dict) -> None:
    event(f"family={recipe['family']}")
    if recipe["family"] in ("chain", "binary", "layout", "sequence", "embedding"):
        for layer in recipe["layers" if recipe["family"] == "chain" else "steps"]:
            event(f"op={layer['op']}")
            if layer.get("mask"):
                event(f"mask={layer['mask']}")
    elif recipe["family"] in ("rnn", "attention"):
        event(f"op={recipe['kind']}")
        if recipe.get("mask"):
            event(f"mask={recipe['mask']}")


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
@settings(FUZZ, max_examples=10)
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


# -- the properties have teeth: a deliberately broken C must fail the very same comparisons ------------

# fixed recipes (as the strategies draw them): a Conv1d, an activation, flatten and a Linear
MUTANT_CHAIN = dict(family="chain", seed=7, inputs=[[2, 3, 8]], layers=[
    dict(op="conv", dim=1, cin=3, cout=4, k=3, stride=1, padding=1, dilation=1, groups=1, bias=True),
    dict(op="act", fn="tanh"), dict(op="flatten"), dict(op="linear", cin=32, cout=5, bias=True)])
WEIGHTS_C = "model_weights.c"
FLOAT_LITERAL = re.compile(r"-?\d+(?:\.\d*)?(?:e[-+]?\d+)?f(?=[,\s])")
INT8_ARRAY = re.compile(r"const int8_t (\w+_weight_q)\[\d+\][^{]*\{([^}]*)\}")


def _with_file(source, name: str, text: str):
    """The generated sources with one file's text replaced (built afresh by HostLibrary)."""
    return dataclasses.replace(source, files={**source.files, name: text})


def _ulps_away(literal: str, ulps: int) -> str:
    """A C float literal moved by `ulps` float32 steps away from zero."""
    bits = np.float32(float(literal.rstrip("f"))).view(np.int32) + np.int32(ulps)
    return f"{float(bits.view(np.float32))!r}f"


@pytest.mark.parametrize("ulps, caught", [(1000, True), (1, False)])
def test_float_property_catches_one_weight_1000_ulps_off(ulps, caught):
    """The largest weight in the generated C moved by `ulps` float32 steps: 1000 steps (a relative
    change near 1e-4) must fail the float property's rel L2 < 1e-5 check against PyTorch; one step is
    below its resolution (the tolerance is not tighter than float32 itself)."""
    model = build(MUTANT_CHAIN)
    input_sets = [make_inputs(MUTANT_CHAIN, k) for k in range(INPUT_SETS)]
    compiled = modelblocks.compile(model, input_sets[0])
    text = compiled.source.files[WEIGHTS_C]
    target = max(FLOAT_LITERAL.finditer(text), key=lambda m: abs(float(m.group().rstrip("f"))))
    mutated = text[:target.start()] + _ulps_away(target.group(), ulps) + text[target.end():]
    assert mutated != text
    broken = HostLibrary(_with_file(compiled.source, WEIGHTS_C, mutated), compiled.graph)
    worst_intact, worst_broken = 0.0, 0.0
    for xs in input_sets:
        arrays = [x.numpy() for x in xs]
        (expected,), (intact,), (got,) = outputs_of(model, xs), compiled.run_c(arrays), broken.run(arrays)
        worst_intact = max(worst_intact, rel_l2(intact, expected))
        worst_broken = max(worst_broken, rel_l2(got, expected))
    assert worst_intact < FLOAT_TOL, worst_intact
    assert (worst_broken >= FLOAT_TOL) == caught, f"{ulps} ULPs: worst rel L2 {worst_broken:.3e}"


def test_int8_property_catches_one_weight_off_by_one_lsb():
    """One int8 weight of the generated C (reference kernels, whose weights are plain int8 arrays) one
    LSB off: the int8 property's bit-exact comparison with the interpreter must fail."""
    recipe = dict(MUTANT_CHAIN, seed=11)
    model = build(recipe)
    calibration = [make_inputs(recipe, k) for k in range(4)]
    batch = tuple(torch.cat([xs[i] for xs in calibration], dim=0) for i in range(len(calibration[0])))
    compiled = modelblocks.compile(model, calibration[0], quantize="int8", calibration=batch, kernels="reference")
    text = compiled.source.files[WEIGHTS_C]
    array = INT8_ARRAY.search(text)
    assert array, "no int8 weight array in the generated C"
    values = [int(v) for v in array.group(2).replace("\n", " ").split(",") if v.strip()]
    i = int(np.argmax(np.abs(values)))  # a weight at +-127: moving it one LSB towards zero stays in range
    values[i] -= int(np.sign(values[i]))
    body = ", ".join(str(v) for v in values)
    mutated = text[:array.start(2)] + body + text[array.end(2):]
    broken = HostLibrary(_with_file(compiled.source, WEIGHTS_C, mutated), compiled.graph)
    checks = [calibration[0], make_inputs(recipe, 10), make_inputs(recipe, 11, scale=3.0)]
    differing = 0
    for xs in checks:
        arrays = [x.numpy() for x in xs]
        (ref,), (intact,), (got,) = compiled.run_reference(arrays), compiled.run_c(arrays), broken.run(arrays)
        np.testing.assert_array_equal(intact, ref)
        differing += int(np.count_nonzero(got != ref))
    assert differing > 0, f"weight {array.group(1)}[{i}] one LSB off went unnoticed"
