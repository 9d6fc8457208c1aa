"""Small PyTorch models for the tests, loadable as ``tests.torch_models:NAME`` (``package.module:function``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Functional(nn.Module):
    """Functional forms of every mapped op: pooling, a residual add, a mean, view-flatten."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding="same")
        self.left = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.right = nn.Conv2d(8, 8, 1)
        self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=8)
        self.head = nn.Linear(16 * 8 * 8, 10)
        self.tail = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x)) * 0.5 + 1.0  # arithmetic with constants folds away
        x = torch.add(self.left(x), self.right(x))
        x = F.max_pool2d(x, 2)
        x = F.avg_pool2d(self.down(x), kernel_size=2, stride=1, padding=1)
        y = self.head(x.view(x.size(0), -1))
        return y + self.tail(x.mean((2, 3)))


def functional() -> tuple[nn.Module, tuple[int, int, int]]:
    return Functional(), (1, 28, 28)


FUNCTIONAL_YAML = {
    "name": "functional",
    "input": {"channels": 1, "height": 28, "width": 28},
    "layers": [
        {"name": "stem", "kind": "conv2d", "in_channels": 1, "out_channels": 8, "kernel": 3, "padding": 1},
        {"name": "left", "kind": "conv2d", "in_channels": 8, "out_channels": 8, "kernel": 3, "padding": 1},
        {"name": "right", "kind": "conv2d", "inputs": ["stem"], "in_channels": 8, "out_channels": 8, "kernel": 1},
        {"name": "add", "kind": "add", "inputs": ["left", "right"]},
        {"name": "pool", "kind": "pool", "kernel": 2},
        {"name": "down", "kind": "conv2d", "in_channels": 8, "out_channels": 16, "kernel": 3, "stride": 2,
         "padding": 1, "groups": 8},
        {"name": "pool_1", "kind": "pool", "kernel": 2, "stride": 1, "padding": 1},
        {"name": "head", "kind": "matmul", "in_features": 1024, "out_features": 10},
        {"name": "pool_2", "kind": "pool", "inputs": ["pool_1"], "kernel": "global"},
        {"name": "tail", "kind": "matmul", "in_features": 16, "out_features": 10},
        {"name": "add_1", "kind": "add", "inputs": ["head", "tail"]},
    ],
}  # fmt: skip
"""What ``Functional`` is, written by hand."""


class Recurrent(nn.Module):
    """An op the workload model has no layer for."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.lstm = nn.LSTM(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lstm(self.conv(x).mean((2, 3)))[0]


def recurrent() -> tuple[nn.Module, tuple[int, int, int]]:
    return Recurrent(), (1, 28, 28)


class Concatenating(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], dim=1)


class Dilated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, dilation=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Gated(nn.Module):
    """A product of two tensors (squeeze-and-excitation style)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y * torch.sigmoid(y)


class Branching(nn.Module):
    """Control flow on a tensor's value: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.conv(x)
        return self.conv(-x)


def wrong_return() -> nn.Module:
    return Dilated()


def raising() -> tuple[nn.Module, tuple[int, int, int]]:
    raise RuntimeError("no weights here")


class Mismatched(nn.Module):
    """Fails when run: its classifier expects other features than it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(10, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.conv(x), 1))
