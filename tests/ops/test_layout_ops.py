"""Data-movement ops (ops/layout.py, ops/concat.py, ops/creation.py) against torch: permute,
transpose, slice, select, expand, repeat, flip, unfold, pixel (un)shuffle, index_select, cat, stack,
split / chunk / unbind, roll, rot90, constant creation; float and integer / bool data; and the
data-movement snippets of common models (ViT patch embedding, class token, qkv chunk, RNN head)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import check_model, op_model
from modelblocks.errors import UnsupportedOpError
from modelblocks.ops.layout import python_slice, strided_view

torch.manual_seed(0)

X3 = (2, 3, 4)
X4 = (2, 3, 4, 5)

# name: (fn, input shape)
VIEW_CASES = {
    # permute / transpose
    "permute_3d": (lambda x: x.permute(2, 0, 1), X3),
    "permute_4d_nchw_nhwc": (lambda x: x.permute(0, 2, 3, 1), X4),
    "permute_4d_negative_dims": (lambda x: x.permute(-1, -3, -4, -2), X4),
    "permute_partial_contiguous": (lambda x: x.permute(1, 0, 2, 3), X4),
    "transpose_last_two": (lambda x: x.transpose(-1, -2), X4),
    "transpose_outer": (lambda x: x.transpose(0, 2), X3),
    "t_2d": (lambda x: x.t(), (5, 7)),
    "mT": (lambda x: x.mT, X3),
    "movedim": (lambda x: torch.movedim(x, 0, -1), X4),
    "swapaxes": (lambda x: x.swapaxes(0, 1), X3),
    "transpose_with_size1": (lambda x: x.transpose(0, 1), (1, 6, 4)),
    # slice
    "slice_step": (lambda x: x[:, 1:10:2], (2, 7, 3)),
    "slice_negative_start": (lambda x: x[..., -3:], X3),
    "slice_negative_end": (lambda x: x[:, :-1], X3),
    "slice_out_of_range_end": (lambda x: x[:, 1:100], X3),
    "slice_out_of_range_start": (lambda x: x[:, -100:2], X3),
    "slice_two_dims": (lambda x: x[:, 1:10:2, -3:], (2, 7, 4)),
    "slice_dim0_contiguous": (lambda x: x[1:], X4),
    "slice_step_last_dim": (lambda x: x[..., ::3], (3, 10)),
    "narrow": (lambda x: x.narrow(2, 1, 2), X3),
    "narrow_negative_start": (lambda x: torch.narrow(x, -1, -3, 2), X3),
    "tensor_split": (lambda x: torch.tensor_split(x, 3, 2), X3),
    # select
    "select_first": (lambda x: x[:, 0], X3),
    "select_negative": (lambda x: x[:, -1, :], X3),
    "select_last_dim": (lambda x: x[..., 2], X3),
    "select_to_scalar": (lambda x: x[3] * 1.0, (5,)),
    "select_chain": (lambda x: x[1, -2], X3),
    # expand / broadcast
    "expand_size1": (lambda x: x.expand(2, 3, 4), (2, 1, 4)),
    "expand_new_leading": (lambda x: x.expand(3, -1, -1, -1), X3),
    "expand_as": (lambda x: x[:, :1].expand_as(x), X3),
    "broadcast_to": (lambda x: torch.broadcast_to(x, (2, 3, 4)), (3, 1)),
    "expand_scalar_dims": (lambda x: x.expand(4, 5), (1, 1)),
    # repeat / tile
    "repeat_more_dims": (lambda x: x.repeat(2, 1, 1, 3), X3),
    "repeat_same_rank": (lambda x: x.repeat(2, 3), (3, 4)),
    "repeat_1d": (lambda x: x.repeat(3), (4,)),
    "tile_short": (lambda x: x.tile(2), X3),
    # flip / rot90 / roll
    "flip_last": (lambda x: x.flip(-1), X3),
    "flip_two": (lambda x: x.flip(-1, 0), X3),
    "flip_all": (lambda x: torch.flip(x, (0, 1, 2)), X3),
    "flip_size1_dim": (lambda x: x.flip(1) * 1.0, (3, 1, 2)),
    "fliplr": (lambda x: torch.fliplr(x), (4, 5)),
    "flipud": (lambda x: torch.flipud(x), X3),
    "rot90_k1": (lambda x: torch.rot90(x, 1, (1, 2)), X3),
    "rot90_k2": (lambda x: torch.rot90(x, 2, (0, 2)), X3),
    "rot90_k3": (lambda x: torch.rot90(x, -1, (2, 1)), X3),
    "roll_one_dim": (lambda x: torch.roll(x, 1, 2), X3),
    "roll_negative_two_dims": (lambda x: torch.roll(x, (-1, 5), (0, 2)), X3),
    "roll_flat": (lambda x: torch.roll(x, 5), X3),
    "roll_swin_shift": (lambda x: torch.roll(x, shifts=(-1, -1), dims=(1, 2)), (2, 4, 4, 3)),
    # unfold / pixel shuffle
    "unfold_overlap": (lambda x: x.unfold(2, 2, 1), X3),
    "unfold_stride": (lambda x: x.unfold(-1, 3, 2), (2, 9)),
    "pixel_shuffle": (lambda x: F.pixel_shuffle(x, 2), (1, 8, 2, 3)),
    "pixel_shuffle_3": (lambda x: F.pixel_shuffle(x, 3), (2, 9, 2, 2)),
    "pixel_unshuffle": (lambda x: F.pixel_unshuffle(x, 2), (1, 2, 4, 6)),
    # gather with constant indices
    "index_select": (lambda x: torch.index_select(x, 1, torch.tensor([2, 0])), X3),
    "index_list": (lambda x: x[:, [2, 0, 2]], X3),
    "index_negative": (lambda x: x[..., [-1, 0]], X3),
    "index_progression_is_slice": (lambda x: x[:, [0, 2, 4]], (2, 6)),
    # diagonal / repeat_interleave
    "diagonal": (lambda x: torch.diagonal(x, 0, 1, 2), X3),
    "diagonal_offset": (lambda x: torch.diagonal(x, 1, -1, 0), (3, 2, 4)),
    "diagonal_negative_offset": (lambda x: x.diagonal(-1), (4, 3)),
    "repeat_interleave_dim": (lambda x: x.repeat_interleave(2, dim=1), X3),
    "repeat_interleave_flat": (lambda x: torch.repeat_interleave(x, 3), (2, 3)),
    "repeat_interleave_gqa": (lambda x: x.repeat_interleave(2, dim=1) * 1.0, (1, 2, 5, 4)),
    "index_2d_tensor": (lambda x: x[:, torch.tensor([[0, 1], [3, 2]])], (2, 4, 3)),
}



@pytest.mark.parametrize("name", sorted(VIEW_CASES))
def test_view_ops(name):
    fn, shape = VIEW_CASES[name]
    check_model(op_model(fn), torch.randn(shape), sanitize=False)


def test_every_op_under_sanitizers():
    """One model that runs every data-movement IR op, built with ASan + UBSan (slow, so only once)."""
    def fn(x):
        y = x.permute(0, 2, 3, 1)  # permute
        return (y[:, 1:10:2, -3:],  # slice
                x[:, -1],  # select
                x[:, :1].expand(3, 2, 3, 4, 5),  # expand
                x.repeat(1, 2, 1, 1, 2),  # repeat
                x.flip(-1, 0),  # flip
                x.unfold(3, 2, 2),  # unfold
                F.pixel_unshuffle(x[..., :4], 2),  # pixel_unshuffle
                F.pixel_shuffle(x.reshape(2, 12, 1, 5)[:, :8], 2),  # pixel_shuffle
                torch.diagonal(x, 1, 2, 3),  # diagonal
                x[:, [2, 0, 2]],  # index_select
                torch.cat([x, y.reshape(2, 3, 4, 5), x[:, :1]], 1),  # concat
                torch.split(x, [1, 3, 1], -1))  # slices
    check_model(op_model(fn), torch.randn(X4), sanitize=True)


CAT_CASES = {
    "cat_dim1_two": (lambda x: torch.cat([x, x * 2], 1), X3),
    "cat_three_with_constant": (None, X3),
    "cat_negative_dim": (lambda x: torch.cat([x, -x, x[..., :1]], -1), X3),
    "cat_dim0": (lambda x: torch.cat([x, x + 1], 0), X3),
    "cat_class_token": (None, (2, 4, 3, 3)),
    "stack_dim0": (lambda x: torch.stack([x, x * 2, x - 1]), X3),
    "stack_last": (lambda x: torch.stack([x, x * 2], -1), X3),
    "stack_middle": (lambda x: torch.stack([x, x.flip(0)], 1), X3),
    "hstack": (lambda x: torch.hstack([x, x * 3]), (2, 3)),
    "hstack_1d": (lambda x: torch.hstack([x, x * 3]), (4,)),
    "vstack_1d": (lambda x: torch.vstack([x, x * 3]), (4,)),
    "dstack_2d": (lambda x: torch.dstack([x, x * 3]), (2, 3)),
    "column_stack": (lambda x: torch.column_stack([x[0], x[1], x[0:1].t() * 2]), (2, 3)),
}


def _cat_model(name):
    if name == "cat_three_with_constant":
        return op_model(lambda self, x: torch.cat([x, self.c, x * 2], 1), c=torch.randn(2, 5, 4))
    if name == "cat_class_token":  # a ViT: conv patches, flatten(2).transpose(1, 2), class token, cat
        return op_model(lambda self, x: torch.cat([self.cls.expand(x.shape[0], -1, -1),
                                                   x.flatten(2).transpose(1, 2)], dim=1), cls=torch.randn(1, 1, 4))
    return op_model(CAT_CASES[name][0])


@pytest.mark.parametrize("name", sorted(CAT_CASES))
def test_cat_stack(name):
    res = check_model(_cat_model(name), torch.randn(CAT_CASES[name][1]), sanitize=False)
    assert any(n.op == "concat" for n in res["compiled"].graph.nodes)


SPLIT_CASES = {
    "split_even": (lambda x: torch.split(x, 2, -1), X3),
    "split_uneven": (lambda x: torch.split(x, 3, -1), (2, 3, 8)),
    "split_sizes": (lambda x: torch.split(x, [1, 3, 1], 1), (2, 5, 3)),
    "chunk_even": (lambda x: torch.chunk(x, 3, -1), (2, 4, 6)),
    "chunk_uneven": (lambda x: torch.chunk(x, 3, 1), (2, 7, 2)),
    "chunk_dim0": (lambda x: x.chunk(2), (4, 3)),
    "unbind_dim0": (lambda x: torch.unbind(x), X3),
    "unbind_negative": (lambda x: x.unbind(-1), X3),
}


@pytest.mark.parametrize("name", sorted(SPLIT_CASES))
def test_split_family(name):
    fn, shape = SPLIT_CASES[name]
    check_model(op_model(fn), torch.randn(shape), sanitize=False)


def test_unused_chunk_is_dropped():
    res = check_model(op_model(lambda x: torch.chunk(x, 3, -1)[1] * 2), torch.randn(2, 6), sanitize=False)
    assert [n.op for n in res["compiled"].graph.nodes] == ["slice", "mul"]


@pytest.mark.parametrize("name,fn", [
    ("full_slice", lambda x: x[:, :] + 1),
    ("identity_permute", lambda x: x.permute(0, 1) + 1),
    ("repeat_ones", lambda x: x.repeat(1, 1) + 1),
    ("expand_same", lambda x: x.expand(3, 4) + 1),
    ("flip_size1", lambda x: x[:1].flip(0) + 1),
    ("cat_single", lambda x: torch.cat([x]) + 1),
    ("roll_full_turn", lambda x: torch.roll(x, 4, 1) + 1),
])
def test_noop_conversions_add_no_copy(name, fn):
    res = check_model(op_model(fn), torch.randn(3, 4), sanitize=False)
    ops = [n.op for n in res["compiled"].graph.nodes]
    assert ops == (["slice", "add"] if name == "flip_size1" else ["add"]), ops


CREATION_CASES = {
    "zeros_like": lambda x: torch.zeros_like(x) + x,
    "ones_like": lambda x: x * torch.ones_like(x),
    "full_like": lambda x: torch.full_like(x, 2.5) - x,
    "empty_like_zero": lambda x: torch.empty_like(x).zero_() + x,
    "new_zeros": lambda x: x.new_zeros(3, 4) + x,
    "new_ones": lambda x: x.new_ones((4,)) + x,
    "new_full": lambda x: x.new_full((1, 4), -1.5) * x,
    "fill_scalar": lambda x: x.clone().fill_(0.5) * x,
    "fill_tensor_computed": lambda x: torch.empty_like(x).fill_(x[0, 0]) + x,
    "ones_like_output": lambda x: (torch.ones_like(x), x + 1),
}


@pytest.mark.parametrize("name", sorted(CREATION_CASES))
def test_creation(name):
    check_model(op_model(CREATION_CASES[name]), torch.randn(3, 4), sanitize=False)


def test_creation_is_a_constant():
    res = check_model(op_model(lambda x: torch.full_like(x, 3.0) * x), torch.randn(2, 3), sanitize=False)
    graph = res["compiled"].graph
    assert [n.op for n in graph.nodes] == ["mul"]
    assert sum(1 for t in graph.constants()) == 1


# -- integer and boolean data: the same kernels, one per element width ------------------------------

def _int_model():
    def fn(self, i):
        return (torch.cat([i.flip(1)[:, 1:], self.c], 1).t(), i.repeat(1, 2)[:, ::3], i[:, [4, 0]],
                torch.zeros_like(i), i.unsqueeze(0).expand(3, 2, 5), torch.chunk(i, 2, 1)[1], i[-1])
    return op_model(fn, c=torch.tensor([[7], [9]]))


def test_int64_index_input():
    res = check_model(_int_model(), torch.randint(-1000, 1000, (2, 5)))
    graph = res["compiled"].graph
    assert all(graph.tensors[o].dtype.value == "int32" for o in graph.outputs)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool],
                         ids=lambda d: str(d).split(".")[-1])
def test_small_dtypes(dtype):
    x = torch.randint(0, 100, (3, 4)).to(dtype)
    fn = lambda x: (x.t(), torch.stack([x, x.flip(0)], 0), torch.chunk(x, 2, 1)[0], x[:, [3, 1]],  # noqa: E731
                    x.unsqueeze(1).expand(3, 2, 4))
    check_model(op_model(fn), x, sanitize=False)


# -- snippets of common models -------------------------------------------------------------------------

class PatchEmbed(torch.nn.Module):
    """ViT front: conv patch embedding, flatten(2).transpose(1, 2), class token, positional embedding
    sliced to the sequence length, class-token select."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Conv2d(3, 8, kernel_size=4, stride=4)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, 8))
        self.pos = torch.nn.Parameter(torch.randn(1, 32, 8))

    def forward(self, img):
        x = self.proj(img).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos[:, : x.shape[1]]
        return x[:, 0], x[:, 1:].mean(1)


