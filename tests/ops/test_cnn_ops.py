"""Per-op tests of the CNN family against torch: conv / conv_transpose, pooling, upsample, pad,
group_norm / instance_norm. Each case is a named module over one or more shapes."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import modelblocks
from helpers import check_model, op_model
from modelblocks.errors import UnsupportedOpError
from modelblocks.ops.registry import get_op
from modelblocks.ops.resize import axis_tables

torch.manual_seed(0)


def _randomize(model: nn.Module) -> nn.Module:
    """Non-trivial affine parameters and running statistics, so that they are really tested."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() == 1:
                p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
        for name, b in model.named_buffers():
            if name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
            elif name.endswith("running_mean"):
                b.copy_(0.3 * torch.randn(b.shape, generator=g))
    return model.eval()


def check_cnn(make, shape, sanitize=False, scale=1.0, offset=0.0):
    model = _randomize(make())
    x = torch.randn(shape) * scale + offset
    return check_model(model, x, sanitize=sanitize)


# -- conv ---------------------------------------------------------------------------------------

CONV = {
    "conv2d_3x3_s1_p1": (lambda: nn.Conv2d(3, 8, 3, padding=1), [(1, 3, 8, 8), (2, 3, 7, 5)]),
    "conv2d_1x1": (lambda: nn.Conv2d(8, 4, 1), [(2, 8, 5, 6)]),
    "conv2d_5x3_s2_p21": (lambda: nn.Conv2d(4, 6, (5, 3), stride=2, padding=(2, 1)), [(1, 4, 11, 9), (2, 4, 8, 8)]),
    "conv2d_stride_hw": (lambda: nn.Conv2d(3, 5, 3, stride=(1, 3)), [(1, 3, 7, 10)]),
    "conv2d_depthwise": (lambda: nn.Conv2d(6, 6, 3, padding=1, groups=6), [(2, 6, 5, 9)]),
    "conv2d_depthwise_mult2": (lambda: nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=4), [(1, 4, 9, 9)]),
    "conv2d_dilated": (lambda: nn.Conv2d(3, 4, 3, padding=2, dilation=2), [(2, 3, 6, 11)]),
    "conv2d_dilation_hw": (lambda: nn.Conv2d(3, 4, 3, dilation=(1, 3)), [(1, 3, 6, 10)]),
    "conv2d_groups2": (lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2), [(1, 4, 6, 6), (2, 4, 5, 7)]),
    "conv2d_same": (lambda: nn.Conv2d(3, 4, 3, padding="same"), [(1, 3, 7, 7)]),
    "conv2d_same_even_kernel": (lambda: nn.Conv2d(3, 4, (4, 2), padding="same", dilation=(1, 3)), [(1, 3, 7, 9)]),
    "conv2d_valid": (lambda: nn.Conv2d(3, 4, 3, padding="valid"), [(2, 3, 6, 5)]),
    "conv2d_bias_none": (lambda: nn.Conv2d(3, 4, 3, padding=1, bias=False), [(1, 3, 6, 6)]),
    "conv2d_unbatched": (lambda: nn.Conv2d(3, 4, 3, padding=1), [(3, 6, 5)]),
    "conv2d_reflect": (lambda: nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"), [(1, 3, 6, 7)]),
    "conv2d_replicate": (lambda: nn.Conv2d(3, 4, 3, padding=(2, 1), padding_mode="replicate"), [(2, 3, 6, 7)]),
    "conv2d_circular": (lambda: nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular"), [(1, 3, 5, 6)]),
    "conv1d_k3_p1": (lambda: nn.Conv1d(4, 6, 3, padding=1), [(3, 4, 9)]),
    "conv1d_s2": (lambda: nn.Conv1d(4, 6, 5, stride=2, padding=2), [(2, 4, 17)]),
    "conv1d_same_dilated": (lambda: nn.Conv1d(4, 4, 4, padding="same", dilation=2), [(1, 4, 12)]),
    "conv1d_depthwise": (lambda: nn.Conv1d(6, 6, 3, groups=6, bias=False), [(2, 6, 10)]),
    "conv1d_reflect": (lambda: nn.Conv1d(3, 4, 5, padding=2, padding_mode="reflect"), [(1, 3, 11)]),
    "conv1d_unbatched": (lambda: nn.Conv1d(3, 4, 3), [(3, 9)]),
    "convT2d_s2": (lambda: nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), [(1, 4, 5, 5),
                                                                                               (2, 4, 3, 6)]),
    "convT2d_k2_s2": (lambda: nn.ConvTranspose2d(4, 6, 2, stride=2), [(1, 4, 4, 5)]),
    "convT2d_groups_dilated": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=(2, 1), padding=(0, 2), groups=2,
                                                          dilation=(1, 2), bias=False), [(2, 4, 4, 5)]),
    "convT1d": (lambda: nn.ConvTranspose1d(4, 6, 4, stride=3, padding=1, output_padding=2), [(1, 4, 7), (2, 4, 3)]),
    "convT1d_depthwise": (lambda: nn.ConvTranspose1d(4, 4, 3, stride=2, groups=4), [(1, 4, 6)]),
}
CONV_CASES = [(name, shape) for name, (_, shapes) in CONV.items() for shape in shapes]
SANITIZED = {"conv2d_3x3_s1_p1", "conv1d_s2", "convT2d_groups_dilated", "conv2d_reflect", "conv2d_same_even_kernel"}


