"""The project plan's test bank: every row's generated C within relative L2 1e-5 of PyTorch, on
the host and under AddressSanitizer + UndefinedBehaviorSanitizer."""

import json
import os

import pytest

from bank_models import BANK
from helpers import check_model

RESULTS = os.environ.get("MODELBLOCKS_BANK_RESULTS")  # file to append measured errors to


@pytest.mark.parametrize("name", sorted(BANK))
def test_bank_row(name):
    model, inputs, shapes = BANK[name]()
    res = check_model(model, inputs, expect_shapes=shapes, sanitize=True)
    report = res["compiled"].report
    assert report["arena_bytes"] > 0 or name in ("01_linear", "02_linear_relu", "03_conv2d", "05_maxpool",
                                                  "06_avgpool", "07_adaptive_avgpool")
    assert report["weights_bytes"] == 4 * report["params"]
    if RESULTS:
        with open(RESULTS, "a") as f:
            f.write(json.dumps({"row": name, "rel_l2_c": max(res["rel_c"]), "rel_l2_ref": max(res["rel_ref"]),
                                "arena_bytes": report["arena_bytes"], "weights_bytes": report["weights_bytes"],
                                "macs": report["macs"], "params": report["params"]}) + "\n")
