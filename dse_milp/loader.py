"""Reading and validating the YAML inputs (formats in docs/formats.md).

Two steps, as in ZigZag's parser: a *schema* (pydantic models mirroring the
YAML, which check each field on its own) and a *factory* that checks how the
fields fit together (names, producers, shapes) and builds the frozen domain
objects. Both steps collect every problem, each with its path and value, and
raise one ``InputError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from pydantic import ValidationError as PydanticError

from dse_milp.accelerator import Accelerator, Accumulators, Energy, free_split, separate_buffers, unified_buffer
from dse_milp.errors import InputError, show
from dse_milp.halo import NAMES, Halo, halo_modes
from dse_milp.workload import NETWORK_INPUT, Layer, LayerKind, Network, Precision, Shape
from dse_milp.yaml_input import read_yaml

# --------------------------------------------------------------------------- schema


MAX_EXTENT = 1 << 20
"""The largest channel count, feature count, height, width, kernel, stride or padding."""
MAX_OUTPUT_EXTENT = 4096
"""The largest output height or width of a layer (or row count of a matmul): candidate
generation grows with it (about 1 s per distinct layer shape at the limit)."""
MAX_MACS = 1 << 40
"""The most MACs one layer may hold (1.1e12), which keeps every traffic figure exact."""
MAX_BYTES = 1 << 40
"""The largest buffer size, 1 TiB."""
MAX_BANKS = 64
"""The most banks a free split may have: the program grows with the count, and small buffers
in many small banks make it hard (ResNet-8 at 28x28 in 4 KiB: 6.6 s with 64 banks, 31 s with
128, 45 s in 2 KiB with 128)."""


def default_bank(total: int) -> int:
    """1 KiB, or the least power of two that splits ``total`` into at most ``MAX_BANKS`` banks."""
    bank = 1024
    while total > bank * MAX_BANKS:
        bank *= 2
    return bank


def _pair(minimum: int, also: str | None = None) -> BeforeValidator:
    """An int, or a list of two ints, each in [minimum, MAX_EXTENT]; always returned as a
    pair. ``also`` names a word accepted as it is."""

    def check(value: Any) -> tuple[int, int] | str:
        if also is not None and value == also:
            return value
        items = value if isinstance(value, list) else [value]
        if len(items) in (1, 2) and all(type(v) is int and minimum <= v <= MAX_EXTENT for v in items):
            return (items[0], items[-1])
        alternative = f", {also!r}," if also else ""
        raise ValueError(
            f"must be an integer >= {minimum} and <= {MAX_EXTENT}{alternative} or a list of two, got {show(value)}"
        )

    return BeforeValidator(check)


_UNITS = {"b": 1, "kib": 1024, "kb": 1024, "mib": 1024**2, "mb": 1024**2, "gib": 1024**3, "gb": 1024**3}


def parse_size(value: Any) -> int:
    """Bytes: a positive integer, or a string such as '64 KiB' (or a digit string), at most
    ``MAX_BYTES``."""
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 20:
        value = int(value)
    return _size(value)


def _size(value: Any) -> int:
    """Bytes: a positive integer, or a string such as '64 KiB', at most ``MAX_BYTES``."""
    size: Decimal | int | None = None
    if type(value) is int:
        size = value
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", value)
        if match and match.group(2).lower() in _UNITS:
            size = Decimal(match.group(1)) * _UNITS[match.group(2).lower()]
    if size is not None and 0 < size <= MAX_BYTES and size == int(size):
        return int(size)
    if size is not None and size > MAX_BYTES:
        raise ValueError(f"must be at most 1 TiB ({MAX_BYTES:,} bytes), got {show(value)}")
    raise ValueError(f"must be a positive size in bytes such as 65536 or '64 KiB', got {show(value)}")


PositiveInt = Annotated[StrictInt, Field(ge=1, le=MAX_EXTENT)]
Bits = Annotated[StrictInt, Field(ge=1, le=64)]
Pair = Annotated[tuple[int, int], _pair(1)]
PoolKernel = Annotated[tuple[int, int] | Literal["global"], _pair(1, also="global")]
Padding = Annotated[tuple[int, int], _pair(0)]
Size = Annotated[int, BeforeValidator(_size)]
OptionalSize = Annotated[int | None, BeforeValidator(_size)]
"""A size that may be left out, but not given as null (the default is not validated)."""
Name = Annotated[StrictStr, Field(min_length=1, max_length=200)]
MAX_BURST = 4096
"""The largest DRAM burst: a DRAM page."""


def burst_bytes(value: Any) -> int:
    """A DRAM burst in bytes (an integer, or a size such as "64 B"), at most a DRAM page."""
    size = _size(value)
    if size > MAX_BURST:
        raise ValueError(f"must be at most {MAX_BURST} bytes (a DRAM page), got {show(value)}")
    return size


Burst = Annotated[int, BeforeValidator(burst_bytes)]


def _finite(low: float, high: float, strict_low: bool = False) -> Any:
    """A finite number in [low, high] (or (low, high])."""
    if strict_low:
        return Annotated[StrictFloat, Field(gt=low, le=high, allow_inf_nan=False)]
    return Annotated[StrictFloat, Field(ge=low, le=high, allow_inf_nan=False)]


Energy_pJ = _finite(0.0, 1e6)
Bandwidth = _finite(1e-3, 1e6)
Megahertz = _finite(0.0, 1e6, strict_low=True)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrecisionSpec(_Spec):
    input: Bits | None = None
    weight: Bits | None = None
    output: Bits | None = None
    psum: Bits | None = None


class ShapeSpec(_Spec):
    channels: PositiveInt
    height: PositiveInt
    width: PositiveInt


class _LayerSpec(_Spec):
    name: Name
    inputs: list[Name] | None = None
    precision: PrecisionSpec | None = None


class Conv2dSpec(_LayerSpec):
    kind: Literal["conv2d"]
    in_channels: PositiveInt
    out_channels: PositiveInt
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Padding = (0, 0)
    groups: PositiveInt = 1


class MatmulSpec(_LayerSpec):
    kind: Literal["matmul"]
    in_features: PositiveInt
    out_features: PositiveInt
    heads: PositiveInt = 1
    weight_from: Name | None = None


class PoolSpec(_LayerSpec):
    kind: Literal["pool"]
    kernel: PoolKernel
    stride: Pair | None = None
    padding: Padding = (0, 0)


class AddSpec(_LayerSpec):
    kind: Literal["add"]
    inputs: Annotated[list[Name], Field(min_length=2)]


LayerSpec = Annotated[Conv2dSpec | MatmulSpec | PoolSpec | AddSpec, Field(discriminator="kind")]


class NetworkSpec(_Spec):
    name: Name
    input: ShapeSpec
    precision: PrecisionSpec | None = None
    layers: Annotated[list[LayerSpec], Field(min_length=1)]


class BufferSpec(_Spec):
    unified: OptionalSize = None
    input: OptionalSize = None
    weight: OptionalSize = None
    output: OptionalSize = None
    total: OptionalSize = None
    split: Literal["free"] | None = None
    bank: OptionalSize = None


class EnergySpec(_Spec):
    dram_byte: Energy_pJ
    sram_byte: Energy_pJ
    mac: Energy_pJ


class DramSpec(_Spec):
    burst: Burst = 1


def _halo(value: Any) -> tuple[Halo, ...]:
    """Halo modes: one name, or a list of them (``dse_milp.halo.halo_modes``)."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names) or len(names) > 8:
        raise ValueError(f"must be a halo mode or a list of them ({NAMES}), got {show(value)}")
    return halo_modes(names)