@pytest.mark.parametrize("name,shape", CONV_CASES, ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in CONV_CASES])
def test_conv(name, shape):
    check_cnn(CONV[name][0], shape, sanitize=name in SANITIZED and shape == CONV[name][1][0])


def test_conv_functional_weight_input():
    """Weights that are model inputs (not constants) still run through the conv kernel."""
    m = op_model(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2))
    check_model(m, (torch.randn(2, 4, 7, 7), torch.randn(6, 2, 3, 3), torch.randn(6)), sanitize=False)


def test_convolution_overload():
    """aten.convolution.default (what some exporters produce) in both directions."""
    m = op_model(lambda x, w, w2: torch.ops.aten.convolution.default(
        torch.ops.aten.convolution.default(x, w, None, [2, 1], [1, 0], [1, 2], False, [0, 0], 1),
        w2, None, [2, 2], [1, 1], [1, 1], True, [1, 0], 1))
    check_model(m, (torch.randn(1, 3, 9, 8), torch.randn(4, 3, 3, 3), torch.randn(4, 2, 3, 3)), sanitize=False)


@pytest.mark.parametrize("act", ["relu", "relu6", "hardtanh"])
def test_conv_relu_fused(act):
    layer = {"relu": nn.ReLU(), "relu6": nn.ReLU6(), "hardtanh": nn.Hardtanh(-0.5, 0.5)}[act]
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), layer)
    res = check_model(model, torch.randn(1, 3, 6, 6) * 3, sanitize=act == "relu6")
    ops = [n.op for n in res["compiled"].graph.nodes]
    assert ops == ["conv"], ops
    assert "clamp" not in ops


def test_conv_bn_relu_folded():
    model = _randomize(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()))
    res = check_model(model, torch.randn(2, 3, 6, 6), sanitize=False)
    assert [n.op for n in res["compiled"].graph.nodes] == ["conv"]


def test_conv_transpose_relu_fused():
    model = nn.Sequential(nn.ConvTranspose2d(3, 4, 3, stride=2), nn.ReLU())
    res = check_model(model, torch.randn(1, 3, 4, 4), sanitize=False)
    assert [n.op for n in res["compiled"].graph.nodes] == ["conv_transpose"]


def test_conv_macs():
    res = check_model(nn.Conv2d(4, 6, 3, padding=1, groups=2), torch.randn(1, 4, 5, 5), sanitize=False)
    g = res["compiled"].graph
    node = g.nodes[0]
    macs = get_op("conv").macs(node, [g.tensors[i] if i else None for i in node.inputs],
                               [g.tensors[o] for o in node.outputs])
    assert macs == 6 * 5 * 5 * 2 * 9


