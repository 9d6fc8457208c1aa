"""The bundled PyTorch models, and loading a model by name or by ``package.module:function``.

Each bundled model is the topology of a network YAML file in
``instances/networks/``, written as an ``nn.Module`` whose modules carry the
YAML's layer names (``s1.conv1``, ``b3.dw``, ``fc``), so that the torch bridge
(``pruning.bridge``) gives exactly the YAML's layers. BatchNorm and activations
follow every convolution, as in the reference implementations; the workload
model folds them away.

The compression loop trains on Fashion-MNIST, so its models take one channel of
28x28 pixels (no padding) and give 10 classes; the same classes build the
MLPerf Tiny originals at their own input shapes (see ``ORIGINALS``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dse_milp.errors import InputError

NETWORKS = Path(__file__).resolve().parent.parent / "instances" / "networks"

InputShape = tuple[int, int, int]
"""(channels, height, width) of one sample."""


def _conv_bn(cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1, padding: int | tuple[int, int] = 0,
             groups: int = 1) -> tuple[nn.Conv2d, nn.BatchNorm2d]:  # fmt: skip
    return nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False), nn.BatchNorm2d(cout)


class ResidualStack(nn.Module):
    """Two 3x3 convolutions and a shortcut (identity, or a 1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(cin, cout, 3, stride, 1)
        self.conv2, self.bn2 = _conv_bn(cout, cout, 3, 1, 1)
        self.downsample = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(y + shortcut)


class ResNet8(nn.Module):
    """ResNet-8 of MLPerf Tiny (filters 16-32-64; instances/networks/tiny_resnet8.yaml)."""

    def __init__(self, in_channels: int = 1, classes: int = 10) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_channels, 16, 3, 1, 1)
        self.s1 = ResidualStack(16, 16, 1)
        self.s2 = ResidualStack(16, 32, 2)
        self.s3 = ResidualStack(32, 64, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.s3(self.s2(self.s1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class Separable(nn.Module):
    """A depthwise 3x3 convolution and a pointwise 1x1 one, each with BatchNorm and ReLU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.dw, self.dw_bn = _conv_bn(cin, cin, 3, stride, 1, groups=cin)
        self.pw, self.pw_bn = _conv_bn(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.pw_bn(self.pw(torch.relu(self.dw_bn(self.dw(x))))))


class DSCNN(nn.Module):
    """DS-CNN of MLPerf Tiny keyword spotting (instances/networks/tiny_dscnn.yaml): a 10x4
    stride-2 convolution and four depthwise-separable blocks of 64 channels."""

    def __init__(self, in_channels: int = 1, classes: int = 10) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_channels, 64, (10, 4), 2, (5, 1))
        for i in range(1, 5):
            self.add_module(f"b{i}", Separable(64, 64, 1))
        self.dropout = nn.Dropout(0.4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.b4(self.b3(self.b2(self.b1(x))))
        return self.fc(torch.flatten(self.pool(self.dropout(x)), 1))


MOBILENET_BLOCKS = [(8, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2)]
MOBILENET_BLOCKS += [(128, 128, 1)] * 5 + [(128, 256, 2), (256, 256, 1)]
"""MobileNetV1 with alpha = 0.25: (input channels, output channels, stride) of each separable block."""


class MobileNetV1(nn.Module):
    """MobileNetV1 with alpha = 0.25 of MLPerf Tiny visual wake words
    (instances/networks/tiny_mobilenet_v1_025.yaml)."""

    def __init__(self, in_channels: int = 1, classes: int = 10) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(in_channels, 8, 3, 2, 1)
        for i, (cin, cout, stride) in enumerate(MOBILENET_BLOCKS, start=1):
            self.add_module(f"b{i}", Separable(cin, cout, stride))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(256, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        for i in range(1, len(MOBILENET_BLOCKS) + 1):
            x = getattr(self, f"b{i}")(x)
        return self.fc(torch.flatten(self.pool(x), 1))


class SmallVGG(nn.Module):
    """A small VGG-style CNN (instances/networks/fmnist_small_vgg.yaml): pairs of 3x3
    convolutions of 16 and 32 channels, one of 64, each stage closed by a 2x2 max-pool, and a
    classifier over the flattened 64x3x3 map."""

    def __init__(self, in_channels: int = 1, classes: int = 10) -> None:
        super().__init__()
        widths = [(in_channels, 16), (16, 16), (16, 32), (32, 32), (32, 64)]
        for i, (cin, cout) in enumerate(widths, start=1):
            conv, bn = _conv_bn(cin, cout, 3, 1, 1)
            self.add_module(f"conv{i}", conv)
            self.add_module(f"bn{i}", bn)
        self.pool1, self.pool2, self.pool3 = nn.MaxPool2d(2), nn.MaxPool2d(2), nn.MaxPool2d(2)
        self.fc = nn.Linear(64 * 3 * 3, classes)

    def block(self, i: int, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.block(2, self.block(1, x)))
        x = self.pool2(self.block(4, self.block(3, x)))
        x = self.pool3(self.block(5, x))
        return self.fc(torch.flatten(x, 1))


@dataclass(frozen=True)
class Bundled:
    """A bundled model: its class, its input shape and classes, and its network YAML file."""

    build: Callable[[int, int], nn.Module]
    input_shape: InputShape
    classes: int
    yaml: Path

    def model(self) -> nn.Module:
        return self.build(self.input_shape[0], self.classes)


FASHION = (1, 28, 28)
MODELS: dict[str, Bundled] = {
    "resnet8": Bundled(ResNet8, FASHION, 10, NETWORKS / "fmnist_resnet8.yaml"),
    "ds_cnn": Bundled(DSCNN, FASHION, 10, NETWORKS / "fmnist_dscnn.yaml"),
    "mobilenet_v1_025": Bundled(MobileNetV1, FASHION, 10, NETWORKS / "fmnist_mobilenet_v1_025.yaml"),
    "small_vgg": Bundled(SmallVGG, FASHION, 10, NETWORKS / "fmnist_small_vgg.yaml"),
}
"""The models ``compress`` knows by name, for Fashion-MNIST (1x28x28, 10 classes)."""

ORIGINALS: dict[str, Bundled] = {
    "resnet8": Bundled(ResNet8, (3, 32, 32), 10, NETWORKS / "tiny_resnet8.yaml"),
    "ds_cnn": Bundled(DSCNN, (1, 49, 10), 12, NETWORKS / "tiny_dscnn.yaml"),
    "mobilenet_v1_025": Bundled(MobileNetV1, (3, 96, 96), 2, NETWORKS / "tiny_mobilenet_v1_025.yaml"),
}
"""The same classes at the MLPerf Tiny input shapes and classes of the original YAML files."""


def load_model(spec: str) -> tuple[nn.Module, InputShape]:
    """A bundled model by name, or ``package.module:function`` returning ``(module, (c, h, w))``."""
    if spec in MODELS:
        bundled = MODELS[spec]
        return bundled.model(), bundled.input_shape
    if ":" not in spec:
        known = ", ".join(MODELS)
        raise InputError([f"MODEL: unknown model {spec!r} (bundled: {known}; or give package.module:function)"])
    module_name, _, function_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure of the user's module is reported on one line
        raise InputError([f"MODEL: cannot import {module_name!r}: {type(exc).__name__}: {exc}"]) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise InputError([f"MODEL: {module_name!r} has no function {function_name!r}"])
    try:
        made = function()
    except Exception as exc:
        raise InputError([f"MODEL: {spec} raised {type(exc).__name__}: {exc}"]) from None
    module, shape = made if isinstance(made, tuple) and len(made) == 2 else (None, None)
    valid_shape = isinstance(shape, tuple | list) and len(shape) == 3 and all(type(v) is int and v > 0 for v in shape)
    if not (isinstance(module, nn.Module) and valid_shape):
        got = type(made).__name__
        raise InputError([f"MODEL: {spec} must return (nn.Module, (channels, height, width)), got {got}"])
    return module, (shape[0], shape[1], shape[2])  # type: ignore[index]
