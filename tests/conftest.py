import os
import sys
import zlib

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_per_test(request):
    """Each test draws the same random inputs whatever order pytest-xdist runs the tests in."""
    torch.manual_seed(zlib.crc32(request.node.nodeid.encode()))