# -- pooling --------------------------------------------------------------------------------------

POOL = {
    "maxpool2d_2x2": (lambda: nn.MaxPool2d(2), [(2, 2, 7, 9)]),
    "maxpool2d_3x3_s2_p1": (lambda: nn.MaxPool2d(3, 2, 1), [(1, 3, 9, 9), (2, 2, 6, 11)]),
    "maxpool_ceil": (lambda: nn.MaxPool2d(3, 2, ceil_mode=True), [(1, 3, 8, 8), (1, 2, 10, 7)]),
    "maxpool_ceil_pad": (lambda: nn.MaxPool2d(3, 2, 1, ceil_mode=True), [(1, 3, 8, 8)]),
    "maxpool_dilated": (lambda: nn.MaxPool2d(3, (1, 2), 1, dilation=(2, 1)), [(2, 3, 9, 8)]),
    "maxpool_rect": (lambda: nn.MaxPool2d((2, 3), (1, 2)), [(1, 3, 6, 9)]),
    "maxpool_with_indices": (lambda: op_model(lambda x: F.max_pool2d(x, 2, return_indices=True)[0]), [(1, 3, 6, 6)]),
    "maxpool_unbatched": (lambda: nn.MaxPool2d(2), [(3, 6, 6)]),
    "maxpool1d": (lambda: nn.MaxPool1d(3, 2), [(1, 4, 11), (2, 3, 8)]),
    "maxpool1d_ceil_pad_dil": (lambda: nn.MaxPool1d(3, 2, 1, dilation=2, ceil_mode=True), [(1, 4, 12)]),
    "avgpool2d_2x2": (lambda: nn.AvgPool2d(2), [(2, 2, 7, 9)]),
    "avgpool2d_3x3_s2_p1": (lambda: nn.AvgPool2d(3, 2, 1), [(1, 3, 9, 9)]),
    "avgpool_count_include_pad_false": (lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), [(1, 3, 9, 8)]),
    "avgpool_ceil": (lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True), [(1, 3, 8, 8), (1, 2, 6, 9)]),
    "avgpool_ceil_no_pad_count": (lambda: nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
                                  [(1, 3, 8, 10)]),
    "avgpool_divisor_override": (lambda: nn.AvgPool2d(3, 2, 1, divisor_override=5), [(1, 3, 8, 8)]),
    "avgpool1d": (lambda: nn.AvgPool1d(3, 2, 1), [(1, 4, 11), (2, 3, 8)]),
    "avgpool1d_ceil_no_pad_count": (lambda: nn.AvgPool1d(4, 3, 2, ceil_mode=True, count_include_pad=False),
                                    [(1, 4, 13)]),
    "adaptive_avg_5x7": (lambda: nn.AdaptiveAvgPool2d((5, 7)), [(1, 3, 8, 8), (2, 2, 11, 13), (1, 2, 3, 4)]),
    "adaptive_avg_global": (lambda: nn.AdaptiveAvgPool2d(1), [(2, 8, 7, 7)]),
    "adaptive_avg_none": (lambda: nn.AdaptiveAvgPool2d((None, 3)), [(1, 3, 5, 10)]),
    "adaptive_avg1d": (lambda: nn.AdaptiveAvgPool1d(5), [(1, 4, 13), (2, 2, 3)]),
    "adaptive_avg1d_global": (lambda: nn.AdaptiveAvgPool1d(1), [(2, 4, 9)]),
    "adaptive_max_3x5": (lambda: nn.AdaptiveMaxPool2d((3, 5)), [(1, 3, 8, 8), (2, 2, 7, 11)]),
    "adaptive_max_global": (lambda: nn.AdaptiveMaxPool2d(1), [(1, 4, 5, 6)]),
    "adaptive_max1d": (lambda: nn.AdaptiveMaxPool1d(4), [(2, 3, 10)]),
}
POOL_CASES = [(name, shape) for name, (_, shapes) in POOL.items() for shape in shapes]
POOL_SANITIZED = {"maxpool_ceil_pad", "maxpool1d_ceil_pad_dil", "avgpool_ceil_no_pad_count", "adaptive_avg_5x7",
                  "adaptive_max_3x5"}


