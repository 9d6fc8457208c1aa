"""PyTorch to the program: trace an ``nn.Module`` and map it onto the workload model.

The module is traced with ``torch.fx`` and its tensor shapes found with fx's
``ShapeProp`` on one example sample. Each node becomes a layer of the network
YAML format (docs/formats.md), and the document goes through the same loader
as a file, so what the program solves is exactly what ``network.yaml`` holds:

- ``Conv2d`` (stride, padding, groups; depthwise when groups = channels) becomes
  ``conv2d``; ``Linear`` on a flattened or pooled tensor, or per position on a
  ``(batch, positions, features)`` tensor, becomes ``matmul``; the product of two computed
  tensors (``q @ k.transpose(-2, -1)``, attention) a ``matmul`` with ``heads`` and
  ``weight_from``, as the ONNX import maps it (``dse_milp.onnx_import``);
- ``MaxPool2d``, ``AvgPool2d`` (and their functional forms) become ``pool``;
  ``AdaptiveAvgPool2d(1)`` and a mean over both spatial axes become a global pool;
- the sum of two tensors becomes ``add``;
- ``flatten``, ``view``/``reshape``, ``transpose`` and ``permute`` pass the tensor on
  unchanged (the next ``Linear`` reads it flattened, or per position);
- BatchNorm, LayerNorm, activations, dropout, identities, softmax and arithmetic with a
  constant are folded away: they move no tensor of their own.

The input is ``(batch, channels, height, width)``, ``(batch, positions, features)`` or
``(batch, features)`` (features as channels, positions as rows).

Anything else is an ``InputError`` naming the op and the node, never a silent skip.
Layers are named after their modules (``s1.conv1``); a functional layer after
the module whose ``forward`` calls it (``s1.add``).
"""

from __future__ import annotations

import contextlib
import io
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from dse_milp.errors import InputError
from dse_milp.loader import parse_network
from dse_milp.workload import NETWORK_INPUT, Network

FOLDED_MODULES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU,
    nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Softmax, nn.LogSoftmax,
    nn.Dropout, nn.Dropout2d, nn.Identity, nn.LayerNorm,
)  # fmt: skip
"""Modules that keep their input's shape and move no tensor of their own."""

FOLDED_FUNCTIONS: frozenset[Callable[..., Any]] = frozenset({
    F.relu, F.relu6, F.leaky_relu, F.elu, F.gelu, F.silu, F.hardswish, F.hardsigmoid, F.hardtanh, F.sigmoid,
    F.tanh, F.softmax, F.log_softmax, F.dropout, F.dropout2d, F.batch_norm, F.layer_norm,
    torch.relu, torch.sigmoid, torch.tanh, torch.clamp, torch.softmax, torch.log_softmax,
})  # fmt: skip
FOLDED_METHODS = frozenset({"relu", "relu_", "sigmoid", "tanh", "clamp", "clamp_", "contiguous", "softmax"})
ARITHMETIC = frozenset({operator.add, operator.iadd, operator.sub, operator.mul, operator.truediv, torch.add, torch.mul,
                        torch.sub, torch.div})  # fmt: skip
ADDS = frozenset({operator.add, operator.iadd, torch.add})
RESHAPES = frozenset({"view", "reshape", "flatten", "transpose", "permute"})
MATMULS = frozenset({operator.matmul, torch.matmul, torch.bmm})
SHAPE_ARITHMETIC = frozenset({getattr, operator.getitem, operator.mul, operator.floordiv, operator.add, operator.sub})
"""Functions that fx records while a model computes a shape (``x.size(0)``, ``x.shape[1] * 4``)."""


def _pair(value: int | tuple[int, ...] | list[int]) -> list[int]:
    items = [value, value] if isinstance(value, int) else list(value)
    return [int(items[0]), int(items[-1])]


def _short(value: list[int]) -> int | list[int]:
    return value[0] if value[0] == value[1] else value