class QKVSplit(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = torch.nn.Linear(8, 24)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        b, n, _ = x.shape
        q = q.reshape(b, n, 2, 4).transpose(1, 2)
        k = k.reshape(b, n, 2, 4).permute(0, 2, 3, 1)
        v = v.reshape(b, n, 2, 4).transpose(1, 2)
        return (q @ k).softmax(-1) @ v


class RNNHead(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(4, 6, batch_first=True)
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1, :])


@pytest.mark.parametrize("name,model,shape", [
    ("vit_patch_embed", PatchEmbed, (2, 3, 16, 16)),
    ("qkv_chunk_heads", QKVSplit, (2, 5, 8)),
    ("rnn_last_step", RNNHead, (2, 7, 4)),
])
def test_model_snippets(name, model, shape):
    check_model(model(), torch.randn(shape), sanitize=False)


# -- rejected variants ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,fn,inputs,message", [
    ("data_dependent_index_select", lambda x, i: torch.index_select(x, 1, i),
     (torch.randn(2, 3), torch.tensor([0, 2])), "data-dependent"),
    ("data_dependent_index", lambda x, i: x[:, i], (torch.randn(2, 3), torch.tensor([1, 1])), "data-dependent"),
    ("two_index_tensors", lambda x: x[[0, 1], [1, 2]], (torch.randn(2, 3),), "2 index tensors"),
    ("empty_slice", lambda x: x[:, 3:] + 1, (torch.randn(2, 3),), "zero-size"),
    ("bool_mask", lambda x: x[:, torch.tensor([True, False, True])], (torch.randn(2, 3),), "boolean mask"),
    ("cat_mixed_dtypes", lambda x, i: torch.cat([x, i], 1), (torch.randn(2, 3), torch.ones(2, 1, dtype=torch.int32)),
     "different dtypes"),
])
def test_unsupported(name, fn, inputs, message):
    import modelblocks

    with pytest.raises(UnsupportedOpError, match=message):
        modelblocks.compile(op_model(fn), inputs)