@pytest.mark.parametrize("name,shape", POOL_CASES, ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in POOL_CASES])
def test_pool(name, shape):
    check_cnn(POOL[name][0], shape, sanitize=name in POOL_SANITIZED and shape == POOL[name][1][0])


def test_maxpool_nan_propagates():
    m = nn.MaxPool2d(2)
    x = torch.randn(1, 1, 4, 4)
    x[0, 0, 1, 1] = float("nan")
    compiled = modelblocks.compile(m, x)
    y = compiled.run_c([x.numpy()])[0]
    expected = m(x).numpy()
    assert np.array_equal(np.isnan(y), np.isnan(expected))
    assert np.allclose(y[~np.isnan(y)], expected[~np.isnan(expected)])


# -- upsample -------------------------------------------------------------------------------------

UPSAMPLE = {
    "nearest_x2": (lambda: nn.Upsample(scale_factor=2), [(2, 2, 3, 5)]),
    "nearest_x1_5": (lambda: nn.Upsample(scale_factor=1.5), [(1, 3, 5, 7)]),
    "nearest_hw": (lambda: nn.Upsample(scale_factor=(2.0, 3.0)), [(1, 2, 3, 4)]),
    "nearest_size": (lambda: nn.Upsample(size=(7, 5)), [(1, 3, 4, 4)]),
    "nearest_down": (lambda: nn.Upsample(scale_factor=0.5), [(1, 2, 8, 9)]),
    "nearest_exact": (lambda: nn.Upsample(scale_factor=1.7, mode="nearest-exact"), [(1, 3, 5, 6)]),
    "nearest1d": (lambda: nn.Upsample(scale_factor=2.5), [(1, 3, 7)]),
    "nearest1d_size": (lambda: nn.Upsample(size=11), [(2, 3, 4)]),
    "bilinear_x2": (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), [(2, 2, 3, 5)]),
    "bilinear_x1_3": (lambda: nn.Upsample(scale_factor=1.3, mode="bilinear"), [(1, 3, 5, 7)]),
    "bilinear_size": (lambda: nn.Upsample(size=(9, 4), mode="bilinear"), [(1, 3, 4, 6)]),
    "bilinear_align_corners": (lambda: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                               [(1, 3, 4, 5)]),
    "bilinear_align_corners_size": (lambda: nn.Upsample(size=(7, 1), mode="bilinear", align_corners=True),
                                    [(1, 2, 3, 4)]),
    "bilinear_down": (lambda: nn.Upsample(scale_factor=0.6, mode="bilinear"), [(1, 2, 9, 8)]),
    "linear1d": (lambda: nn.Upsample(scale_factor=1.6, mode="linear"), [(1, 3, 7)]),
    "linear1d_align_corners": (lambda: nn.Upsample(size=10, mode="linear", align_corners=True), [(2, 3, 4)]),
    "interpolate_nearest": (lambda: op_model(lambda x: F.interpolate(x, scale_factor=3)), [(1, 2, 3, 3)]),
    "interpolate_recompute": (lambda: op_model(lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear",
                                                                       recompute_scale_factor=True)),
                              [(1, 2, 5, 5)]),
}
UP_CASES = [(name, shape) for name, (_, shapes) in UPSAMPLE.items() for shape in shapes]
UP_SANITIZED = {"nearest_x1_5", "bilinear_x1_3", "linear1d"}


@pytest.mark.parametrize("name,shape", UP_CASES, ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in UP_CASES])
def test_upsample(name, shape):
    check_cnn(UPSAMPLE[name][0], shape, sanitize=name in UP_SANITIZED and shape == UPSAMPLE[name][1][0])