class _Mapper:
    """Walks the traced graph once, in execution order, and writes one layer per mapped node."""

    def __init__(self, graph: fx.GraphModule, where: str) -> None:
        self.graph = graph
        self.where = where
        self.modules = dict(graph.named_modules())
        self.tensor: dict[fx.Node, str] = {}
        """The layer (or the network input) whose output each tensor-valued node carries."""
        self.layers: list[dict[str, Any]] = []
        self.used: set[str] = {NETWORK_INPUT}
        self.input_shape: list[int] | None = None
        self.outputs: list[str] = []

    def fail(self, node: fx.Node, what: str) -> InputError:
        return InputError([f"{self.where}: node {node.name!r}: {what}"])

    def shape(self, node: fx.Node) -> list[int]:
        """The shape of the tensor ``node`` computes; [] for anything that is not one tensor."""
        meta = node.meta.get("tensor_meta")
        return list(meta.shape) if isinstance(meta, TensorMetadata) else []

    def source(self, node: Any, at: fx.Node) -> str:
        if not isinstance(node, fx.Node) or node not in self.tensor:
            raise self.fail(at, f"reads {node!r}, which is not a tensor the network computes")
        return self.tensor[node]

    def name(self, node: fx.Node, base: str) -> str:
        """A unique layer name: the module's, or the calling module's scope and ``base``."""
        if node.op != "call_module":
            stack = node.meta.get("nn_module_stack") or {}
            scope = next(reversed(stack), "") if stack else ""
            base = f"{scope}.{base}" if scope else base
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def add_layer(self, node: fx.Node, base: str, inputs: list[str], kind: str, **fields: Any) -> None:
        """Write a layer; ``inputs`` only when it reads other than the layer written before it."""
        name = self.name(node, base)
        layer: dict[str, Any] = {"name": name, "kind": kind}
        previous = self.layers[-1]["name"] if self.layers else NETWORK_INPUT
        if inputs != [previous]:
            layer["inputs"] = inputs
        self.layers.append(layer | fields)
        self.tensor[node] = name

    def run(self) -> None:
        for node in self.graph.graph.nodes:
            if node.op == "placeholder":
                if self.input_shape is not None:
                    raise self.fail(node, "a second model input (only one input tensor is supported)")
                shape = self.shape(node)
                if len(shape) not in (2, 3, 4):
                    raise self.fail(node, "the input must be (batch, channels, height, width), (batch, positions, "
                                          f"features) or (batch, features), got {shape}")  # fmt: skip
                # features as channels and positions as rows, as the ONNX import and bert_base_block.yaml
                self.input_shape = shape[1:] if len(shape) == 4 else [shape[-1], shape[1] if len(shape) == 3 else 1, 1]
                self.tensor[node] = NETWORK_INPUT
            elif node.op == "output":
                returned: list[fx.Node] = []
                fx.node.map_arg(node.args, returned.append)
                self.outputs = [self.source(n, node) for n in returned]
            elif node.op == "get_attr":
                raise self.fail(node, f"reads the parameter {node.target!r} directly (unsupported)")
            elif not self.shape(node):  # a shape computation, or an op that returns no single tensor
                if (node.op == "call_method" and node.target in ("size", "dim")) or (
                    node.op == "call_function" and node.target in SHAPE_ARITHMETIC
                ):
                    continue
                raise self.fail(node, f"unsupported op {self.describe(node)}")
            elif node.op == "call_module":
                self.module(node, self.modules[node.target])
            else:
                self.function(node)

    def describe(self, node: fx.Node) -> str:
        if node.op == "call_module":
            return f"{type(self.modules[node.target]).__name__} (module {node.target!r})"
        if node.op == "call_method":
            return f"Tensor.{node.target}"
        name = getattr(node.target, "__name__", None)
        if name is None:
            return repr(node.target)
        module = (getattr(node.target, "__module__", None) or "").lstrip("_")
        return f"{module}.{name}" if module and module != "operator" else name

    def tensors(self, node: fx.Node) -> list[fx.Node]:
        return [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, fx.Node) and self.shape(a)]

    def fold(self, node: fx.Node) -> None:
        (source,) = self.tensors(node)[:1] or [None]
        self.tensor[node] = self.source(source, node)

    def module(self, node: fx.Node, module: nn.Module) -> None:
        (x,) = node.args[:1]
        if isinstance(module, FOLDED_MODULES):
            self.fold(node)
        elif isinstance(module, nn.Flatten):
            self.flatten(node, x, module.start_dim)
        elif isinstance(module, nn.Conv2d):
            self.conv(node, module, x)
        elif isinstance(module, nn.Linear):
            self.linear(node, module, x)
        elif isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
            self.pool(node, x, module.kernel_size, module.stride, module.padding, getattr(module, "dilation", 1),
                      module.ceil_mode)  # fmt: skip
        elif isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
            self.adaptive(node, x, module.output_size)
        else:
            raise self.fail(node, f"unsupported op {self.describe(node)}")

    def function(self, node: fx.Node) -> None:
        target, args = node.target, node.args
        method = node.op == "call_method"
        if (not method and target in FOLDED_FUNCTIONS) or (method and target in FOLDED_METHODS):
            self.fold(node)
        elif (not method and target in ADDS) or (method and target in ("add", "add_")):
            tensors = self.tensors(node)
            if len(tensors) == 2:
                inputs = [self.source(t, node) for t in tensors]
                self.add_layer(node, "add", inputs, kind="add")
            else:
                self.fold(node)  # a constant added to a tensor
        elif (not method and target in ARITHMETIC) or (method and target in ("mul", "div", "sub", "mul_", "sub_")):
            if len(self.tensors(node)) != 1:
                raise self.fail(node, f"unsupported op {self.describe(node)} of two tensors")
            self.fold(node)
        elif (not method and target in (torch.flatten, torch.transpose, torch.permute)) or (
            method and target in RESHAPES
        ):
            self.tensor[node] = self.source(args[0], node)  # a rearrangement: read as stored
        elif (not method and target in MATMULS) or (method and target == "matmul"):
            self.matmul(node, args[0], args[1])
        elif not method and target in (F.max_pool2d, F.avg_pool2d):
            params = dict(zip(("kernel_size", "stride", "padding"), args[1:4], strict=False)) | dict(node.kwargs)
            kernel = params["kernel_size"]
            self.pool(node, args[0], kernel, params.get("stride") or kernel, params.get("padding", 0),
                      params.get("dilation", 1), params.get("ceil_mode", False))  # fmt: skip
        elif not method and target in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d):
            self.adaptive(node, args[0], node.kwargs.get("output_size", args[1] if len(args) > 1 else None))
        elif (not method and target is torch.mean) or (method and target == "mean"):
            dims = node.kwargs.get("dim", args[1] if len(args) > 1 else None)
            dims = [dims] if isinstance(dims, int) else list(dims or [])
            if sorted(d % 4 for d in dims) != [2, 3]:
                raise self.fail(node, f"a mean over dims {dims} (only the two spatial axes are supported)")
            self.add_layer(node, "pool", [self.source(args[0], node)], kind="pool", kernel="global")
        else:
            raise self.fail(node, f"unsupported op {self.describe(node)}")

    def flatten(self, node: fx.Node, x: fx.Node, start_dim: int) -> None:
        if start_dim != 1:
            raise self.fail(node, f"flatten from dim {start_dim} (only flattening after the batch is supported)")
        self.tensor[node] = self.source(x, node)

    def matmul(self, node: fx.Node, a: fx.Node, b: fx.Node) -> None:
        """A product of two computed tensors, ``(1, heads, n, d)`` by ``(1, heads, d, k)``: a matmul
        whose weights are the second tensor, one head per leading axis after the batch."""
        x, y = self.shape(a), self.shape(b)
        if len(x) != len(y) or len(x) < 3 or x[:-2] != y[:-2] or x[-1] != y[-2]:
            raise self.fail(node, f"a matmul of shapes {x} and {y} (attention: (1, heads, n, d) by (1, heads, d, k))")
        heads = 1
        for extent in x[1:-2]:
            heads *= extent
        fields: dict[str, Any] = {"in_features": heads * x[-1], "out_features": heads * y[-1]}
        if heads != 1:
            fields["heads"] = heads
        fields["weight_from"] = self.source(b, node)
        self.add_layer(node, "matmul", [self.source(a, node)], kind="matmul", **fields)

    def conv(self, node: fx.Node, conv: nn.Conv2d, x: fx.Node) -> None:
        if _pair(conv.dilation) != [1, 1]:
            raise self.fail(node, f"Conv2d with dilation {conv.dilation} (only 1 is supported)")
        kernel = _pair(conv.kernel_size)
        if conv.padding == "same":
            if any(k % 2 == 0 for k in kernel) or _pair(conv.stride) != [1, 1]:
                raise self.fail(node, "Conv2d padding='same' with an even kernel or a stride (asymmetric padding)")
            padding = [k // 2 for k in kernel]
        else:
            padding = [0, 0] if conv.padding == "valid" else _pair(conv.padding)
        fields = {"in_channels": conv.in_channels, "out_channels": conv.out_channels, "kernel": _short(kernel)}
        if _pair(conv.stride) != [1, 1]:
            fields["stride"] = _short(_pair(conv.stride))
        if padding != [0, 0]:
            fields["padding"] = _short(padding)
        if conv.groups != 1:
            fields["groups"] = conv.groups
        self.add_layer(node, str(node.target), [self.source(x, node)], kind="conv2d", **fields)

    def linear(self, node: fx.Node, linear: nn.Linear, x: fx.Node) -> None:
        if len(self.shape(x)) not in (2, 3):
            raise self.fail(node, f"Linear on a tensor of shape {self.shape(x)} (only (batch, features) and (batch, "
                                  "positions, features) are supported)")  # fmt: skip
        fields = {"in_features": linear.in_features, "out_features": linear.out_features}
        self.add_layer(node, str(node.target), [self.source(x, node)], kind="matmul", **fields)

    def pool(self, node: fx.Node, x: fx.Node, kernel: Any, stride: Any, padding: Any, dilation: Any,
             ceil_mode: bool) -> None:  # fmt: skip
        if _pair(dilation) != [1, 1] or ceil_mode:
            raise self.fail(node, "a pool with dilation or ceil_mode (unsupported)")
        fields: dict[str, Any] = {"kernel": _short(_pair(kernel))}
        if _pair(stride or kernel) != _pair(kernel):
            fields["stride"] = _short(_pair(stride))
        if _pair(padding) != [0, 0]:
            fields["padding"] = _short(_pair(padding))
        base = str(node.target) if node.op == "call_module" else "pool"
        self.add_layer(node, base, [self.source(x, node)], kind="pool", **fields)

    def adaptive(self, node: fx.Node, x: fx.Node, output_size: Any) -> None:
        size = self.shape(x)[2:]
        out = [size[i] if v is None else v for i, v in enumerate(_pair(output_size if output_size is not None else 1))]
        if out == [1, 1]:
            base = str(node.target) if node.op == "call_module" else "pool"
            self.add_layer(node, base, [self.source(x, node)], kind="pool", kernel="global")
        elif all(s % o == 0 for s, o in zip(size, out, strict=True)):
            kernel = [s // o for s, o in zip(size, out, strict=True)]
            self.pool(node, x, kernel, kernel, 0, 1, False)
        else:
            raise self.fail(node, f"an adaptive pool from {size} to {out} (sizes must divide)")


@dataclass(frozen=True)
class Traced:
    """What tracing a module gives: its network document and the layers that produce its outputs."""

    spec: dict[str, Any]
    """The network YAML document (docs/formats.md)."""
    outputs: list[str]
    """The layers whose outputs are the module's outputs (their channels cannot be pruned)."""

    def network(self) -> Network:
        """The workload model of ``spec``."""
        return parse_network(self.spec, f"<torch module {self.spec['name']}>")


def trace(module: nn.Module, input_shape: tuple[int, ...], name: str | None = None) -> Traced:
    """Trace ``module`` on one sample of ``input_shape``; an unsupported op is an InputError."""
    name = name or type(module).__name__.lower()
    where = f"<torch module {name}>"
    try:
        graph = fx.symbolic_trace(module)
    except Exception as exc:  # fx raises many kinds of errors for code it cannot trace
        raise InputError([_one_line(f"{where}: cannot trace with torch.fx: {type(exc).__name__}: {exc}")]) from None
    training = module.training
    module.eval()  # shape propagation runs the module: keep BatchNorm statistics as they are
    try:  # ShapeProp prints the traceback of a failing node before it raises: keep it from the user
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(graph).propagate(torch.zeros(1, *input_shape))
    except Exception as exc:
        node = next((n.name for n in graph.graph.nodes if n.format_node() in str(exc)), None)
        at = f" at node {node!r}" if node else ""
        cause = exc.__cause__ or exc
        raise InputError([_one_line(f"{where}: fails on an input of shape {list(input_shape)}{at}: {cause}")]) from None
    finally:
        module.train(training)
    mapper = _Mapper(graph, where)
    mapper.run()
    if not mapper.layers:
        raise InputError([f"{where}: no layer the program can map"])
    channels, height, width = mapper.input_shape  # type: ignore[misc]
    spec = {"name": name, "input": {"channels": channels, "height": height, "width": width}, "layers": mapper.layers}
    return Traced(spec, mapper.outputs)


def _one_line(text: str) -> str:
    return text.splitlines()[0] if text else text


def network_from_torch(module: nn.Module, input_shape: tuple[int, ...], name: str | None = None) -> Network:
    """The workload model of ``module`` (see the module docstring); an unsupported op is an InputError."""
    return trace(module, input_shape, name).network()
