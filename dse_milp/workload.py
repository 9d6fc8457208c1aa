"""The workload model: a network is a DAG of layers, each a nest of tile loops.

Every layer kind is reduced to one canonical loop nest (see docs/traffic_model.md):

    for g in groups:                       # independent channel groups, outermost
      tile loops over m, n, r, c in a chosen order
        out[m, r, c] += in[n, r*S + kh, c*S + kw] * w[m, n, kh, kw]

with ``m`` the output channels of a group, ``n`` its input channels (the
reduction), ``r``/``c`` the output rows and columns. How each kind maps onto it:

- conv2d: directly; depthwise is ``groups = in_channels`` (one channel per group,
  so no reduction across channels);
- matmul: ``m`` = out_features, ``n`` = in_features, the rows of the GEMM on ``r``
  and ``c = 1``; ``heads`` become groups (a batch of independent GEMMs);
- pool: one group per channel, no weights;
- add: one group per channel, no weights, one input tile per summed tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

NETWORK_INPUT = "input"
"""The name under which layers refer to the network's input tensor."""


class LayerKind(StrEnum):
    CONV2D = "conv2d"
    MATMUL = "matmul"
    POOL = "pool"
    ADD = "add"


class Operand(StrEnum):
    """The three on-chip operands of a layer's loop nest."""

    INPUT = "input"
    WEIGHT = "weight"
    OUTPUT = "output"


@dataclass(frozen=True)
class Precision:
    """Bits per element of each operand; partial sums usually are wider."""

    input: int = 8
    weight: int = 8
    output: int = 8
    psum: int = 32


@dataclass(frozen=True)
class Shape:
    """A feature map: (channels, height, width)."""

    channels: int
    height: int
    width: int

    @property
    def elements(self) -> int:
        return self.channels * self.height * self.width

    def __str__(self) -> str:
        return f"{self.channels}x{self.height}x{self.width}"


@dataclass(frozen=True)
class Layer:
    """One layer in canonical loop-nest form (see the module docstring).

    ``m`` and ``n`` count all channels of the layer; a group holds ``m // groups``
    output and ``n // groups`` input channels. ``h`` and ``w`` are the rows and
    columns of each input tensor as the nest reads it, before padding.
    """

    name: str
    kind: LayerKind
    inputs: tuple[str, ...]
    m: int
    n: int
    r: int
    c: int
    h: int
    w: int
    kh: int = 1
    kw: int = 1
    sh: int = 1
    sw: int = 1
    ph: int = 0
    pw: int = 0
    groups: int = 1
    precision: Precision = Precision()
    weight_from: str | None = None
    """A layer whose output is the weight operand (attention); None for parameters."""

    @property
    def mg(self) -> int:
        """Output channels per group."""
        return self.m // self.groups

    @property
    def ng(self) -> int:
        """Input channels (reduction length) per group."""
        return self.n // self.groups

    @property
    def has_weights(self) -> bool:
        return self.kind in (LayerKind.CONV2D, LayerKind.MATMUL)

    @property
    def input_tensors(self) -> int:
        """How many activation tensors each output element reads (two or more for add)."""
        return len(self.inputs) if self.kind is LayerKind.ADD else 1

    @property
    def dims(self) -> dict[str, int]:
        """The per-group extent of each tile loop."""
        return {"m": self.mg, "n": self.ng, "r": self.r, "c": self.c}

    @property
    def output_elements(self) -> int:
        return self.m * self.r * self.c

    @property
    def weight_elements(self) -> int:
        return self.m * self.ng * self.kh * self.kw if self.has_weights else 0

    @property
    def parameter_elements(self) -> int:
        """Weights that are parameters (not another layer's output)."""
        return self.weight_elements if self.weight_from is None else 0

    @property
    def macs_per_output(self) -> int:
        """MACs that produce one output element."""
        if self.kind is LayerKind.ADD:
            return self.input_tensors - 1
        return self.ng * self.kh * self.kw

    @property
    def macs(self) -> int:
        """Multiply-accumulates (comparisons for max-pool, additions for add)."""
        return self.output_elements * self.macs_per_output


@dataclass(frozen=True)
class Network:
    name: str
    input_shape: Shape
    layers: tuple[Layer, ...]
    output_shapes: dict[str, Shape]
    """Shape of every layer's output, by layer name."""

    @cached_property
    def by_name(self) -> dict[str, Layer]:
        return {layer.name: layer for layer in self.layers}

    def consumers(self, name: str) -> list[Layer]:
        """Layers that read ``name`` as an input or as their weight operand, in layer order."""
        return list(self._readers.get(name, ()))

    @cached_property
    def _readers(self) -> dict[str, tuple[Layer, ...]]:
        """Every tensor's readers, found in one pass over the layers."""
        readers: dict[str, list[Layer]] = {}
        for layer in self.layers:
            for tensor in dict.fromkeys((*layer.inputs, *((layer.weight_from,) if layer.weight_from else ()))):
                readers.setdefault(tensor, []).append(layer)
        return {tensor: tuple(found) for tensor, found in readers.items()}

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def parameters(self) -> int:
        return sum(layer.parameter_elements for layer in self.layers)
