"""cast: dtype conversions against torch, and the casts that must be refused."""

import pytest
import torch

from helpers import check_model, op_model
from modelblocks.errors import UnsupportedOpError

CASES = {
    "float_noop": (lambda x: x.float() * 2, lambda: torch.randn(2, 3)),
    "double_is_float32": (lambda x: (x.double() * 3).float(), lambda: torch.randn(2, 3)),
    "mask_to_float": (lambda x: (x > 0).float() * x, lambda: torch.randn(3, 4)),
    "mask_to_dtype": (lambda x: x * (x < 0.5).to(x.dtype), lambda: torch.randn(3, 4)),
    "float_to_long": (lambda x: (x * 4).long(), lambda: torch.randn(2, 5)),
    "float_to_int8_to_float": (lambda x: (x * 10).to(torch.int8).float(), lambda: torch.randn(2, 5)),
    "index_to_float": (lambda i: i.float() / 3, lambda: torch.arange(12).reshape(3, 4)),
    "index_to_bool": (lambda i: i.bool(), lambda: torch.tensor([[0, 3, -2, 0]])),
    "bool_to_long": (lambda i: (i > 1).long(), lambda: torch.arange(6)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_cast(name):
    fn, make = CASES[name]
    res = check_model(op_model(fn), make(), sanitize=name in ("mask_to_float", "index_to_bool"))
    ops = res["compiled"].graph.ops_count()
    if name in ("float_noop", "double_is_float32"):
        assert "cast" not in ops


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_casts_are_refused(dtype):
    with pytest.raises(UnsupportedOpError, match=f"conversion to {dtype}"):
        check_model(op_model(lambda x: x.to(dtype).float()), torch.randn(3))
