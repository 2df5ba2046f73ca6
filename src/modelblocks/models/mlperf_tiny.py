"""The four MLPerf Tiny v1.0 reference models, written in PyTorch from their published architectures.

MLPerf Tiny (C. Banbury et al., "MLPerf Tiny Benchmark", NeurIPS Datasets and Benchmarks 2021,
arXiv:2106.07597); the reference models are the Keras definitions of github.com/mlcommons/tiny,
`benchmark/training/`:

- `ds_cnn` (keyword spotting, `keyword_spotting/keras_model.py`, the DS-CNN of Zhang et al., "Hello
  Edge: Keyword Spotting on Microcontrollers", arXiv:1711.07128): 1x49x10 MFCC -> conv 10x4 stride 2,
  64 filters + BN + ReLU -> 4 x (depthwise 3x3 + BN + ReLU, pointwise 1x1 64 + BN + ReLU) -> average
  pool 25x5 -> linear 12 -> softmax. Dropout after the first conv and before the pool (identity in
  inference). Keras pads "same"; here the first conv pads (5, 1), which gives the same 25x5 output
  (Keras pads 4 above and 5 below: the window is one row apart, the size and MACs are equal).
- `mobilenet_v1` (visual wake words, `visual_wake_words/vww_model.py`, MobileNetV1 of Howard et al.,
  arXiv:1704.04861, width multiplier 0.25): 3x96x96 -> conv 3x3 stride 2, 8 filters + BN + ReLU ->
  13 depthwise-separable blocks (channels 16, 32, 32, 64, 64, 128 x6, 256, 256; stride 2 in blocks
  2, 4, 6, 12) -> average pool 3x3 -> linear 2 -> softmax.
- `resnet8` (image classification, `image_classification/keras_model.py`, `resnet_v1_eembc` with
  16 filters): 3x32x32 -> conv 3x3 16 + BN + ReLU -> three residual stacks of two 3x3 convs (16, 32,
  64 filters; the second and third stride 2, with a 1x1 stride-2 projection conv on the shortcut,
  no BN on it, as in the reference) -> average pool 8x8 -> linear 10 -> softmax.
- `fc_autoencoder` (anomaly detection on ToyADMOS, `anomaly_detection/keras_model.py`, the DCASE 2020
  task 2 baseline): 640 (5 frames x 128 log-mel bins) -> Dense 128 x4 -> Dense 8 -> Dense 128 x4 ->
  Dense 640, every hidden Dense followed by BN + ReLU, the output Dense linear.

Convolutions and Dense layers keep their bias, as Keras' defaults do, so parameter counts match the
reference. Nothing is downloaded: weights are randomly initialised with a fixed seed and every
BatchNorm gets seeded non-trivial statistics and affine parameters, so BatchNorm folding is really
exercised. `build(name)` returns the model in eval mode with a batch-1 example input;
`calibration_inputs(name)` and `eval_inputs(name)` give seeded data of the right shape and a
plausible range (MFCCs, images in [0, 1], log-mel energies in dB).

`PUBLISHED` holds each reference model's parameter and MAC counts, computed layer by layer from the
reference Keras definitions above (Keras `count_params()` convention: weights, biases and the four
BatchNorm vectors, moving mean and variance included; MACs of convolutions and Dense layers, one
per weight use): no table of these counts could be found for the MLPerf Tiny paper, and the tests
check both against the PyTorch models independently (`count_params`, `count_macs`). The figures
quoted with MLPerf Tiny v0.5 (Microprocessor Report, "MLPerf Gets Tiny", Aug. 2021) are the int8
TFLite file sizes: DS-CNN 53 KB, MobileNet 325 KB, ResNet 96 KB, FC AutoEncoder 270 KB
(`PUBLISHED_TFLITE_KB`; flatbuffer, int8 weights, int32 biases and quantization parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

NAMES = ("ds_cnn", "mobilenet_v1", "resnet8", "fc_autoencoder")
SEED = 0


@dataclass(frozen=True)
class Published:
    """Counts of the reference Keras model: `params` in Keras' count (BatchNorm's four vectors included),
    `bn_channels` the channels of all its BatchNorm layers (each folds away 4 numbers per channel), `macs`."""

    params: int
    bn_channels: int
    macs: int
    task: str
    source: str

    @property
    def trainable_params(self) -> int:
        return self.params - 2 * self.bn_channels  # moving mean and variance are not trainable

    @property
    def folded_params(self) -> int:
        """Parameters once BatchNorm is folded into the preceding conv / Dense (what the compiled graph holds)."""
        return self.params - 4 * self.bn_channels


_TINY = "github.com/mlcommons/tiny benchmark/training/"
PUBLISHED: dict[str, Published] = {
    # conv 2,624 + 4 x (dw 640 + pw 4,160) + dense 780 = 24,044, BN 9 x 64 channels;
    # MACs 25*5*64*40 + 4 * 25*5*64*(9 + 64) + 64*12
    "ds_cnn": Published(params=24_908, bn_channels=576, macs=2_656_768, task="keyword spotting (Speech Commands)",
                        source=_TINY + "keyword_spotting/keras_model.py"),
    "mobilenet_v1": Published(params=221_794, bn_channels=2_736, macs=7_489_664, task="visual wake words (COCO person)",
                              source=_TINY + "visual_wake_words/vww_model.py"),
    "resnet8": Published(params=78_666, bn_channels=240, macs=12_501_632, task="image classification (CIFAR-10)",
                         source=_TINY + "image_classification/keras_model.py"),
    "fc_autoencoder": Published(params=269_992, bn_channels=1_032, macs=264_192, task="anomaly detection (ToyADMOS car)",
                                source=_TINY + "anomaly_detection/keras_model.py"),
}
# int8 TFLite file sizes quoted for MLPerf Tiny v0.5 (KB): flatbuffer, int8 weights, int32 biases, quant params
PUBLISHED_TFLITE_KB = {"ds_cnn": 53, "mobilenet_v1": 325, "resnet8": 96, "fc_autoencoder": 270}


def _conv_bn_relu(cin: int, cout: int, kernel, stride=1, padding=0, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups), nn.BatchNorm2d(cout), nn.ReLU()]


def _separable(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    """Depthwise 3x3 (+ BN + ReLU), then pointwise 1x1 (+ BN + ReLU)."""
    return _conv_bn_relu(cin, cin, 3, stride, 1, groups=cin) + _conv_bn_relu(cin, cout, 1)


class DSCNN(nn.Module):
    """MLPerf Tiny keyword spotting: DS-CNN on 1x49x10 MFCCs, 12 classes."""

    def __init__(self, filters: int = 64, blocks: int = 4, classes: int = 12):
        super().__init__()
        layers = _conv_bn_relu(1, filters, (10, 4), stride=2, padding=(5, 1)) + [nn.Dropout(0.2)]
        for _ in range(blocks):
            layers += _separable(filters, filters)
        layers += [nn.Dropout(0.4), nn.AvgPool2d((25, 5))]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(filters, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.fc(self.features(x).flatten(1)), dim=1)


# (output channels at width 1.0, stride) of MobileNetV1's 13 depthwise-separable blocks
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                       (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


class MobileNetV1(nn.Module):
    """MLPerf Tiny visual wake words: MobileNetV1 with width multiplier `alpha` on 3x96x96, 2 classes."""

    def __init__(self, alpha: float = 0.25, classes: int = 2, image_size: int = 96):
        super().__init__()
        c = int(32 * alpha)
        layers = _conv_bn_relu(3, c, 3, stride=2, padding=1)
        size = image_size // 2
        for width, stride in MOBILENET_V1_BLOCKS:
            layers += _separable(c, int(width * alpha), stride)
            c, size = int(width * alpha), size // stride
        layers.append(nn.AvgPool2d(size))  # 3x3 at 96x96: the whole map, as the reference's pool
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.fc(self.features(x).flatten(1)), dim=1)


class ResidualStack(nn.Module):
    """conv 3x3 (stride) + BN + ReLU, conv 3x3 + BN, added to the input (through a 1x1 stride-`stride`
    projection conv when the shape changes), then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(self.shortcut(x) + y)