# -- the stride arithmetic itself ----------------------------------------------------------------------------

@pytest.mark.parametrize("n,args,expected", [
    (5, (None, None, 1), (0, 5, 1)),
    (5, (-2, None, 1), (3, 5, 1)),
    (5, (1, 100, 2), (1, 5, 2)),
    (5, (-100, -1, 1), (0, 4, 1)),
    (5, (4, 2, 1), (4, 4, 1)),
    (5, (0, 9223372036854775807, 3), (0, 5, 3)),
])
def test_python_slice(n, args, expected):
    assert python_slice(n, *args) == expected
    assert len(range(*expected)) == len(range(n)[slice(*args)])


def test_views_merge_contiguous_dims():
    # a slice of the outermost dim is one contiguous run; NCHW->NHWC is a 3-d walk over (N, HW, C)
    assert strided_view("slice", (4, 5, 6), {"dim": 0, "start": 1, "end": 3, "step": 1}) == ([60], [1], 30)
    assert strided_view("permute", (2, 3, 4, 5), {"perm": (0, 2, 3, 1)}) == ([2, 20, 3], [60, 1, 20], 0)
    assert strided_view("flip", (3, 4), {"dims": (0, 1)}) == ([12], [-1], 11)
    assert strided_view("expand", (3, 1), {"shape": (2, 3, 4)}) == ([2, 3, 4], [0, 1, 0], 0)
    dims, strides, offset = strided_view("repeat", (3,), {"repeats": (2, 2)})
    assert (dims, strides, offset) == ([4, 3], [0, 1], 0)
    x = np.arange(3)
    assert np.tile(x, (2, 2)).reshape(-1).tolist() == [x[(i % 3)] for i in range(12)]
