"""ONNX models in: an ONNX graph mapped onto the network format, node by node.

The model is read with the ``onnx`` package and its shapes found by ONNX shape inference.
Each node becomes a layer of the network YAML format (docs/formats.md), and the document
goes through the same loader as a file, so ``solve MODEL.onnx`` solves exactly what
``python -m dse_milp import MODEL.onnx`` writes:

- ``Conv`` (2-D; groups, strides, pads) becomes ``conv2d``; a dilation other than 1 is an
  error. Asymmetric pads (``auto_pad`` SAME, or a TensorFlow export's stride-2 convs) take
  the symmetric padding, of either side, that gives ONNX's output size; there is none, an
  error;
- ``Gemm``, and ``MatMul`` by a constant, become ``matmul`` (batched: one row per position,
  ``(batch, positions, features)``); ``MatMul`` of two computed tensors (attention's
  ``Q·Kᵀ`` and ``P·V``) becomes a ``matmul`` whose weights are the second tensor
  (``weight_from``), one head per leading axis after the batch;
- ``MaxPool``, ``AveragePool`` become ``pool``; ``GlobalAveragePool``, ``GlobalMaxPool`` and
  ``ReduceMean`` over both spatial axes a global pool;
- ``Add`` of two computed tensors of the same shape becomes ``add``;
- ``Flatten``, ``Reshape``, ``Transpose``, ``Squeeze`` and ``Unsqueeze`` pass the tensor on
  unchanged (a matmul reads it flattened, or per position);
- ``BatchNormalization``, activations (``Relu``, ``Clip``, ``Sigmoid``, ``HardSwish``,
  ``Softmax`` and the others of ``FOLDED``), ``Dropout``, ``Identity``, and arithmetic with
  a constant (a bias, a scale) are folded away: they move no tensor of their own. Biases
  are not counted, as in the YAML model.

Nodes that only compute on constants (shape arithmetic) are skipped. Any other op is an
``InputError`` naming the node and its op type. The one model input must be
``(1, channels, height, width)``, ``(1, positions, features)`` (features as channels,
positions as rows, as the bundled BERT block) or ``(1, features)``, with fixed sizes.
Precisions are the format's default (8 bits); the written YAML may change them.
"""

from __future__ import annotations

import math
import stat
from pathlib import Path
from typing import Any

from dse_milp.errors import InputError, clip, show
from dse_milp.loader import parse_network
from dse_milp.workload import NETWORK_INPUT, Network

FOLDED = frozenset({
    "BatchNormalization", "InstanceNormalization", "LayerNormalization", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu",
    "Celu", "Gelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign", "Mish", "Erf",
    "Softmax", "LogSoftmax", "Dropout", "Identity", "Cast", "Sqrt", "Neg", "Abs",
})  # fmt: skip
"""Ops that keep their input's shape and move no tensor of their own (normalisation,
activations, dropout)."""

RESHAPES = frozenset({"Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze"})
"""Ops that only rearrange a tensor: the next layer reads it as it is stored."""

SCALAR_ARITHMETIC = frozenset({"Add", "Sub", "Mul", "Div", "Pow"})
"""Element-wise ops folded when one side is a constant."""

MAX_FILE_BYTES = 2**31 - 1
"""The largest ONNX file read: a protobuf message holds at most 2 GiB (larger models keep their
weights in external data files, which are not needed: only the weights' shapes are)."""

SMALL = 64
"""Elements of a constant whose values are read (an axes list); of the others only the shape."""

NAME_LIMIT = 190
"""Characters of a layer name taken from the model (the format allows 200, a suffix included)."""


def load_onnx(path: str | Path) -> Network:
    """The workload model of the ONNX file at ``path`` (module docstring)."""
    return parse_network(onnx_spec(path), str(path))