class ResNet8(nn.Module):
    """MLPerf Tiny image classification: ResNet-8 (EEMBC's resnet_v1) on 3x32x32 CIFAR-10, 10 classes."""

    def __init__(self, filters: int = 16, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn_relu(3, filters, 3, padding=1))
        self.stack1 = ResidualStack(filters, filters, 1)
        self.stack2 = ResidualStack(filters, 2 * filters, 2)
        self.stack3 = ResidualStack(2 * filters, 4 * filters, 2)
        self.pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(4 * filters, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stack3(self.stack2(self.stack1(self.stem(x))))
        return torch.softmax(self.fc(self.pool(x).flatten(1)), dim=1)


class FCAutoEncoder(nn.Module):
    """MLPerf Tiny anomaly detection: the DCASE 2020 dense autoencoder, 640-128x4-8-128x4-640."""

    def __init__(self, inputs: int = 640, hidden: int = 128, bottleneck: int = 8):
        super().__init__()
        widths = [inputs, hidden, hidden, hidden, hidden, bottleneck, hidden, hidden, hidden, hidden]
        layers: list[nn.Module] = []
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU()]
        layers.append(nn.Linear(hidden, inputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


BUILDERS: dict[str, Callable[[], nn.Module]] = {
    "ds_cnn": DSCNN, "mobilenet_v1": MobileNetV1, "resnet8": ResNet8, "fc_autoencoder": FCAutoEncoder,
}
INPUT_SHAPES = {"ds_cnn": (1, 49, 10), "mobilenet_v1": (3, 96, 96), "resnet8": (3, 32, 32), "fc_autoencoder": (640,)}


def randomise_batchnorm(model: nn.Module, gen: torch.Generator) -> nn.Module:
    """Seeded non-trivial BatchNorm statistics and affine parameters (so that folding is exercised)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=gen))
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(torch.rand(n, generator=gen) - 0.5)
    return model


def _check(name: str) -> None:
    if name not in BUILDERS:
        raise ValueError(f"unknown MLPerf Tiny model {name!r}; choose from {list(NAMES)}")


def build(name: str, seed: int = SEED) -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The model `name` in eval mode with seeded weights and BatchNorm statistics, and a batch-1
    example input (the first evaluation input)."""
    _check(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BUILDERS[name]()
    randomise_batchnorm(model, torch.Generator().manual_seed(seed + 1))
    return model.eval(), (eval_inputs(name, 1, seed)[0:1],)


def _sample(name: str, n: int, gen: torch.Generator) -> torch.Tensor:
    shape = (n, *INPUT_SHAPES[name])
    if name == "ds_cnn":
        # MFCCs: coefficient 0 (log energy) large and negative, higher coefficients smaller, smooth in time
        k = torch.arange(10, dtype=torch.float32)
        scale = 24.0 / (1.0 + k)
        base = torch.randn(n, 1, 1, 10, generator=gen) * scale
        frames = torch.randn(shape, generator=gen) * (0.5 * scale)
        offset = torch.zeros(10)
        offset[0] = -35.0
        return base + frames + offset
    if name in ("mobilenet_v1", "resnet8"):
        # images scaled to [0, 1]: a smooth random field plus pixel noise, clipped
        c, h, w = INPUT_SHAPES[name]
        coarse = torch.rand(n, c, h // 8, w // 8, generator=gen)
        img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
        return (img + 0.1 * torch.randn(shape, generator=gen)).clamp(0.0, 1.0)
    # log-mel energies in dB, 5 frames x 128 bins: a per-sample spectral envelope plus frame noise
    envelope = -45.0 + 10.0 * torch.randn(n, 1, 128, generator=gen) - torch.linspace(0, 20, 128)
    frames = envelope + 3.0 * torch.randn(n, 5, 128, generator=gen)
    return frames.reshape(n, 640)


def calibration_inputs(name: str, n: int = 32, seed: int = SEED) -> torch.Tensor:
    """`n` seeded samples [n, ...] for int8 calibration (a different stream from `eval_inputs`)."""
    _check(name)
    return _sample(name, n, torch.Generator().manual_seed(1000 + seed)).contiguous()


def eval_inputs(name: str, n: int = 8, seed: int = SEED) -> torch.Tensor:
    """`n` seeded samples [n, ...] to evaluate on (batch 1 each: take `x[i:i + 1]`)."""
    _check(name)
    return _sample(name, n, torch.Generator().manual_seed(2000 + seed)).contiguous()


def count_params(model: nn.Module) -> int:
    """Parameters in Keras' count: weights, biases and BatchNorm's four vectors (running stats included)."""
    params = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return params + stats


def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    """MACs of the model's convolutions and Linear layers on `example` (one per weight use), counted on
    the PyTorch model with forward hooks: independent of ModelBlocks' own count."""
    total = 0

    def conv_hook(m: nn.Conv2d, _inp, out):
        nonlocal total
        total += out.numel() // out.shape[0] * (m.in_channels // m.groups) * int(np.prod(m.kernel_size))

    def linear_hook(m: nn.Linear, _inp, out):
        nonlocal total
        total += out.numel() // out.shape[0] * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
    return total


def models(seed: int = SEED) -> dict[str, tuple[nn.Module, tuple[torch.Tensor]]]:
    """All four: {name: (model, (example input,))}."""
    return {name: build(name, seed) for name in NAMES}
