"""The project plan's test bank: {name: factory returning (model, inputs, expected output shapes)}.

Weights are seeded; BatchNorm statistics are randomised so that folding is really exercised.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from modelblocks.models import tiny_vit


def _randomise_bn(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


class ConvReluBnLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x):
        x = self.bn1(F.relu(self.conv1(x)))
        x = self.bn2(F.relu(self.conv2(x)))
        return self.fc(torch.flatten(x, 1))


class ComplexNet(nn.Module):
    """Convolutions (plain, strided, depthwise, 1x1), BatchNorm, residuals, several activations,
    pooling, Linear layers with LayerNorm and Dropout, 1000 classes."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.BatchNorm2d(16), nn.Hardswish(),
                                nn.Conv2d(16, 24, 1, bias=False), nn.BatchNorm2d(24))
        self.res = nn.Sequential(nn.Conv2d(24, 24, 3, padding=1), nn.BatchNorm2d(24), nn.SiLU(),
                                 nn.Conv2d(24, 24, 3, padding=1), nn.BatchNorm2d(24))
        self.down = nn.Sequential(nn.Conv2d(24, 48, 3, stride=2, padding=1), nn.GroupNorm(4, 48), nn.GELU(),
                                  nn.MaxPool2d(2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Linear(48, 128), nn.LayerNorm(128), nn.LeakyReLU(0.1), nn.Dropout(0.2),
                                  nn.Linear(128, num_classes))

    def forward(self, x):
        x = self.dw(self.stem(x))
        x = F.relu(x + self.res(x))
        x = self.pool(self.down(x)).flatten(1)
        return self.head(x)


class ControlFlowMLP(nn.Module):
    """Python control flow and variable manipulation resolved at export time."""

    def __init__(self, sizes=(10, 20, 5), twice: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(sizes[0], sizes[1])
        self.fc2 = nn.Linear(sizes[1], sizes[2])
        self.twice = twice
        self.scale = 0.5

    def forward(self, x):
        h = self.fc1(x)
        acts = [torch.relu, torch.tanh]
        for i in range(2 if self.twice else 1):
            h = acts[i % 2](h) if x.shape[0] > 1 else h
        scale = self.scale
        if h.dim() == 2:
            scale = scale * 2
        y = self.fc2(h) * scale
        return y


class SequentialMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))

    def forward(self, x):
        return self.net(x)


class ModuleListMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(10, 20), nn.Linear(20, 5)])

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class ViTSixOutputs(nn.Module):
    """The hand-made ViT returning six outputs: logits, class-token features, patch tokens after
    the last block, attention-block output, embedded tokens and pooled features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.vit = tiny_vit.build()[0]

    def forward(self, x):
        v = self.vit
        tokens = v.patch_embed(x)
        cls = v.cls_token.expand(x.shape[0], -1, -1)
        h = torch.cat([cls, tokens], dim=1) + v.pos_embed
        embedded = h
        first_attn = v.blocks[0].attn(v.blocks[0].norm1(h))
        for block in v.blocks:
            h = block(h)
        h = v.norm(h)
        logits = v.head(h[:, 0])
        return logits, h[:, 0], h[:, 1:], first_attn, embedded, h.mean(dim=1)


class LSTMClassifier(nn.Module):
    def __init__(self, features=8, hidden=16, classes=4):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=2, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1, :])


class GRUModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 12, num_layers=1, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(24, 3)

    def forward(self, x):
        out, h = self.gru(x)
        return self.fc(out), h


class DSCNN(nn.Module):
    """Depthwise-separable CNN (keyword-spotting style) on a 1x49x10 spectrogram."""

    def __init__(self, classes=12, ch=32):
        super().__init__()
        layers = [nn.Conv2d(1, ch, (10, 4), stride=(2, 2), padding=(5, 1)), nn.BatchNorm2d(ch), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Conv2d(ch, ch, 3, padding=1, groups=ch), nn.BatchNorm2d(ch), nn.ReLU(),
                       nn.Conv2d(ch, ch, 1), nn.BatchNorm2d(ch), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(ch, classes)

    def forward(self, x):
        x = self.features(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Conv1DTimeSeries(nn.Module):
    """1-D convolutions over a multichannel sensor window (vibration monitoring)."""

    def __init__(self, channels=3, classes=5):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(channels, 16, 7, padding=3), nn.BatchNorm1d(16), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(16, 32, 5, stride=2, padding=2), nn.BatchNorm1d(32), nn.ReLU(),
            nn.Conv1d(32, 32, 3, dilation=2, padding=2), nn.ReLU(), nn.AdaptiveAvgPool1d(1))
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        return self.fc(self.net(x).flatten(1))


def _seeded(factory):
    def build():
        torch.manual_seed(0)
        model, inputs, shapes = factory()
        return _randomise_bn(model), inputs, shapes

    return build


BANK = {
    "01_linear": _seeded(lambda: (nn.Linear(10, 5), (torch.randn(2, 10),), [(2, 5)])),
    "02_linear_relu": _seeded(lambda: (nn.Sequential(nn.Linear(10, 5), nn.ReLU()), (torch.randn(2, 10),), [(2, 5)])),
    "03_conv2d": _seeded(lambda: (nn.Conv2d(3, 16, 3, padding=1), (torch.randn(2, 3, 32, 32),), [(2, 16, 32, 32)])),
    "04_conv_relu_bn_linear": _seeded(lambda: (ConvReluBnLinear(), (torch.randn(2, 3, 16, 16),), [(2, 10)])),
    "05_maxpool": _seeded(lambda: (nn.MaxPool2d(2), (torch.randn(2, 3, 20, 20),), [(2, 3, 10, 10)])),
    "06_avgpool": _seeded(lambda: (nn.AvgPool2d(3, stride=2, padding=1), (torch.randn(2, 3, 20, 20),), [(2, 3, 10, 10)])),
    "07_adaptive_avgpool": _seeded(lambda: (nn.AdaptiveAvgPool2d((16, 16)), (torch.randn(2, 3, 37, 29),), [(2, 3, 16, 16)])),
    "08_complex_1000": _seeded(lambda: (ComplexNet(), (torch.randn(1, 3, 64, 64),), [(1, 1000)])),
    "09_control_flow_mlp": _seeded(lambda: (ControlFlowMLP(), (torch.randn(2, 10),), [(2, 5)])),
    "10_sequential_mlp": _seeded(lambda: (SequentialMLP(), (torch.randn(2, 10),), [(2, 5)])),
    "11_modulelist_mlp": _seeded(lambda: (ModuleListMLP(), (torch.randn(2, 10),), [(2, 5)])),
    "12_vit_6_outputs": _seeded(lambda: (ViTSixOutputs(), (torch.randn(2, 3, 32, 32),),
                                         [(2, 6), (2, 64), (2, 16, 64), (2, 17, 64), (2, 17, 64), (2, 64)])),
    "13_lstm_classifier": _seeded(lambda: (LSTMClassifier(), (torch.randn(3, 12, 8),), [(3, 4)])),
    "14_gru": _seeded(lambda: (GRUModel(), (torch.randn(2, 9, 6),), [(2, 9, 3), (2, 2, 12)])),
    "15_ds_cnn": _seeded(lambda: (DSCNN(), (torch.randn(1, 1, 49, 10),), [(1, 12)])),
    "16_conv1d_timeseries": _seeded(lambda: (Conv1DTimeSeries(), (torch.randn(2, 3, 128),), [(2, 5)])),
}