HaloModes = Annotated[tuple[Halo, ...], BeforeValidator(_halo)]


class AcceleratorSpec(_Spec):
    name: Name
    buffer: BufferSpec
    double_buffering: StrictBool = False
    accumulators: Literal["array", "buffer"] = "array"
    levels: Literal["per-operand", "innermost"] = "per-operand"
    fused_footprint: Literal["sum", "liveness"] = "sum"
    halo: HaloModes = (Halo.RECOMPUTE,)
    keep_tensors: StrictBool = False
    dram_bandwidth: Bandwidth
    dram: DramSpec = DramSpec()
    clock_mhz: Megahertz
    macs: Annotated[StrictInt, Field(ge=1, le=1 << 24)]
    energy_pj: EnergySpec


class SuiteEntrySpec(_Spec):
    name: Name
    network: Name
    accelerator: Name


class SuiteSpec(_Spec):
    instances: Annotated[list[SuiteEntrySpec], Field(min_length=1)]


# --------------------------------------------------------------------------- messages

_M = TypeVar("_M", bound=BaseModel)


def _path(loc: tuple[str | int, ...]) -> str:
    """``layers[3].kernel``; a key that is not a plain printable name is quoted."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        key = str(part) if str(part).isprintable() and len(str(part)) <= 60 else show(part)
        text += f".{key}" if text else key
    return text or "(top level)"


_LAYER_TAGS = {"conv2d", "matmul", "pool", "add"}


def _message(error: dict[str, Any]) -> tuple[tuple[str | int, ...], str]:
    """The location (tagged-union and union-member names dropped) and a plain message."""
    loc = tuple(
        part
        for i, part in enumerate(error["loc"])
        if not (isinstance(part, str) and (part in _LAYER_TAGS and i > 0 and isinstance(error["loc"][i - 1], int)))
        and not (isinstance(part, str) and ("[" in part or part.startswith("literal")))
    )
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    messages = {
        "missing": "missing required field",
        "extra_forbidden": "unknown field",
        "greater_than_equal": f"must be >= {ctx.get('ge')}, got {show(value)}",
        "greater_than": f"must be > {ctx.get('gt')}, got {show(value)}",
        "less_than_equal": f"must be <= {ctx.get('le')}, got {show(value)}",
        "int_type": f"must be an integer, got {show(value)}",
        "float_type": f"must be a number, got {show(value)}",
        "bool_type": f"must be true or false, got {show(value)}",
        "string_type": f"must be a string, got {show(value)}",
        "list_type": f"must be a list, got {show(value)}",
        "model_type": f"must be a mapping, got {show(value)}",
        "model_attributes_type": f"must be a mapping, got {show(value)}",
        "dict_type": f"must be a mapping, got {show(value)}",
        "too_short": f"must have at least {ctx.get('min_length')} item(s), got {show(value)}",
        "string_too_short": "must not be empty",
        "string_too_long": f"must be at most {ctx.get('max_length')} characters, got {show(value)}",
        "finite_number": f"must be a finite number, got {show(value)}",
        "literal_error": f"must be {ctx.get('expected')}, got {show(value)}",
        "union_tag_invalid": f"unknown layer kind {show(ctx.get('tag'))} (expected one of {ctx.get('expected_tags')})",
        "union_tag_not_found": "missing the field 'kind'",
    }
    if kind == "value_error":
        return loc, str(ctx.get("error", error["msg"]))
    return loc, messages.get(kind, f"{error['msg']}, got {show(value)}")


def _validate(model: type[_M], data: Any, source: str) -> _M:
    try:
        return model.model_validate(data)
    except PydanticError as exc:
        problems = []
        for error in exc.errors():
            loc, text = _message(error)
            line = f"{source}: {_path(loc)}: {text}"
            if line not in problems:
                problems.append(line)
        raise InputError(problems) from None


# --------------------------------------------------------------------------- factories


def _precision(base: Precision, spec: PrecisionSpec | None) -> Precision:
    if spec is None:
        return base
    return replace(base, **{k: v for k, v in spec.model_dump().items() if v is not None})


def _out_extent(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


@dataclass
class _NetworkFactory:
    """Builds layers in order, collecting every problem found on the way."""

    source: str
    spec: NetworkSpec
    problems: list[str]

    def error(self, index: int, field: str, text: str) -> None:
        self.problems.append(f"{self.source}: layers[{index}].{field}: {text}")

    def build(self) -> Network:
        spec = self.spec
        base = _precision(Precision(), spec.precision)
        shapes: dict[str, Shape] = {NETWORK_INPUT: Shape(spec.input.channels, spec.input.height, spec.input.width)}
        layers: list[Layer] = []
        failed: set[str] = set()  # layers whose output shape is unknown; their readers are not judged
        previous = NETWORK_INPUT
        for index, layer_spec in enumerate(spec.layers):
            name = layer_spec.name
            inputs = tuple(layer_spec.inputs) if layer_spec.inputs is not None else (previous,)
            previous = name  # the next layer's default input
            if name in shapes or name in failed:
                what = "is reserved for the network input" if name == NETWORK_INPUT else "is used by an earlier layer"
                self.error(index, "name", f"{name!r} {what}")
                previous = f"{name}#{index}"
                failed.add(previous)
                continue
            blocked = any(i in failed for i in (*inputs, getattr(layer_spec, "weight_from", None)))
            failed.add(name)  # until its output shape is known
            if blocked:
                continue
            unknown = [i for i in inputs if i not in shapes]
            for producer in unknown:
                self.error(index, "inputs", f"{producer!r} is not the network input or an earlier layer")
            if unknown:
                continue
            precision = _precision(base, layer_spec.precision)
            layer, shape = self.make_layer(index, layer_spec, inputs, [shapes[i] for i in inputs], precision, shapes)
            if shape is not None:
                failed.discard(name)
                shapes[name] = shape
            if layer is not None and self.within_limits(index, layer):
                layers.append(layer)
        if self.problems:
            raise InputError(self.problems)
        return Network(
            name=spec.name,
            input_shape=shapes.pop(NETWORK_INPUT),
            layers=tuple(layers),
            output_shapes=shapes,
        )

    def within_limits(self, index: int, layer: Layer) -> bool:
        """Whether the layer is small enough to model exactly and quickly (else a problem)."""
        checks = (
            ("output height" if layer.kind is not LayerKind.MATMUL else "row count", layer.r, MAX_OUTPUT_EXTENT),
            ("output width", layer.c, MAX_OUTPUT_EXTENT),
            ("MAC count", layer.macs, MAX_MACS),
            ("input size (elements)", layer.n * layer.h * layer.w, MAX_MACS),
        )
        over = [
            f"its {what} {value:,} is more than the limit of {limit:,}"
            for what, value, limit in checks
            if value > limit
        ]
        if over:
            self.problems.append(
                f"{self.source}: layers[{index}]: layer {layer.name!r} is too large: {'; '.join(over)}"
            )
        return not over

    def make_layer(
        self,
        index: int,
        spec: Conv2dSpec | MatmulSpec | PoolSpec | AddSpec,
        inputs: tuple[str, ...],
        in_shapes: list[Shape],
        precision: Precision,
        shapes: dict[str, Shape],
    ) -> tuple[Layer | None, Shape | None]:
        """The layer (None if it has a problem) and its output shape (None if unknown).

        A layer with a problem whose output shape is still clear passes that shape
        on, so the layers reading it are checked too (and not blamed for it).
        """
        if not isinstance(spec, AddSpec) and len(inputs) != 1:
            self.error(index, "inputs", f"a {spec.kind} layer reads exactly one tensor, got {list(inputs)}")
            return None, None
        x = in_shapes[0]
        common = {"name": spec.name, "inputs": inputs, "precision": precision}
        match spec:
            case Conv2dSpec():
                return self.conv(index, spec, x, inputs[0], common)
            case MatmulSpec():
                return self.matmul(index, spec, x, inputs[0], shapes, common)
            case PoolSpec():
                kernel = (x.height, x.width) if spec.kernel == "global" else spec.kernel
                stride = spec.stride or kernel
                out = self.spatial(index, x, kernel, stride, spec.padding)
                if out is None:
                    return None, None
                layer = Layer(
                    kind=LayerKind.POOL, m=x.channels, n=x.channels, groups=x.channels,
                    r=out.height, c=out.width, h=x.height, w=x.width,
                    kh=kernel[0], kw=kernel[1], sh=stride[0], sw=stride[1],
                    ph=spec.padding[0], pw=spec.padding[1], **common,
                )  # fmt: skip
                return layer, Shape(x.channels, out.height, out.width)
            case AddSpec():
                for producer, shape in zip(inputs[1:], in_shapes[1:], strict=True):
                    if shape != x:
                        self.error(
                            index, "inputs",
                            f"shape mismatch: {inputs[0]!r} is {x} but {producer!r} is {shape}",
                        )  # fmt: skip
                        return None, x
                layer = Layer(
                    kind=LayerKind.ADD, m=x.channels, n=x.channels, groups=x.channels,
                    r=x.height, c=x.width, h=x.height, w=x.width, **common,
                )  # fmt: skip
                return layer, x
        raise AssertionError(f"unhandled layer spec {spec!r}")

    def spatial(
        self, index: int, x: Shape, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]
    ) -> Shape | None:
        rows = _out_extent(x.height, kernel[0], stride[0], padding[0])
        cols = _out_extent(x.width, kernel[1], stride[1], padding[1])
        if rows < 1 or cols < 1:
            self.error(
                index, "kernel",
                f"{list(kernel)} is larger than the padded input "
                f"{x.height + 2 * padding[0]}x{x.width + 2 * padding[1]}",
            )  # fmt: skip
            return None
        if padding[0] >= kernel[0] or padding[1] >= kernel[1]:
            self.error(index, "padding", f"{list(padding)} must be smaller than the kernel {list(kernel)}")
            return None
        return Shape(0, rows, cols)

    def conv(
        self, index: int, spec: Conv2dSpec, x: Shape, producer: str, common: dict
    ) -> tuple[Layer | None, Shape | None]:
        ok = True
        if spec.in_channels != x.channels:
            self.error(
                index, "in_channels",
                f"{spec.in_channels} does not match the {x.channels} channels of {producer!r} ({x})",
            )  # fmt: skip
            ok = False
        for field, value in (("in_channels", spec.in_channels), ("out_channels", spec.out_channels)):
            if value % spec.groups:
                self.error(index, "groups", f"{spec.groups} does not divide {field} {value}")
                ok = False
        out = self.spatial(index, x, spec.kernel, spec.stride, spec.padding)
        if out is None:
            return None, None
        shape = Shape(spec.out_channels, out.height, out.width)
        if not ok:
            return None, shape
        layer = Layer(
            kind=LayerKind.CONV2D, m=spec.out_channels, n=spec.in_channels, groups=spec.groups,
            r=out.height, c=out.width, h=x.height, w=x.width,
            kh=spec.kernel[0], kw=spec.kernel[1], sh=spec.stride[0], sw=spec.stride[1],
            ph=spec.padding[0], pw=spec.padding[1], **common,
        )  # fmt: skip
        return layer, shape

    def matmul(
        self, index: int, spec: MatmulSpec, x: Shape, producer: str, shapes: dict[str, Shape], common: dict
    ) -> tuple[Layer | None, Shape | None]:
        if spec.in_features == x.channels:
            rows, out_shape = x.height * x.width, Shape(spec.out_features, x.height, x.width)
        elif spec.in_features == x.elements:
            rows, out_shape = 1, Shape(spec.out_features, 1, 1)
        else:
            self.error(
                index, "in_features",
                f"{spec.in_features} matches neither the channels ({x.channels}) nor the flattened size "
                f"({x.elements}) of {producer!r} ({x})",
            )  # fmt: skip
            return None, None
        ok = True
        for field, value in (("in_features", spec.in_features), ("out_features", spec.out_features)):
            if value % spec.heads:
                self.error(index, "heads", f"{spec.heads} does not divide {field} {value}")
                ok = False
        if spec.weight_from is not None:
            if spec.weight_from not in shapes or spec.weight_from == NETWORK_INPUT:
                self.error(index, "weight_from", f"{spec.weight_from!r} is not an earlier layer")
                ok = False
            elif ok:
                needed = spec.out_features * spec.in_features // spec.heads
                if shapes[spec.weight_from].elements != needed:
                    self.error(
                        index, "weight_from",
                        f"{spec.weight_from!r} ({shapes[spec.weight_from]}) holds "
                        f"{shapes[spec.weight_from].elements} elements, but {spec.heads} head(s) of "
                        f"{spec.out_features // spec.heads}x{spec.in_features // spec.heads} need {needed}",
                    )  # fmt: skip
                    ok = False
        if not ok:
            return None, out_shape
        layer = Layer(
            kind=LayerKind.MATMUL, m=spec.out_features, n=spec.in_features, groups=spec.heads,
            r=rows, c=1, h=rows, w=1, weight_from=spec.weight_from, **common,
        )  # fmt: skip
        return layer, out_shape


def parse_network(data: Any, source: str = "<network>") -> Network:
    """Validate a parsed network document and build the Network."""
    spec = _validate(NetworkSpec, data, source)
    return _NetworkFactory(source, spec, []).build()


def parse_accelerator(data: Any, source: str = "<accelerator>") -> Accelerator:
    """Validate a parsed accelerator document and build the Accelerator."""
    spec = _validate(AcceleratorSpec, data, source)
    b = spec.buffer
    separate = (b.input, b.weight, b.output)
    given = sorted(k for k, v in b.model_dump().items() if v is not None)
    split = None
    if given == ["unified"]:
        buffers = unified_buffer(b.unified)  # type: ignore[arg-type]
    elif given == ["input", "output", "weight"]:
        buffers = separate_buffers(*separate)  # type: ignore[arg-type]
    elif set(given) in ({"split", "total"}, {"bank", "split", "total"}):
        bank = b.bank or default_bank(b.total)  # type: ignore[arg-type]
        if bank > b.total or b.total % bank:  # type: ignore[operator]
            field = "bank" if b.bank else "total"
            default = "" if b.bank else " (the default bank; give one with 'bank')"
            raise InputError([f"{source}: buffer.{field}: {bank} bytes{default} must divide the total {b.total} bytes"])
        if b.total // bank > MAX_BANKS:  # type: ignore[operator]
            raise InputError(
                [
                    f"{source}: buffer.bank: {bank:,} makes {b.total // bank:,} banks of the "  # type: ignore[operator]
                    f"{b.total:,}-byte total; the limit is {MAX_BANKS} banks (a bank of at least "
                    f"{-(-b.total // MAX_BANKS):,} bytes)"  # type: ignore[operator]
                ]
            )
        buffers, split = free_split(b.total, bank)  # type: ignore[arg-type]
    else:
        raise InputError(
            [
                f"{source}: buffer: give 'unified' alone, all of 'input', 'weight', 'output', or 'total' with "
                f"'split: free' (and optionally 'bank'), got {given}"
            ]
        )
    return Accelerator(
        name=spec.name,
        buffers=buffers,
        double_buffering=spec.double_buffering,
        dram_bandwidth=spec.dram_bandwidth,
        clock_mhz=spec.clock_mhz,
        macs=spec.macs,
        energy=Energy(**spec.energy_pj.model_dump()),
        split=split,
        accumulators=Accumulators(spec.accumulators),
        operand_levels=spec.levels == "per-operand",
        burst_bytes=spec.dram.burst,
        fused_liveness=spec.fused_footprint == "liveness",
        halo=spec.halo,
        keep_tensors=spec.keep_tensors,
    )


def load_network(path: str | Path) -> Network:
    """The network of a YAML file, or of an ONNX model (``.onnx``, ``dse_milp.onnx_import``)."""
    if str(path).lower().endswith(".onnx"):
        from dse_milp.onnx_import import load_onnx

        return load_onnx(path)
    return parse_network(read_yaml(path), str(path))


def load_accelerator(path: str | Path) -> Accelerator:
    return parse_accelerator(read_yaml(path), str(path))


@dataclass(frozen=True)
class SuiteEntry:
    name: str
    network: Path
    accelerator: Path


def load_suite(path: str | Path) -> list[SuiteEntry]:
    """The network x accelerator pairs of a suite file; paths resolved against it."""
    path = Path(path)
    spec = _validate(SuiteSpec, read_yaml(path), str(path))
    entries = [SuiteEntry(e.name, path.parent / e.network, path.parent / e.accelerator) for e in spec.instances]
    first: dict[str, int] = {}
    problems = [
        f"{path}: instances[{i}].name: {entry.name!r} is used by instances[{first[entry.name]}] too"
        for i, entry in enumerate(entries)
        if first.setdefault(entry.name, i) != i
    ]
    problems += [
        f"{path}: instances[{i}].{field}: {str(target)!r} does not exist"
        for i, entry in enumerate(entries)
        for field, target in (("network", entry.network), ("accelerator", entry.accelerator))
        if not target.is_file()
    ]
    if problems:
        raise InputError(problems)
    return entries