def onnx_spec(path: str | Path) -> dict[str, Any]:
    """The network document (the YAML format) of the ONNX file at ``path``; an InputError
    names the file, the node and the op of anything it cannot map."""
    import onnx

    where = str(path)
    try:
        info = Path(path).stat()
    except OSError as exc:
        raise InputError([f"{where}: cannot read file ({exc.strerror or exc})"]) from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError([f"{where}: not a regular file"])
    if info.st_size > MAX_FILE_BYTES:
        raise InputError([f"{where}: {info.st_size:,} bytes, more than an ONNX protobuf holds ({MAX_FILE_BYTES:,})"])
    try:
        model = onnx.load(str(path), load_external_data=False)  # the weights' shapes suffice
    except Exception as exc:  # protobuf raises many kinds of errors on a damaged file
        raise InputError([f"{where}: cannot read an ONNX model ({clip(str(exc))})"]) from None
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:
        raise InputError([f"{where}: ONNX shape inference fails ({clip(str(exc))})"]) from None
    return _Mapper(model, where, Path(path).stem).run()


class _Mapper:
    """Walks the graph once, in its (topological) node order, and writes one layer per mapped node."""

    def __init__(self, model: Any, where: str, stem: str) -> None:
        from onnx import numpy_helper

        graph = model.graph
        self.graph, self.where = graph, where
        self.name = stem[:100] or "onnx_model"
        self.constants: dict[str, tuple[int, ...] | None] = {t.name: tuple(t.dims) for t in graph.initializer}
        """The shape of every constant tensor (None where only constants computed it)."""
        self.values: dict[str, Any] = {
            t.name: numpy_helper.to_array(t)
            for t in graph.initializer
            if math.prod(t.dims) <= SMALL and not t.external_data
        }
        """The values of small constants (a ReduceMean's axes)."""
        self.shapes: dict[str, list[int | str]] = {}
        for info in (*graph.input, *graph.value_info, *graph.output):
            dims = info.type.tensor_type.shape.dim
            self.shapes[info.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
        self.tensor: dict[str, str] = {}
        """The layer (or the network input) whose output each computed tensor carries."""
        self.layers: list[dict[str, Any]] = []
        self.used: set[str] = {NETWORK_INPUT}
        self.input: dict[str, int] | None = None

    # -- helpers -----------------------------------------------------------------------

    def fail(self, node: Any, what: str) -> InputError:
        label = show(node.name or (node.output[0] if node.output else "?"))
        return InputError([f"{self.where}: node {label} ({show(node.op_type)}): {what}"])

    def shape(self, tensor: str, node: Any) -> list[int]:
        shape = self.shapes.get(tensor)
        if shape is None and self.constants.get(tensor) is not None:
            return list(self.constants[tensor])  # type: ignore[arg-type]
        if shape is None or not all(isinstance(d, int) and d > 0 for d in shape):
            raise self.fail(node, f"the shape of {show(tensor)} is not known ({shape}): export with fixed sizes")
        return [int(d) for d in shape]

    def computed(self, node: Any) -> list[str]:
        """The node's inputs that the network computes (not constants, not left out)."""
        return [x for x in node.input if x and x not in self.constants]

    def source(self, tensor: str, node: Any) -> str:
        if tensor not in self.tensor:
            raise self.fail(node, f"reads {show(tensor)}, which no mapped node computes")
        return self.tensor[tensor]

    def layer_name(self, node: Any) -> str:
        """The node's name (``/s1/conv1/Conv`` from torch's exporter becomes ``s1.conv1``), or
        its output's, made unique."""
        raw = node.name or node.output[0]
        parts = [p for p in raw.split("/") if p]
        if raw.startswith("/") and len(parts) > 1:
            parts = parts[:-1]  # the op's own name after the module path
        base = (".".join(parts) or node.op_type.lower())[:NAME_LIMIT]
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def add_layer(self, node: Any, inputs: list[str], kind: str, **fields: Any) -> None:
        """Write a layer; ``inputs`` only when it reads other than the layer written before it."""
        name = self.layer_name(node)
        layer: dict[str, Any] = {"name": name, "kind": kind}
        previous = self.layers[-1]["name"] if self.layers else NETWORK_INPUT
        if inputs != [previous]:
            layer["inputs"] = inputs
        self.layers.append(layer | fields)
        self.tensor[node.output[0]] = name

    def attributes(self, node: Any) -> dict[str, Any]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    # -- the walk ------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        inputs = [x for x in self.graph.input if x.name not in self.constants]
        if len(inputs) != 1:
            names = ", ".join(show(x.name) for x in inputs[:4])
            raise InputError([f"{self.where}: {len(inputs)} model inputs ({names}): exactly one is supported"])
        self.input = self.input_shape(inputs[0].name)
        self.tensor[inputs[0].name] = NETWORK_INPUT
        for node in self.graph.node:
            self.map(node)
        if not self.layers:
            raise InputError([f"{self.where}: no layer the program can map"])
        return {"name": self.name, "input": self.input, "layers": self.layers}

    def input_shape(self, tensor: str) -> dict[str, int]:
        shape = self.shapes.get(tensor, [])
        where = f"{self.where}: input {show(tensor)}"
        if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
            raise InputError([f"{where}: shape {shape} is not fixed: export with fixed sizes (batch 1)"])
        if shape[0] != 1:
            raise InputError([f"{where}: batch {shape[0]}: only batch 1 is supported"])
        match shape[1:]:
            case [channels, height, width]:
                return {"channels": channels, "height": height, "width": width}
            case [positions, features]:
                return {"channels": features, "height": positions, "width": 1}
            case [features]:
                return {"channels": features, "height": 1, "width": 1}
        raise InputError([f"{where}: shape {shape}: expected (1, C, H, W), (1, positions, features) or (1, features)"])

    def map(self, node: Any) -> None:
        op, computed = node.op_type, self.computed(node)
        if not computed:  # shape arithmetic, or a constant: no tensor of the network
            value = self.attributes(node).get("value") if op == "Constant" else None
            if value is not None:
                from onnx import numpy_helper

                self.constants[node.output[0]] = tuple(value.dims)
                self.values[node.output[0]] = numpy_helper.to_array(value)
            else:
                for out in node.output:
                    self.constants.setdefault(out, None)
            return
        if op in FOLDED or op in RESHAPES:
            self.tensor[node.output[0]] = self.source(computed[0], node)
        elif op in SCALAR_ARITHMETIC and len(computed) == 1:
            self.tensor[node.output[0]] = self.source(computed[0], node)  # a bias or a scale
        elif op == "Add" and len(computed) == 2:
            self.add(node, computed)
        elif op == "Conv":
            self.conv(node)
        elif op == "Gemm":
            self.gemm(node)
        elif op == "MatMul":
            self.matmul(node, computed)
        elif op in ("MaxPool", "AveragePool"):
            self.pool(node)
        elif op in ("GlobalAveragePool", "GlobalMaxPool"):
            self.add_layer(node, [self.source(computed[0], node)], "pool", kernel="global")
        elif op == "ReduceMean":
            self.reduce_mean(node)
        elif op in SCALAR_ARITHMETIC:
            raise self.fail(node, f"{op} of two computed tensors is not supported")
        else:
            raise self.fail(node, "unsupported op")

    def add(self, node: Any, computed: list[str]) -> None:
        shapes = [self.shape(x, node) for x in computed]
        if shapes[0] != shapes[1]:
            raise self.fail(node, f"Add of shapes {shapes[0]} and {shapes[1]} (only equal shapes are supported)")
        self.add_layer(node, [self.source(x, node) for x in computed], "add")

    def conv(self, node: Any) -> None:
        attrs = self.attributes(node)
        weight = node.input[1] if len(node.input) > 1 else ""
        w = self.constants.get(weight)
        if w is None:
            raise self.fail(node, "Conv with computed weights is not supported")
        if len(w) != 4:
            raise self.fail(node, f"a {len(w) - 2}-D convolution (only 2-D is supported)")
        if any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise self.fail(node, f"dilations {list(attrs['dilations'])} (only 1 is supported)")
        groups = int(attrs.get("group", 1))
        kernel, stride = [int(w[2]), int(w[3])], [int(s) for s in attrs.get("strides", [1, 1])]
        x = node.input[0]
        padding = self.padding(node, attrs, x, kernel, stride)
        fields: dict[str, Any] = {"in_channels": int(w[1]) * groups, "out_channels": int(w[0])}
        fields["kernel"] = _short(kernel)
        if stride != [1, 1]:
            fields["stride"] = _short(stride)
        if padding != [0, 0]:
            fields["padding"] = _short(padding)
        if groups != 1:
            fields["groups"] = groups
        self.add_layer(node, [self.source(x, node)], "conv2d", **fields)

    def padding(self, node: Any, attrs: dict[str, Any], x: str, kernel: list[int], stride: list[int]) -> list[int]:
        """Symmetric padding per axis that gives ONNX's output size."""
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
        if auto == "NOTSET" and pads[0] == pads[2] and pads[1] == pads[3]:
            return [pads[0], pads[1]]
        size, out = self.shape(x, node)[2:], self.shape(node.output[0], node)[2:]
        chosen = []
        for axis in range(2):
            options = (pads[axis], pads[axis + 2]) if auto == "NOTSET" else range(kernel[axis])
            fit = [p for p in options if (size[axis] + 2 * p - kernel[axis]) // stride[axis] + 1 == out[axis]]
            if not fit:
                raise self.fail(node, f"pads {pads} (auto_pad {auto}): no symmetric padding gives the output {out}")
            chosen.append(min(fit))
        return chosen

    def gemm(self, node: Any) -> None:
        attrs = self.attributes(node)
        a, b = node.input[0], node.input[1]
        shape = self.constants.get(b)
        if attrs.get("transA", 0) or shape is None or len(shape) != 2:
            raise self.fail(node, "Gemm with a transposed or computed first operand, or computed weights, "
                                  "is not supported")  # fmt: skip
        rows, cols = shape
        in_features, out_features = (cols, rows) if attrs.get("transB", 0) else (rows, cols)
        self.matmul_layer(node, a, int(in_features), int(out_features))

    def matmul(self, node: Any, computed: list[str]) -> None:
        a, b = node.input[0], node.input[1]
        if a not in computed:
            raise self.fail(node, "MatMul of a constant by a computed tensor is not supported")
        if b not in computed:
            w = self.constants[b]
            if w is None or len(w) != 2:
                raise self.fail(node, f"MatMul by constant weights of shape {None if w is None else list(w)}")
            self.matmul_layer(node, a, int(w[0]), int(w[1]))
            return
        x, y = self.shape(a, node), self.shape(b, node)
        if len(x) != len(y) or len(x) < 3 or x[:-2] != y[:-2] or x[-1] != y[-2]:
            raise self.fail(node, f"MatMul of shapes {x} and {y} (attention: (1, heads, n, d) by (1, heads, d, k))")
        heads = math.prod(x[1:-2])
        self.matmul_layer(node, a, heads * x[-1], heads * y[-1], heads, self.source(b, node))

    def matmul_layer(self, node: Any, a: str, in_features: int, out_features: int, heads: int = 1,
                     weight_from: str | None = None) -> None:  # fmt: skip
        fields: dict[str, Any] = {"in_features": in_features, "out_features": out_features}
        if heads != 1:
            fields["heads"] = heads
        if weight_from is not None:
            fields["weight_from"] = weight_from
        self.add_layer(node, [self.source(a, node)], "matmul", **fields)

    def pool(self, node: Any) -> None:
        attrs = self.attributes(node)
        if attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise self.fail(node, "a pool with ceil_mode or dilations is not supported")
        kernel = [int(k) for k in attrs["kernel_shape"]]
        if len(kernel) != 2:
            raise self.fail(node, f"a {len(kernel)}-D pool (only 2-D is supported)")
        stride = [int(s) for s in attrs.get("strides", [1, 1])]
        x = node.input[0]
        padding = self.padding(node, attrs, x, kernel, stride)
        fields: dict[str, Any] = {"kernel": _short(kernel)}
        if stride != kernel:
            fields["stride"] = _short(stride)
        if padding != [0, 0]:
            fields["padding"] = _short(padding)
        self.add_layer(node, [self.source(x, node)], "pool", **fields)

    def reduce_mean(self, node: Any) -> None:
        attrs = self.attributes(node)
        axes = attrs.get("axes")
        if axes is None and len(node.input) > 1:
            axes = self.values.get(node.input[1])
        rank = len(self.shape(node.input[0], node))
        if rank != 4 or axes is None or sorted(int(a) % 4 for a in axes) != [2, 3]:
            raise self.fail(node, f"ReduceMean over axes {None if axes is None else list(axes)} (only the two "
                                  "spatial axes of (1, C, H, W) are supported)")  # fmt: skip
        self.add_layer(node, [self.source(node.input[0], node)], "pool", kernel="global")


def _short(value: list[int]) -> int | list[int]:
    return value[0] if value[0] == value[1] else value
