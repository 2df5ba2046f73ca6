"""Per-op tests of the transformer ops against torch: layer_norm, softmax / log_softmax, the
matmul family, scaled dot-product attention, embedding, where / masked_fill / comparisons /
logic, and prelu; plus small attention blocks built from them."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import modelblocks
from helpers import check_model, op_model
from modelblocks.errors import UnsupportedOpError
from modelblocks.ops import registry

torch.manual_seed(0)

HAS_TRANSPOSE = registry.aten_converter("aten.transpose.int") is not None
needs_transpose = pytest.mark.skipif(not HAS_TRANSPOSE, reason="needs aten.transpose.int from ops/layout.py")


def ops_of(res) -> list[str]:
    return [n.op for n in res["compiled"].graph.nodes]


# -- layer_norm ------------------------------------------------------------------------------------

LAYER_NORM = {
    "last_dim": (lambda: nn.LayerNorm(8), (2, 5, 8)),
    "last_two_dims": (lambda: nn.LayerNorm((5, 8)), (2, 5, 8)),
    "no_affine": (lambda: nn.LayerNorm(8, elementwise_affine=False), (3, 8)),
    "no_bias": (lambda: nn.LayerNorm(8, bias=False), (3, 8)),
    "eps_1e-3": (lambda: nn.LayerNorm(16, eps=1e-3), (4, 16)),
    "1d_input": (lambda: nn.LayerNorm(6), (6,)),
    "functional_all_dims": (lambda: op_model(lambda x: F.layer_norm(x, (2, 3, 4), eps=1e-6)), (2, 3, 4)),
}


@pytest.mark.parametrize("name", list(LAYER_NORM))
def test_layer_norm(name):
    make, shape = LAYER_NORM[name]
    model = make()
    for p in model.parameters():  # non-trivial affine parameters
        nn.init.normal_(p)
    x = torch.randn(shape) * 3 + 1
    res = check_model(model, x, sanitize=name in ("last_two_dims", "no_affine"))
    assert ops_of(res) == ["layer_norm"]


def test_layer_norm_large_mean():
    # |mean| >> std: a one-pass E[x^2] - E[x]^2 variance would fail this
    check_model(nn.LayerNorm(64).eval(), torch.randn(4, 64) + 30.0, sanitize=False)


def test_native_layer_norm_output_only():
    model = op_model(lambda x: torch.native_layer_norm(x, (4,), None, None, 1e-5)[0])
    check_model(model, torch.randn(3, 4), sanitize=False)


# -- softmax ---------------------------------------------------------------------------------------

SOFTMAX = {
    "softmax_last": (lambda x: F.softmax(x, -1), (2, 3, 7)),
    "softmax_dim0": (lambda x: F.softmax(x, 0), (4, 3)),
    "softmax_middle": (lambda x: torch.softmax(x, 1), (2, 5, 3, 2)),
    "softmax_large_values": (lambda x: F.softmax(x * 100, -1), (3, 6)),
    "log_softmax_middle": (lambda x: torch.log_softmax(x, 1), (2, 5, 3)),
    "log_softmax_large_values": (lambda x: F.log_softmax(x * 100, 0), (6, 2)),
    "module_softmax": (nn.Softmax(dim=2), (2, 3, 4)),
}


@pytest.mark.parametrize("name", list(SOFTMAX))
def test_softmax(name):
    fn, shape = SOFTMAX[name]
    model = fn if isinstance(fn, nn.Module) else op_model(fn)
    check_model(model, torch.randn(shape), sanitize=name in ("softmax_middle", "log_softmax_middle"))


# -- matmul family ---------------------------------------------------------------------------------

MATMUL = {
    "mm_2d": (lambda a, b: torch.mm(a, b), [(3, 4), (4, 5)]),
    "bmm": (lambda a, b: torch.bmm(a, b), [(2, 3, 4), (2, 4, 5)]),
    "matmul_4d": (lambda a, b: a @ b, [(2, 3, 4, 6), (2, 3, 6, 5)]),
    "matmul_broadcast_batch": (lambda a, b: a @ b, [(2, 1, 4, 6), (3, 6, 5)]),
    "matmul_3d_2d": (lambda a, b: a @ b, [(2, 5, 8), (8, 3)]),
    "matrix_vector": (lambda a, b: a @ b, [(2, 3, 4), (4,)]),
    "vector_matrix": (lambda a, b: a @ b, [(4,), (2, 4, 3)]),
    "dot": (lambda a, b: a @ b, [(7,), (7,)]),
    "addmm_row_bias": (lambda c, a, b: torch.addmm(c, a, b), [(5,), (3, 4), (4, 5)]),
    "addmm_alpha_beta": (lambda c, a, b: torch.addmm(c, a, b, beta=0.5, alpha=-2.0), [(3, 5), (3, 4), (4, 5)]),
    "addmm_beta0": (lambda c, a, b: torch.addmm(c, a, b, beta=0.0) + c, [(1, 5), (3, 4), (4, 5)]),
    "baddbmm": (lambda c, a, b: torch.baddbmm(c, a, b, beta=0.3, alpha=1.5), [(2, 3, 1), (2, 3, 4), (2, 4, 5)]),
    "matmul_relu_fused": (lambda a, b: torch.relu(a @ b), [(2, 3, 4), (4, 5)]),
}


@pytest.mark.parametrize("name", list(MATMUL))
def test_matmul(name):
    fn, shapes = MATMUL[name]
    args = tuple(torch.randn(s) for s in shapes)
    res = check_model(op_model(fn), args, sanitize=name in ("matmul_broadcast_batch", "baddbmm", "vector_matrix"))
    assert ops_of(res).count("matmul") == 1, ops_of(res)
    if name == "matmul_relu_fused":
        assert ops_of(res) == ["matmul"]


@pytest.mark.parametrize("name,fn", [
    ("activation_at_const_weight", lambda self, x: x @ self.w),
    ("const_at_activation", lambda self, x: torch.matmul(self.m, x)),
])
def test_matmul_with_constant(name, fn):
    model = op_model(fn, w=torch.randn(6, 3), m=torch.randn(4, 2))
    res = check_model(model, torch.randn(2, 6), sanitize=False)
    assert len(res["compiled"].graph.inputs) == 1
    assert ops_of(res) == ["matmul"]


# -- attention -------------------------------------------------------------------------------------

def sdpa(**kw):
    return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw)


ATTENTION = {
    "self_4d": (sdpa(), [(2, 2, 5, 8), (2, 2, 5, 8), (2, 2, 5, 8)]),
    "cross_diff_dims": (sdpa(), [(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5)]),
    "3d_inputs": (sdpa(), [(2, 4, 8), (2, 6, 8), (2, 6, 8)]),
    "causal": (sdpa(is_causal=True), [(1, 2, 6, 4), (1, 2, 6, 4), (1, 2, 6, 4)]),
    "causal_L_lt_S": (sdpa(is_causal=True), [(2, 1, 3, 4), (2, 1, 5, 4), (2, 1, 5, 4)]),
    "causal_L_gt_S": (sdpa(is_causal=True), [(2, 1, 5, 4), (2, 1, 3, 4), (2, 1, 3, 4)]),
    "custom_scale": (sdpa(scale=0.3), [(2, 2, 4, 8), (2, 2, 4, 8), (2, 2, 4, 8)]),
    "broadcast_batch": (sdpa(), [(2, 3, 4, 5), (1, 3, 6, 5), (1, 3, 6, 5)]),
    "gqa": (sdpa(enable_gqa=True), [(2, 4, 3, 8), (2, 2, 5, 8), (2, 2, 5, 6)]),
    "gqa_causal": (sdpa(enable_gqa=True, is_causal=True), [(1, 6, 4, 4), (1, 3, 4, 4), (1, 3, 4, 4)]),
}


@pytest.mark.parametrize("name", list(ATTENTION))
def test_attention(name):
    fn, shapes = ATTENTION[name]
    args = tuple(torch.randn(s) for s in shapes)
    res = check_model(op_model(fn), args, sanitize=name in ("cross_diff_dims", "causal_L_gt_S", "gqa"))
    assert ops_of(res) == ["attention"]


def _padding_mask(b, s):
    m = torch.ones(b, 1, 1, s, dtype=torch.bool)
    m[0, ..., -2:] = False
    return m


MASKED = {  # name -> (mask, given as a model input (False) or a buffer (True))
    "bool_LS": (lambda: torch.rand(4, 6) > 0.3, False),
    "bool_padding": (lambda: _padding_mask(2, 6), True),
    "bool_row_fully_masked": (lambda: torch.tensor([[True] * 6, [False] * 6, [True, False] * 3, [False] * 5 + [True]]),
                              True),
    "float_full": (lambda: torch.randn(2, 3, 4, 6), False),
    "float_with_neg_inf": (lambda: torch.zeros(4, 6).masked_fill(torch.rand(4, 6) > 0.6, float("-inf")), True),
    "float_row_broadcast": (lambda: torch.randn(1, 6), False),
}


@pytest.mark.parametrize("name", list(MASKED))
def test_attention_mask(name):
    make, const = MASKED[name]
    mask = make()
    if name == "float_with_neg_inf":
        mask[:, 0] = 0.0  # keep one key per row: torch's results stay NaN-free
    q, k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 8)
    if const:
        model = op_model(lambda self, q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask), mask=mask)
        args = (q, k, v)
    else:
        model = op_model(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m))
        args = (q, k, v, mask)
    res = check_model(model, args, sanitize=name in ("bool_row_fully_masked", "float_full"))
    assert ops_of(res) == ["attention"]


@pytest.mark.parametrize("name,shapes", [
    ("gqa_float_mask_per_head", [(2, 4, 3, 8), (2, 2, 5, 8), (2, 2, 5, 8), (2, 4, 3, 5)]),
    ("gqa_float_mask_heads_only", [(2, 6, 3, 8), (2, 2, 5, 8), (2, 2, 5, 8), (6, 1, 5)]),
    ("query_fewer_batch_dims", [(3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5), (4, 6)]),
])
def test_attention_mask_broadcast(name, shapes):
    gqa = name.startswith("gqa")
    model = op_model(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, enable_gqa=gqa))
    check_model(model, tuple(torch.randn(s) for s in shapes), sanitize=name == "gqa_float_mask_heads_only")


def test_attention_rejects_dropout():
    model = op_model(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, dropout_p=0.1))
    x = torch.randn(1, 2, 3, 4)
    with pytest.raises(UnsupportedOpError, match="dropout_p"):
        modelblocks.compile(model, (x, x, x))


def test_attention_rejects_mask_with_causal():
    model = op_model(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=True))
    x = torch.randn(1, 2, 3, 4)
    with pytest.raises(UnsupportedOpError, match="is_causal"):
        modelblocks.compile(model, (x, x, x, torch.ones(3, 3, dtype=torch.bool)))


class SdpaBlock(nn.Module):
    """A pre-norm, single-head causal transformer block: sdpa on 3-D (B, L, D) tensors, so it
    needs no layout ops."""

    def __init__(self, d=16):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x):
        h = self.ln1(x)
        a = F.scaled_dot_product_attention(self.q(h), self.k(h), self.v(h), is_causal=True)
        x = x + self.o(a)
        return x + self.ff(self.ln2(x))


def test_sdpa_block():
    res = check_model(SdpaBlock().eval(), torch.randn(2, 5, 16), sanitize=True)
    assert {"layer_norm", "attention", "linear"} <= set(ops_of(res))


@needs_transpose
def test_hand_written_attention_block():
    class Attn(nn.Module):
        def __init__(self, d=12):
            super().__init__()
            self.wq, self.wk, self.wv = (nn.Parameter(torch.randn(d, d) / math.sqrt(d)) for _ in range(3))
            self.d = d

        def forward(self, x):
            q, k, v = x @ self.wq, x @ self.wk, x @ self.wv
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.d)
            return torch.softmax(scores, dim=-1) @ v

    res = check_model(Attn().eval(), torch.randn(2, 5, 12), sanitize=True)
    assert {"matmul", "softmax"} <= set(ops_of(res))


class MHA(nn.Module):
    def __init__(self, need_weights: bool, causal: bool):
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
        self.need_weights, self.causal = need_weights, causal

    def forward(self, q, kv):
        mask = torch.ones(q.shape[1], kv.shape[1], dtype=torch.bool).triu(1) if self.causal else None
        out, weights = self.mha(q, kv, kv, need_weights=self.need_weights, attn_mask=mask)
        return (out, weights) if self.need_weights else out


@needs_transpose
@pytest.mark.parametrize("need_weights,causal", [(False, False), (True, False), (False, True)],
                         ids=["no_weights", "avg_weights", "bool_causal_mask"])
def test_multihead_attention(need_weights, causal):
    q, kv = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    check_model(MHA(need_weights, causal).eval(), (q, kv), sanitize=need_weights)


# -- embedding -------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5,), (2, 7), (2, 3, 4)], ids=["1d", "2d", "3d"])
def test_embedding(shape):
    emb = nn.Embedding(11, 6, padding_idx=0).eval()
    idx = torch.randint(0, 11, shape)
    res = check_model(emb, idx, sanitize=shape == (2, 7))
    assert ops_of(res) == ["embedding"]


def test_embedding_with_positions_and_padding_mask():
    class Embed(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(20, 8, padding_idx=0)
            self.pos = nn.Parameter(torch.randn(6, 8))

        def forward(self, tokens):
            h = self.tok(tokens) + self.pos
            return h.masked_fill((tokens == 0).unsqueeze(-1), 0.0)

    tokens = torch.tensor([[3, 7, 19, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    res = check_model(Embed().eval(), tokens, sanitize=True)
    assert {"embedding", "compare", "where"} <= set(ops_of(res))


def test_embedding_out_of_range_gives_zero_rows():
    emb = nn.Embedding(4, 3).eval()
    compiled = modelblocks.compile(emb, torch.tensor([0, 1, 2, 3, 0]))
    bad = np.array([3, -1, 4, -4, -5], dtype=np.int64)  # torch would raise on all but 3; NumPy wraps -1 and -4
    table = emb.weight.detach().numpy()
    want = np.stack([table[3], table[3], np.zeros(3), table[0], np.zeros(3)]).astype(np.float32)
    for got in (compiled.run_reference([bad])[0], compiled.run_c([bad])[0], compiled.run_sanitized([bad])[0]):
        np.testing.assert_array_equal(got, want)


# -- where, masked_fill, comparisons, logic ------------------------------------------------------------

WHERE = {
    "where_self": (lambda x, y: torch.where(x > y, x, y * 0.5), [(2, 3, 4), (2, 3, 4)]),
    "where_broadcast": (lambda x, y: torch.where(y > 0, x, y), [(2, 3, 4), (3, 1)]),
    "where_scalar_other": (lambda x, y: torch.where(x < y, x, 0.0), [(2, 5), (5,)]),
    "where_scalar_self": (lambda x, y: torch.where(x >= 0.2, -1.0, y), [(2, 5), (2, 5)]),
    "where_scalars": (lambda x, y: torch.where(x <= y, 1.0, -2.0) + x, [(3, 4), (4,)]),
    "masked_fill_scalar": (lambda x, y: x.masked_fill(y > 0, float("-inf")).exp(), [(2, 3, 4), (1, 3, 1)]),
    "masked_fill_tensor": (lambda x, y: x.masked_fill(y != 0.5, torch.tensor(2.5)), [(2, 4), (2, 4)]),
    "eq_ne_logical_not": (lambda x, y: torch.where(torch.logical_not((x > 0) == (y > 0)), x, y), [(3, 4), (3, 4)]),
    "bitwise_not": (lambda x, y: torch.where(~(x > y), x, y), [(3, 4), (4,)]),
    "logical_and_or_xor": (lambda x, y: torch.where(((x > 0) & (y > 0)) | ((x < -1) ^ (y < -1)), x, y),
                           [(2, 3, 4), (3, 4)]),
}


@pytest.mark.parametrize("name", list(WHERE))
def test_where(name):
    fn, shapes = WHERE[name]
    args = tuple(torch.randn(s) for s in shapes)
    check_model(op_model(fn), args, sanitize=name in ("where_broadcast", "logical_and_or_xor", "masked_fill_scalar"))


def test_where_with_constant_mask():
    mask = torch.ones(4, 4, dtype=torch.bool).tril()
    model = op_model(lambda self, x: torch.where(self.mask, x, -1e4), mask=mask)
    res = check_model(model, torch.randn(2, 4, 4), sanitize=False)
    assert ops_of(res) == ["where"]


@pytest.mark.parametrize("dtype", ["float", "int", "bool"])
def test_compare_outputs_bool(dtype):
    kinds = [torch.gt, torch.lt, torch.ge, torch.le, torch.eq, torch.ne]
    if dtype == "float":
        a, b, scalar = torch.randint(-2, 3, (3, 4)).float(), torch.randint(-2, 3, (4,)).float(), 1.0
    elif dtype == "int":
        a, b, scalar = torch.randint(-2, 3, (3, 4)), torch.randint(-2, 3, (4,)), 1
    else:
        a, b, scalar = torch.rand(3, 4) > 0.5, torch.rand(4) > 0.5, True
    model = op_model(lambda x, y: tuple(fn(x, y) for fn in kinds) + tuple(fn(x, scalar) for fn in kinds))
    res = check_model(model, (a, b), sanitize=dtype == "int")
    assert ops_of(res) == ["compare"] * 12


def test_isnan_and_masking_the_nans():
    x = torch.randn(3, 5)
    x[0, 1] = x[2, 4] = float("nan")
    res = check_model(op_model(lambda t: ((m := torch.isnan(t)), torch.where(m, 0.0, t))), x)
    assert ops_of(res) == ["compare", "where"]
    x[1, 0], x[1, 1] = float("inf"), float("-inf")
    mask = res["compiled"].run_c([x.numpy()])[0]
    np.testing.assert_array_equal(mask, torch.isnan(x).numpy())  # exactly the two NaN, not the infinities


def test_compare_int_with_fraction_rejected():
    with pytest.raises(UnsupportedOpError, match="non-integer"):
        modelblocks.compile(op_model(lambda x: x > 0.5), torch.tensor([1, 2, 3]))


def test_where_int_values_rejected():
    with pytest.raises(UnsupportedOpError, match="float32 only"):
        modelblocks.compile(op_model(lambda x: torch.where(x > 1, x, 0)), torch.tensor([1, 2, 3]))


# -- prelu -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("params,shape", [(1, (2, 3, 4)), (3, (2, 3, 4)), (4, (2, 4, 3, 3)), (5, (3, 5)), (1, (7,))],
                         ids=["single_3d", "per_channel_3d", "per_channel_4d", "per_channel_2d", "single_1d"])
def test_prelu(params, shape):
    m = nn.PReLU(params).eval()
    nn.init.uniform_(m.weight, -0.5, 0.5)
    res = check_model(m, torch.randn(shape), sanitize=shape == (2, 4, 3, 3))
    assert ops_of(res) == ["prelu"]


def test_prelu_kernel_overload():
    model = op_model(lambda self, x: torch._prelu_kernel(x, self.w), w=torch.rand(3, 1, 1))
    check_model(model, torch.randn(2, 3, 4, 5), sanitize=False)
