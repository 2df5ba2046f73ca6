"""Int8 quantization: the fixed-point arithmetic (`arith`), calibration observers (`observers`),
calibration data loading (`calibration`) and the context that op files use to lower a float node
to int8 (`lowering`). The graph rewrites themselves are passes: `passes/quantize.py` (int8) and
`passes/quantize_weights.py` (int8 weights, float activations)."""