def _interp_by_tables(x, sizes, mode, ac, scales, shortcut):
    """Apply axis_tables along each spatial axis of x (float64), last axis first."""
    y = x.astype(np.float64)
    for axis in range(2, x.ndim):
        i0, i1, w0, w1 = axis_tables(mode, x.shape[axis], sizes[axis - 2], ac, scales[axis - 2], shortcut)
        shape = [1] * x.ndim
        shape[axis] = -1
        y = np.take(y, i0, axis=axis) * w0.reshape(shape) + np.take(y, i1, axis=axis) * w1.reshape(shape)
    return y


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "linear", "bilinear"])
def test_upsample_index_tables_match_torch(mode):
    """The compile-time source tables reproduce torch over many sizes and scale factors (PyTorch's
    2-D nearest kernel takes shortcuts for Out == In and Out == 2 In; its 1-D kernel does not)."""
    ir_mode = {"nearest-exact": "nearest_exact", "bilinear": "linear"}.get(mode, mode)
    ranks = {"linear": [1], "bilinear": [2]}.get(mode, [1, 2])
    aligns = [False, True] if "linear" in mode else [None]
    for dims in ranks:
        for n_in in range(1, 12):
            for sf in [0.3, 0.5, 0.7, 1.0, 1.1, 1.3, 1.5, 2.0, 2.1, 2.5, 3.0, 7.0 / 3]:
                for ac in aligns:
                    shape = (1, 2, n_in) if dims == 1 else (1, 2, n_in, n_in + 3)
                    if any(int(d * sf) < 1 for d in shape[2:]):
                        continue
                    x = torch.randn(shape)
                    kw = {} if ac is None else {"align_corners": ac}
                    y = F.interpolate(x, scale_factor=sf, mode=mode, **kw).numpy()
                    got = _interp_by_tables(x.numpy(), y.shape[2:], ir_mode, bool(ac), (sf,) * dims, dims == 2)
                    assert np.abs(got - y).max() < 1e-5, (mode, dims, n_in, sf, ac)


# -- pad ------------------------------------------------------------------------------------------

PAD = {
    "constant_2d": (lambda x: F.pad(x, (1, 2, 3, 0), value=0.5), [(2, 2, 3, 3)]),
    "constant_negative": (lambda x: F.pad(x, (1, -2, -1, 2), value=-1.5), [(1, 3, 5, 6)]),
    "constant_all_dims": (lambda x: F.pad(x, (1, 0, 0, 2, 1, 1, 2, 0)), [(1, 2, 3, 4)]),
    "constant_pad_nd": (lambda x: torch.constant_pad_nd(x, [2, 1], 3.0), [(2, 3, 5)]),
    "reflect_2d": (lambda x: F.pad(x, (1, 2, 3, 1), mode="reflect"), [(2, 2, 5, 4)]),
    "reflect_1d": (lambda x: F.pad(x, (3, 2), mode="reflect"), [(1, 3, 6)]),
    "reflect_negative": (lambda x: F.pad(x, (-1, 2, 2, -1), mode="reflect"), [(1, 2, 5, 6)]),
    "replicate_2d": (lambda x: F.pad(x, (2, 0, 1, 3), mode="replicate"), [(1, 3, 4, 5)]),
    "replicate_1d": (lambda x: F.pad(x, (4, 1), mode="replicate"), [(2, 3, 3)]),
    "replicate_negative": (lambda x: F.pad(x, (-2, 3), mode="replicate"), [(1, 3, 6)]),
    "circular_2d": (lambda x: F.pad(x, (1, 2, 2, 1), mode="circular"), [(1, 2, 4, 5)]),
    "reflection_pad2d_module": (nn.ReflectionPad2d((1, 0, 2, 1)), [(1, 3, 4, 4)]),
    "replication_pad1d_module": (nn.ReplicationPad1d(2), [(1, 3, 5)]),
    "zero_pad2d_module": (nn.ZeroPad2d((0, 1, 1, 0)), [(2, 3, 3, 3)]),
}
PAD_CASES = [(name, shape) for name, (_, shapes) in PAD.items() for shape in shapes]
PAD_SANITIZED = {"constant_negative", "reflect_negative", "circular_2d"}


