"""The digits MLP/CNN/ViT on the Cortex-M7 in QEMU as float32, int8 and int8-weights builds: exact
instructions per inference, flash and arena from the ELF, measured stack, and whether the int8 QEMU
outputs equal the interpreter bit for bit. Run: .venv/bin/python bench/digits_m7.py"""

from __future__ import annotations

import numpy as np

import modelblocks
from modelblocks.models import digits


def main() -> None:
    data = digits.load_data()
    inputs = [[data.x_test[i:i + 1].numpy()] for i in range(3)]
    print(f"{'model':<5} {'build':<13} {'instructions':>13} {'flash B':>9} {'weights B':>10} {'arena B':>8} "
          f"{'stack B':>8}  QEMU == interpreter")
    for name in ("mlp", "cnn", "vit"):
        model = digits.trained(name)
        for mode in (None, "int8", "int8-weights"):
            kw = {"quantize": mode} if mode else {}
            if mode == "int8":
                kw["calibration"] = data.x_calib
            c = modelblocks.compile(model, (data.x_test[:1],), **kw)
            sim = c.simulate(inputs, target="cortex-m7")
            exact = all(np.array_equal(out[0], c.run_reference(x)[0]) for out, x in zip(sim.outputs, inputs))
            s = sim.build.sizes
            print(f"{name:<5} {mode or 'float32':<13} {sim.instructions[0]:>13,} {s.flash:>9,} {s.weights:>10,} "
                  f"{s.arena:>8,} {sim.stack_bytes:>8,}  {'bit-exact' if exact else 'float rounding'}", flush=True)


if __name__ == "__main__":
    main()