@pytest.mark.parametrize("name,shape", PAD_CASES, ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in PAD_CASES])
def test_pad(name, shape):
    fn = PAD[name][0]
    model = fn if isinstance(fn, nn.Module) else op_model(fn)
    check_model(model, torch.randn(shape), sanitize=name in PAD_SANITIZED)


# -- group_norm / instance_norm -------------------------------------------------------------------

NORM = {
    "group_norm_2g": (lambda: nn.GroupNorm(2, 6), [(1, 6, 5, 5), (2, 6, 4, 7)]),
    "group_norm_1g": (lambda: nn.GroupNorm(1, 4), [(2, 4, 6)]),
    "group_norm_no_affine": (lambda: nn.GroupNorm(3, 6, affine=False), [(2, 6, 4, 4)]),
    "group_norm_rank2": (lambda: nn.GroupNorm(2, 8), [(3, 8)]),
    "instance_norm2d": (lambda: nn.InstanceNorm2d(4), [(2, 4, 5, 6)]),
    "instance_norm2d_affine": (lambda: nn.InstanceNorm2d(4, affine=True), [(1, 4, 6, 6)]),
    "instance_norm1d": (lambda: nn.InstanceNorm1d(3), [(2, 3, 10)]),
    "instance_norm1d_affine": (lambda: nn.InstanceNorm1d(3, affine=True), [(1, 3, 7)]),
    "instance_norm_running_stats": (lambda: nn.InstanceNorm2d(4, affine=True, track_running_stats=True),
                                    [(2, 4, 3, 5)]),
}
NORM_CASES = [(name, shape) for name, (_, shapes) in NORM.items() for shape in shapes]
NORM_SANITIZED = {"group_norm_2g", "instance_norm1d_affine"}


@pytest.mark.parametrize("name,shape", NORM_CASES, ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in NORM_CASES])
def test_norm(name, shape):
    check_cnn(NORM[name][0], shape, sanitize=name in NORM_SANITIZED and shape == NORM[name][1][0])


def test_group_norm_large_offset():
    """A large common offset must not cost precision (two-pass variance, (x - mean) first)."""
    check_cnn(lambda: nn.GroupNorm(2, 4), (1, 4, 32, 32), scale=0.5, offset=50.0)


def test_instance_norm_ops():
    res = check_cnn(lambda: nn.InstanceNorm2d(4, affine=True), (1, 4, 3, 3))
    assert [n.op for n in res["compiled"].graph.nodes] == ["group_norm"]


# -- a small CNN using several ops together --------------------------------------------------------

def test_small_cnn():
    model = _randomize(nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.GroupNorm(2, 8), nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True), nn.Upsample(scale_factor=2, mode="bilinear"),
        nn.ReflectionPad2d(1), nn.Conv2d(8, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()))
    check_model(model, torch.randn(2, 3, 15, 15), sanitize=True)


# -- what is not supported ------------------------------------------------------------------------

UNSUPPORTED = {
    "conv3d": (lambda: nn.Conv3d(2, 2, 3), (1, 2, 5, 5, 5), "conv3d"),
    "bicubic": (lambda: nn.Upsample(scale_factor=2, mode="bicubic"), (1, 2, 4, 4), "bicubic"),
    "circular_negative": (lambda: op_model(lambda x: F.pad(x, (-1, 2), mode="circular")), (1, 2, 6),
                          "negative circular"),
}


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported(name):
    make, shape, words = UNSUPPORTED[name]
    with pytest.raises(UnsupportedOpError, match=words):
        modelblocks.compile(make().eval(), torch.randn(shape))
