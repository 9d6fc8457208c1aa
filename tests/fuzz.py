"""Black-box fuzzing of the command line (``python -m dse_milp solve|sweep|bench``).

Case ``index`` of seed ``seed`` is always the same case (:func:`generate`): mutated copies of the
bundled YAML files (parsed and mutated, or mutated as raw text and bytes), odd paths, and bad or
extreme option values, combined at random. Every case is held to one contract (:func:`check`):

- the exit code is 0 (solved), 2 (bad input), 3 (infeasible) or 4 (time limit, no solution);
- "Traceback" appears in neither stdout nor stderr, and no exception escapes ``main``;
- on exit 2, stderr is non-empty and every line starts with ``error:`` (one line per problem);
- the run ends within the case's time bound.

Cases run in-process, ``dse_milp.cli.main(argv)`` with stdout and stderr redirected to UTF-8
streams that are not terminals (a second of import time per case would be too slow), inside
worker processes (:func:`run_tasks`) that also capture what C code writes to file descriptors 1
and 2. SIGALRM stops a case at its bound (a "hang", with the stack where it was); the parent kills
a worker whose case overruns by a further grace period (stuck in C code) and replaces a worker
that died (a "crash") or whose case was stopped. A worker's address space is limited (4 GiB), so
that an input that would exhaust memory fails as a MemoryError rather than the machine. A few
cases also run as real processes, which must end the same way. Softer findings (a Python repr or
exception name in a message, a Python warning, escapes or rich markup passed through, a slow
case) are warnings, which do not fail a batch.

``python bench/fuzz.py --seed S --case I`` reruns one case and prints everything about it.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import io
import math
import multiprocessing
import os
import random
import re
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
INSTANCES = REPO / "instances"
SUITE = INSTANCES / "suite.yaml"
PACKAGES = ("dse_milp", "formulations", "pruning")

ALLOWED_CODES = frozenset({0, 2, 3, 4})
CASE_TIMEOUT = 30.0  # seconds a case may take
KILL_GRACE = 20.0  # further seconds before a worker stuck in a case is killed
MEMORY_LIMIT_MB = 4096  # address space of a worker (and of the processes it starts)
SLOW_SECONDS = 10.0  # a case this slow is reported as a warning
DIR = "{dir}"  # stands for the case's folder in argv and in file contents

# networks and accelerators that solve in well under a second
SMALL_NETWORKS = (
    "tiny_dscnn", "tiny_fc_autoencoder", "tiny_resnet8", "fmnist_small_vgg", "fmnist_dscnn", "fmnist_resnet8",
)  # fmt: skip
SLOWER_NETWORKS = ("tiny_mobilenet_v1_025", "fmnist_mobilenet_v1_025", "bert_base_block")
SMALL_ACCELERATORS = ("npu_32k", "npu_4k", "npu_64k", "npu_128k_split", "fpga", "eyeriss")
SMALL_ENTRIES = (
    "tiny_dscnn@npu-32k", "tiny_resnet8@npu-32k", "tiny_fc_autoencoder@npu-32k",
    "tiny_dscnn@npu-128k", "tiny_fc_autoencoder@npu-128k", "tiny_resnet8@npu-128k",
)  # fmt: skip


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One command line and the files it reads; ``{dir}`` in argv or files is the case's folder."""

    seed: int
    index: int
    family: str  # the generator that made it
    argv: tuple[str, ...]
    files: tuple[tuple[str, bytes], ...] = ()  # path relative to the folder, content
    folders: tuple[str, ...] = ()  # empty folders to create
    links: tuple[tuple[str, str], ...] = ()  # symbolic links to create: name, target
    notes: tuple[str, ...] = ()  # what was mutated, for the report
    expect: frozenset[int] | None = None  # exit codes a correct tool gives, when known
    echo: str | None = None  # a name that a successful, non-quiet solve must print verbatim
    timeout: float = CASE_TIMEOUT

    @property
    def name(self) -> str:
        return f"seed {self.seed} case {self.index}" if self.index >= 0 else f"special case {self.family}"

    @property
    def repro(self) -> str:
        if self.index < 0:
            return f"python bench/fuzz.py --special {self.family}"
        return f"python bench/fuzz.py --seed {self.seed} --case {self.index}"

    def argv_in(self, folder: Path) -> list[str]:
        return [arg.replace(DIR, str(folder)) for arg in self.argv]

    def materialise(self, folder: Path) -> None:
        """Create the case's folder, files and empty folders."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.folders:
            (folder / name).mkdir(parents=True, exist_ok=True)
        for name, content in self.files:
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.replace(DIR.encode(), str(folder).encode()))
        for name, target in self.links:
            with contextlib.suppress(FileExistsError):
                (folder / name).symlink_to(target)

    def command(self, folder: Path) -> str:
        return f"cd {shlex.quote(str(folder))} && python -m dse_milp {shlex.join(self.argv_in(folder))}"


def batch(seed: int, count: int, start: int = 0) -> list[Case]:
    return [generate(seed, index) for index in range(start, start + count)]


def generate(seed: int, index: int) -> Case:
    """Case ``index`` of ``seed``: the same case on every call and in every process."""
    rng = random.Random(f"dse_milp fuzz {seed} {index}")
    family = rng.choices(list(FAMILIES), weights=[w for _, w in FAMILIES.values()])[0]
    builder = _Builder(rng)
    argv = FAMILIES[family][0](builder)
    return Case(
        seed=seed,
        index=index,
        family=family,
        argv=tuple(argv),
        files=tuple(sorted(builder.files.items())),
        folders=tuple(builder.folders),
        links=tuple(sorted(builder.links.items())),
        notes=tuple(builder.notes),
        expect=builder.expect,
        echo=builder.echo,
    )


def special_cases() -> dict[str, Case]:
    """Cases outside the random stream: the one ``bench --quick`` run (tens of seconds)."""
    quick = Case(
        seed=0,
        index=-1,
        family="bench-quick",
        argv=("bench", "--quick", "--jobs", "1", "--out", "/proc/x"),
        notes=("bench --quick with an output folder that cannot be created",),
        timeout=240.0,
    )
    return {quick.family: quick}


class _Builder:
    """Collects a case's files, notes and expectations while a family generator runs."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.files: dict[str, bytes] = {}
        self.folders: list[str] = []
        self.links: dict[str, str] = {}
        self.notes: list[str] = []
        self.expect: frozenset[int] | None = None
        self.echo: str | None = None

    def pick(self, options: Sequence[Any]) -> Any:
        return options[self.rng.randrange(len(options))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def file(self, name: str, content: str | bytes) -> str:
        self.files[name] = content.encode("utf-8") if isinstance(content, str) else content
        return f"{DIR}/{name}"

    def note(self, text: str) -> None:
        self.notes.append(text)


# --------------------------------------------------------------------------- the bundled inputs


def network_path(name: str) -> Path:
    return INSTANCES / "networks" / f"{name}.yaml"


def accelerator_path(name: str) -> Path:
    return INSTANCES / "accelerators" / f"{name}.yaml"


@cache
def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _parsed(path: Path) -> Any:
    return copy.deepcopy(_parsed_once(path))


@cache
def _parsed_once(path: Path) -> Any:
    return yaml.safe_load(_text(path))


def _small_suite() -> dict[str, Any]:
    """The bundled suite's small entries with absolute paths."""
    entries = []
    for entry in _parsed(SUITE)["instances"]:
        if entry["name"] in SMALL_ENTRIES:
            entries.append(
                {
                    "name": entry["name"],
                    "network": str(INSTANCES / entry["network"]),
                    "accelerator": str(INSTANCES / entry["accelerator"]),
                }
            )
    return {"instances": entries}


def _pick_network(b: _Builder) -> str:
    return b.pick(SMALL_NETWORKS) if b.chance(0.9) else b.pick(SLOWER_NETWORKS)


def _dump(b: _Builder, doc: Any) -> str:
    return yaml.safe_dump(
        doc,
        sort_keys=False,
        allow_unicode=b.chance(0.5),
        default_flow_style=b.pick([False, None]),
        width=b.pick([80, 1_000_000]),
    )


# --------------------------------------------------------------------------- values

HUGE_INTS = (10**30, 2**62, 2**63, 2**64, 2**31, 2**31 - 1, -(2**31), -(10**30))
MARKUP = ("[/]", "[bold red]x[/]", ":x:", "[link=file:///etc/passwd]x[/link]", "[red]", "\\[x]")
WEIRD_STRINGS = (
    "", " ", "abc", "12", "1.5", "x" * 10_000, "a\nb", "a\rb", "é", "\u202etxt", "\x1b[31mred", "\t", "null", "~",
    *MARKUP,
)  # fmt: skip
EXTREMES: tuple[Any, ...] = (
    None, 0, -1, -4, 1, 0.5, 1.5, -0.0, 1e308, math.inf, -math.inf, math.nan, True, False,
    *HUGE_INTS, *WEIRD_STRINGS, [], [1], [1, 2, 3], ["a"], [None], {}, {"a": 1}, {"x": [1, {"y": None}]}, "64 KiB",
)  # fmt: skip
SIZES = (
    "0 KiB", "1e999 KiB", "9" * 300 + " KiB", "-4 KiB", "0 B", "1 B", "64", "1.5 KiB", "KiB", "64 kib", "64KiB",
    "64 KB", "64 GiB", "64 TiB", "0x40 KiB", "64 KiB KiB", " 64 KiB ", "\uff16\uff14 KiB",
    "\u0661\u0662\u0668 KiB", "1_024 B", "+64 KiB",
    "64 KiB\n", "nan KiB", "inf KiB", "1e3 KiB", "1e-3 KiB", "64 parsecs", "", "[/] KiB", "4611686018427387904 B",
    "2147483648 B", "18446744073709551616 B", "-0 B", "0.0001 MiB", "1 MiB", "100 MB",
    0, -1, 1, 64, 2**31, 2**62, 10**30, 1.5, math.inf, math.nan, True, None, [], {"value": 64},
)  # fmt: skip
CHANNELS: tuple[Any, ...] = (0, -4, 1, 2, 3, 7, 1000, 2**31, 2**62, 10**30, 1.5, 16.0, "16", True, None, [16])
NAMES: tuple[Any, ...] = (
    "", " ", "x" * 10_000, *MARKUP, "a\nb", "é", "\u202e", "conv1", "input", "@", "a@b", "1", 12, None, ["a"],
    {"a": 1}, "\t", "\x1b[31mred", "name with spaces",
)  # fmt: skip
KERNELS: tuple[Any, ...] = (
    0, 1, 2, 3, 7, 10**9, [0, 0], [1, 1, 1], [3], [], "global", "3", [3, "3"], [2**31, 1], -3, 1.5, "GLOBAL",
)  # fmt: skip
PRECISIONS: tuple[Any, ...] = (
    {"input": 0}, {"weight": 1}, {"output": 64}, {"psum": 4}, {"input": 3, "weight": 3, "output": 3, "psum": 3},
    {"bits": 8}, 8, None, {}, {"input": 2**31}, {"weight": -8}, {"output": 8.5}, {"psum": "32"},
)  # fmt: skip
FIELD_VALUES: dict[str, tuple[Any, ...]] = {
    "kernel": KERNELS,
    "stride": (0, -1, 2, 5, 10**9, [1, 2], [0, 1], [1, 1, 1], 1.5, "2", "global"),
    "padding": (-1, 1, 2, 100, 10**9, [100, 0], [1], [-1, 1], "same", 0.5),
    "groups": (0, -1, 2, 3, 7, 2**31, 1.5, "1", 64),
    "in_channels": CHANNELS,
    "out_channels": CHANNELS,
    "in_features": CHANNELS,
    "out_features": CHANNELS,
    "heads": (0, -1, 1, 2, 3, 5, 7, 12, 2**31, 1.5),
    "kind": ("conv2d", "matmul", "pool", "add", "conv3d", "Conv2d", "", None, 3, ["conv2d"]),
    "name": NAMES,
    "precision": PRECISIONS,
}
LAYER_FIELDS = {
    "conv2d": ("in_channels", "out_channels", "kernel", "stride", "padding", "groups"),
    "matmul": ("in_features", "out_features", "heads", "weight_from"),
    "pool": ("kernel", "stride", "padding"),
    "add": ("inputs",),
}
BITS: tuple[Any, ...] = (0, 1, 2, 3, 4, 7, 16, 32, 64, 128, 2**31, -8, 8.5, "8", None, True)
SHAPE: tuple[Any, ...] = (0, 1, 2, 3, 5, 1000, 10**5, 2**31, 10**30, -1, "28", 28.0, 28.5, None)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}...({len(text)} chars)"


def _value(b: _Builder, name: str | None = None) -> Any:
    """A value for a field: one of the field's plausible extremes, or anything odd."""
    if name in FIELD_VALUES and b.chance(0.7):
        return copy.deepcopy(b.pick(FIELD_VALUES[name]))
    return copy.deepcopy(b.pick(EXTREMES))


# --------------------------------------------------------------------------- paths into a parsed document

Key = str | int


def _walk(node: Any, path: tuple[Key, ...] = ()) -> Iterator[tuple[Key, ...]]:
    if path:
        yield path
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _walk(child, (*path, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _walk(child, (*path, i))


def _show(path: Sequence[Key]) -> str:
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text or "(top)"


def _parent(doc: Any, path: Sequence[Key]) -> Any:
    node = doc
    for key in path[:-1]:
        node = node[key]
    return node


def _set(doc: Any, path: Sequence[Key], value: Any) -> None:
    _parent(doc, path)[path[-1]] = value


def _delete(doc: Any, path: Sequence[Key]) -> None:
    del _parent(doc, path)[path[-1]]


def _generic(b: _Builder, doc: Any, what: str) -> None:
    """Drop any field or list item, or set it to an odd value."""
    paths = list(_walk(doc))
    if not paths:
        b.note(f"{what}: nothing to mutate")
        return
    path = b.pick(paths)
    if b.chance(0.25):
        _delete(doc, path)
        b.note(f"{what}: drop {_show(path)}")
    else:
        value = _value(b, path[-1] if isinstance(path[-1], str) else None)
        _set(doc, path, value)
        b.note(f"{what}: {_show(path)} = {_short(value)}")


# --------------------------------------------------------------------------- network mutations


def _layers(doc: Any) -> list[Any]:
    layers = doc.get("layers") if isinstance(doc, dict) else None
    return layers if isinstance(layers, list) and layers else []


def _layer(b: _Builder, doc: Any) -> tuple[int, dict[str, Any]] | None:
    layers = [(i, layer) for i, layer in enumerate(_layers(doc)) if isinstance(layer, dict)]
    return b.pick(layers) if layers else None


def _net_layer_field(b: _Builder, doc: Any) -> None:
    found = _layer(b, doc)
    if found is None:
        return _generic(b, doc, "network")
    i, layer = found
    fields = [*layer, *LAYER_FIELDS.get(str(layer.get("kind")), ()), "inputs", "precision", "groups", "weight_from"]
    name = b.pick(fields)
    if name == "weight_from":
        names = [x.get("name") for x in _layers(doc) if isinstance(x, dict)]
        value: Any = b.pick([*names, "input", "missing", 3, None, ["q"]])
    elif name == "inputs":
        return _net_inputs(b, doc)
    else:
        value = _value(b, name)
    layer[name] = value
    b.note(f"network: layers[{i}].{name} = {_short(value)}")


def _net_drop_field(b: _Builder, doc: Any) -> None:
    found = _layer(b, doc)
    if found is None or not found[1]:
        return _generic(b, doc, "network")
    i, layer = found
    name = b.pick(list(layer))
    del layer[name]
    b.note(f"network: drop layers[{i}].{name}")


def _net_top(b: _Builder, doc: Any) -> None:
    if not isinstance(doc, dict):
        return _generic(b, doc, "network")
    name = b.pick(["name", "input", "precision", "layers", "strides", "version"])
    if b.chance(0.3) and name in doc:
        del doc[name]
        b.note(f"network: drop {name}")
        return
    value = _value(b, name)
    doc[name] = value
    b.note(f"network: {name} = {_short(value)}")
    if name == "name" and isinstance(value, str) and value in MARKUP:
        b.echo = value


def _net_input_shape(b: _Builder, doc: Any) -> None:
    shape = doc.get("input") if isinstance(doc, dict) else None
    if not isinstance(shape, dict):
        return _generic(b, doc, "network")
    name = b.pick(["channels", "height", "width"])
    value = b.pick(SHAPE)
    shape[name] = value
    b.note(f"network: input.{name} = {_short(value)}")


def _net_precision(b: _Builder, doc: Any) -> None:
    operand = b.pick(["input", "weight", "output", "psum"])
    value = b.pick(BITS)
    found = _layer(b, doc)
    if found is not None and b.chance(0.4):
        i, layer = found
        precision = layer.setdefault("precision", {})
        where = f"layers[{i}].precision"
    elif isinstance(doc, dict):
        precision = doc.setdefault("precision", {"input": 8, "weight": 8, "output": 8, "psum": 32})
        where = "precision"
    else:
        return _generic(b, doc, "network")
    if not isinstance(precision, dict):
        return _generic(b, doc, "network")
    if b.chance(0.3):  # every operand at once, so that the program still runs
        value = b.pick([1, 2, 3, 4, 16, 32, 64])
        precision.update(dict.fromkeys(("input", "weight", "output", "psum"), value))
        b.note(f"network: {where}.* = {value}")
    else:
        precision[operand] = value
        b.note(f"network: {where}.{operand} = {_short(value)}")


def _net_duplicate(b: _Builder, doc: Any) -> None:
    found = _layer(b, doc)
    if found is None:
        return _generic(b, doc, "network")
    i, layer = found
    twin = copy.deepcopy(layer)
    renamed = b.chance(0.5)
    if renamed:
        twin["name"] = f"{layer.get('name')}_twin"
    doc["layers"].insert(i + 1, twin)
    b.note(f"network: duplicate layers[{i}]" + (" under a new name" if renamed else " with the same name"))


def _net_inputs(b: _Builder, doc: Any) -> None:
    found = _layer(b, doc)
    if found is None:
        return _generic(b, doc, "network")
    i, layer = found
    layers = _layers(doc)
    names = [x.get("name") if isinstance(x, dict) else None for x in layers]
    earlier = names[:i] or ["input"]
    later = names[i + 1 :] or ["missing"]
    value = b.pick(
        [
            ["missing"], [b.pick(later)], [layer.get("name")], ["input"], [], [b.pick(earlier)] * 2,
            b.pick(earlier), [b.pick(earlier), "input"], [None], [3], "input", {"a": 1}, None,
            [b.pick(earlier), b.pick(earlier), b.pick(earlier)],
        ]
    )  # fmt: skip
    layer["inputs"] = value
    b.note(f"network: layers[{i}].inputs = {_short(value)}")


def _net_kind(b: _Builder, doc: Any) -> None:
    found = _layer(b, doc)
    if found is None:
        return _generic(b, doc, "network")
    i, layer = found
    kind = b.pick([k for k in LAYER_FIELDS if k != layer.get("kind")])
    layer["kind"] = kind
    b.note(f"network: layers[{i}].kind = {kind!r}")


def _net_reshape(b: _Builder, doc: Any) -> None:
    layers = _layers(doc)
    if not layers:
        return _generic(b, doc, "network")
    how = b.pick(["delete", "reverse", "shuffle", "empty", "first", "null", "map"])
    if how == "delete":
        i = b.rng.randrange(len(layers))
        del layers[i]
        b.note(f"network: delete layers[{i}]")
        return
    if how == "reverse":
        layers.reverse()
    elif how == "shuffle":
        b.rng.shuffle(layers)
    elif how == "empty":
        doc["layers"] = []
    elif how == "first":
        del layers[1:]
    elif how == "null":
        doc["layers"] = None
    else:
        doc["layers"] = {str(x.get("name")) if isinstance(x, dict) else str(i): x for i, x in enumerate(layers)}
    b.note(f"network: layers {how}")


def _net_unknown(b: _Builder, doc: Any) -> None:
    key = b.pick(["strides", "bias", "activation", "", "Name", "kernel_size", "x" * 300])
    found = _layer(b, doc)
    if found is not None and b.chance(0.7):
        i, layer = found
        layer[key] = b.pick([1, "relu", None, [1, 2]])
        b.note(f"network: unknown field layers[{i}].{key[:40]}")
    elif isinstance(doc, dict):
        doc[key] = 1
        b.note(f"network: unknown top-level field {key[:40]!r}")


def _net_name(b: _Builder, doc: Any) -> None:
    value = b.pick(NAMES)
    found = _layer(b, doc)
    if found is not None and b.chance(0.5):
        i, layer = found
        layer["name"] = value
        b.note(f"network: layers[{i}].name = {_short(value)}")
    elif isinstance(doc, dict):
        doc["name"] = value
        b.note(f"network: name = {_short(value)}")
        if value in MARKUP:
            b.echo = value


def _net_channels(b: _Builder, doc: Any) -> None:
    """A convolution's output channels and its consumers' input channels together (often still valid)."""
    layers = _layers(doc)
    convs = [i for i, x in enumerate(layers) if isinstance(x, dict) and x.get("kind") == "conv2d"]
    if not convs:
        return _generic(b, doc, "network")
    i = b.pick(convs)
    value = b.pick([1, 2, 3, 5, 7, 100, 1000, 2**16, 2**31])
    old = layers[i].get("out_channels")
    layers[i]["out_channels"] = value
    name = layers[i].get("name")
    for j in range(i + 1, len(layers)):
        consumer = layers[j]
        if not isinstance(consumer, dict):
            continue
        inputs = consumer.get("inputs")
        reads = (inputs is None and j == i + 1) or (isinstance(inputs, list) and name in inputs)
        if reads and consumer.get("in_channels") == old:
            consumer["in_channels"] = value
            if consumer.get("groups") == old:  # depthwise: channels pass through
                consumer["groups"] = value
                consumer["out_channels"] = value
    b.note(f"network: layers[{i}].out_channels {old} -> {value}, consumers adjusted")


def _net_tweak(b: _Builder, doc: Any) -> None:
    """A change that often keeps the network valid, so that the program runs on an unusual shape."""
    layers = _layers(doc)
    convs = [i for i, x in enumerate(layers) if isinstance(x, dict) and x.get("kind") in ("conv2d", "pool")]
    shape = doc.get("input") if isinstance(doc, dict) else None
    if convs and (b.chance(0.7) or not isinstance(shape, dict)):
        i = b.pick(convs)
        name = b.pick(["padding", "stride", "kernel"])
        value = b.pick(
            {"padding": [0, 1, 2, 3, [0, 2]], "stride": [1, 2, 3, [2, 1]], "kernel": [1, 2, 3, 5, [1, 3]]}[name]
        )
        layers[i][name] = value
        b.note(f"network: layers[{i}].{name} = {value!r}")
    elif isinstance(shape, dict):
        name = b.pick(["height", "width"])
        value = b.pick([1, 2, 7, 13, 64, 100, 250])
        shape[name] = value
        b.note(f"network: input.{name} = {value}")


NETWORK_OPS: tuple[tuple[Callable[[_Builder, Any], None], float], ...] = (
    (_net_layer_field, 6),
    (_net_tweak, 5),
    (_net_drop_field, 2),
    (_net_top, 2),
    (_net_input_shape, 2),
    (_net_precision, 2),
    (_net_duplicate, 1),
    (_net_inputs, 2),
    (_net_kind, 1),
    (_net_reshape, 1),
    (_net_unknown, 1),
    (_net_name, 1.5),
    (_net_channels, 2),
    (lambda b, doc: _generic(b, doc, "network"), 3),
)


def _mutate(b: _Builder, doc: Any, ops: Sequence[tuple[Callable[[_Builder, Any], None], float]]) -> Any:
    """Apply one to three operations (each may replace the document's top level)."""
    holder = {"doc": doc}
    for _ in range(b.pick([1, 1, 1, 1, 1, 1, 2, 2, 3])):
        op = b.rng.choices([op for op, _ in ops], weights=[w for _, w in ops])[0]
        op(b, holder["doc"])
    return holder["doc"]


# --------------------------------------------------------------------------- accelerator mutations

BUFFERS: tuple[Any, ...] = (
    {"unified": "64 KiB", "input": "32 KiB"},
    {"input": "32 KiB", "weight": "32 KiB"},
    {"input": "1 B", "weight": "1 MiB", "output": "1 B"},
    {"input": 0, "weight": 0, "output": 0},
    {"total": "128 KiB"},
    {"total": "128 KiB", "split": "free"},
    {"total": "128 KiB", "split": "fixed", "bank": "8 KiB"},
    {"total": "128 KiB", "split": None, "bank": "8 KiB"},
    {"total": "1 B", "split": "free", "bank": "1 B"},
    {"total": "1 MiB", "split": "free", "bank": "1 B"},
    {"total": "64 KiB", "split": "free", "bank": "64 KiB"},
    {"unified": "128 KiB", "split": "free"},
    {"unified": "128 KiB", "total": "128 KiB"},
    {"unified": "64 KiB", "unified ": "32 KiB"},
    {},
    [],
    "128 KiB",
    None,
    [{"unified": "64 KiB"}],
)
BANKS: tuple[Any, ...] = ("0 KiB", "3 KiB", "256 KiB", "1 B", "0.5 KiB", "-8 KiB", "128 KiB", "7 B", 0, None, "free")


def _acc_size(b: _Builder, doc: Any) -> None:
    buffer = doc.get("buffer") if isinstance(doc, dict) else None
    if not isinstance(buffer, dict) or not buffer:
        return _generic(b, doc, "accelerator")
    name = b.pick(list(buffer))
    value = b.pick(SIZES)
    buffer[name] = value
    b.note(f"accelerator: buffer.{name} = {_short(value)}")


def _acc_buffer(b: _Builder, doc: Any) -> None:
    if not isinstance(doc, dict):
        return _generic(b, doc, "accelerator")
    if b.chance(0.3):
        value: Any = {"total": b.pick(["128 KiB", "32 KiB", "4 KiB", "1 KiB"]), "split": "free", "bank": b.pick(BANKS)}
    else:
        value = copy.deepcopy(b.pick(BUFFERS))
    doc["buffer"] = value
    b.note(f"accelerator: buffer = {_short(value)}")


def _acc_number(b: _Builder, doc: Any) -> None:
    if not isinstance(doc, dict):
        return _generic(b, doc, "accelerator")
    name = b.pick(["dram_bandwidth", "clock_mhz", "macs", "double_buffering", "energy_pj", "energy"])
    if name == "energy" and isinstance(doc.get("energy_pj"), dict):
        key = b.pick(["dram_byte", "sram_byte", "mac", "leakage"])
        value = b.pick([0, 0.0, -1.0, 1e-300, 1e300, math.inf, math.nan, "20", None, 2**62])
        doc["energy_pj"][key] = value
        b.note(f"accelerator: energy_pj.{key} = {_short(value)}")
        return
    if name == "double_buffering":
        value = b.pick([True, "yes", "no", 1, 0, None, "true", [], 2])
    else:
        value = b.pick([0, -1, 1, 1e-300, 1e-9, 1e300, math.inf, math.nan, 2**62, 10**30, 0.5, "8", None, [8]])
    doc[name] = value
    b.note(f"accelerator: {name} = {_short(value)}")


def _acc_name(b: _Builder, doc: Any) -> None:
    if not isinstance(doc, dict):
        return _generic(b, doc, "accelerator")
    value = b.pick(NAMES)
    doc["name"] = value
    b.note(f"accelerator: name = {_short(value)}")
    if value in MARKUP:
        b.echo = value


def _acc_drop(b: _Builder, doc: Any) -> None:
    if not isinstance(doc, dict) or not doc:
        return _generic(b, doc, "accelerator")
    name = b.pick(list(doc))
    del doc[name]
    b.note(f"accelerator: drop {name}")


def _acc_unknown(b: _Builder, doc: Any) -> None:
    if not isinstance(doc, dict):
        return _generic(b, doc, "accelerator")
    key = b.pick(["buffers", "bandwidth", "Name", "", "x" * 300])
    doc[key] = b.pick([1, "8 KiB", None])
    b.note(f"accelerator: unknown field {key[:40]!r}")


def _acc_tweak(b: _Builder, doc: Any) -> None:
    """A change that keeps the accelerator valid but unusual: tiny, huge or lopsided buffers, odd rates."""
    if not isinstance(doc, dict):
        return _generic(b, doc, "accelerator")
    how = b.pick(["unified", "separate", "split", "rates", "double"])
    if how == "unified":
        doc["buffer"] = {"unified": b.pick(["64", "100 B", "300", "1 KiB", "2 KiB", "16 KiB", "1 MiB", "1 GiB", 2**40])}
    elif how == "separate":
        sizes = ["16", "1 KiB", "4 KiB", "64 KiB", "1 MiB"]
        doc["buffer"] = {name: b.pick(sizes) for name in ("input", "weight", "output")}
    elif how == "split":
        total, bank = b.pick(
            [("64 KiB", "4 KiB"), ("8 KiB", "1 KiB"), ("4 KiB", "4 KiB"), ("96 KiB", "32 KiB"), ("64 KiB", None)]
            + [("4 KiB", "16 B"), ("128 KiB", "512 B"), ("64 KiB", "256 B")] * b.chance(0.3)  # 256 banks
        )
        doc["buffer"] = {"total": total, "split": "free"} | ({"bank": bank} if bank else {})
    elif how == "rates":
        name = b.pick(["dram_bandwidth", "clock_mhz", "macs"])
        doc[name] = b.pick([1, 0.001, 3, 1e6, 4096])
        b.note(f"accelerator: {name} = {doc[name]!r}")
        return
    else:
        doc["double_buffering"] = not doc.get("double_buffering")
        b.note(f"accelerator: double_buffering = {doc['double_buffering']}")
        return
    b.note(f"accelerator: buffer = {_short(doc['buffer'])}")


ACCELERATOR_OPS: tuple[tuple[Callable[[_Builder, Any], None], float], ...] = (
    (_acc_size, 5),
    (_acc_tweak, 5),
    (_acc_buffer, 3),
    (_acc_number, 4),
    (_acc_name, 1),
    (_acc_drop, 1),
    (_acc_unknown, 1),
    (lambda b, doc: _generic(b, doc, "accelerator"), 3),
)


# --------------------------------------------------------------------------- suite mutations


def _suite_entry(b: _Builder, doc: Any) -> None:
    entries = doc.get("instances") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        return _generic(b, doc, "suite")
    i = b.rng.randrange(len(entries))
    entry = entries[i]
    if not isinstance(entry, dict):
        return _generic(b, doc, "suite")
    key = b.pick(["network", "accelerator"])
    value = b.pick(
        [
            f"{DIR}/missing.yaml", DIR, "/dev/null", "networks/tiny_dscnn.yaml", "../x.yaml", "",
            str(accelerator_path("npu_32k")) if key == "network" else str(network_path("tiny_dscnn")),
            str(SUITE), None, 3, [str(network_path("tiny_dscnn"))],
        ]
    )  # fmt: skip
    entry[key] = value
    b.note(f"suite: instances[{i}].{key} = {_short(value)}")


def _suite_shape(b: _Builder, doc: Any) -> None:
    entries = doc.get("instances") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        return _generic(b, doc, "suite")
    how = b.pick(["duplicate", "empty", "null", "map", "extra-key", "no-name"])
    if how == "duplicate":
        entries.append(copy.deepcopy(entries[0]))
    elif how == "empty":
        doc["instances"] = []
    elif how == "null":
        doc["instances"] = None
    elif how == "map":
        doc["instances"] = {str(e.get("name")) if isinstance(e, dict) else "?": e for e in entries}
    elif how == "extra-key" and isinstance(entries[0], dict):
        entries[0]["fusion"] = 4
    elif isinstance(entries[0], dict):
        entries[0].pop("name", None)
    b.note(f"suite: {how}")


SUITE_OPS: tuple[tuple[Callable[[_Builder, Any], None], float], ...] = (
    (_suite_entry, 3),
    (_suite_shape, 2),
    (lambda b, doc: _generic(b, doc, "suite"), 3),
)


# --------------------------------------------------------------------------- raw text and bytes

RAW_SCALARS = (
    "1e999", "-1e999", ".nan", ".inf", "-.inf", "0x10", "0o17", "0b11", "1_000", "+12", "12.0", "1:30", "190:20:30",
    "yes", "no", "on", "~", "null", "2001-01-01", "2001-12-14t21:59:43.10-05:00", "!!int abc", "!!float abc",
    "!!bool maybe", "!!timestamp 2001-13-45", "!!timestamp abc", "!!binary aGk=", "!!binary '???'", "!!map [1]",
    "!!seq {a: 1}", "!!python/object:os.system", "!!python/object/apply:os.system [echo]", "!!python/name:os.system",
    "!!set {a, b}", "!!omap [a: 1]", "!!pairs [a: 1]", "!!str 12", "!!null x", "!!int 99999999999999999999999999999",
    "!!float 1e99999", "!!int 0x", "!!int ''", "!!float ''", "!<tag:yaml.org,2002:int> 5", "!local 3", "!!merge x",
    "!!value x", "=", "'12'", '"\\ud800"', '"\\x00"', '"\\e[31m"', "*undefined", "&anchor 5", "[", "{", "'", '"',
    ">", "@x", "`x", "%x", "!", "!!", "- 1", "? x", "a: b", "&a [*a]", "x\ty", "!!int 1e3", "0777", "08",
)  # fmt: skip
INSERTED_BYTES = (
    b"\x00", b"\x07", b"\x1b[31m", b"\xff\xfe", b"\x80", b"\xc3\x28", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\r",
    b"\xc2\x85", "\u2028".encode(), b"\x7f", b"\xf4\x90\x80\x80",
)  # fmt: skip
DEGENERATE = (
    b"", b"   \n", b"---\n", b"...\n", b"~\n", b"[]\n", b"42\n", b"# only a comment\n", b"--- a\n--- b\n",
    b"%YAML 1.2\n---\nname: x\n", b"%YAML 2.0\n---\nname: x\n", b"%TAG ! tag:x,2000:\n---\n!foo 1\n",
    b"!!binary AAAA\n", b"'unterminated\n", b'"\\ud800"\n', b"&a [*a]\n", b"&a {x: *a}\n", b"{name: &a [*a]}\n",
    b"? [a, b]\n: 1\n", b"\xef\xbb\xbf\n", b"- - - - -\n", b"name\n",
)  # fmt: skip


def _source(b: _Builder) -> tuple[str, str, Path]:
    """The file a raw mutation starts from: (role, text, original path)."""
    role = b.rng.choices(["network", "accelerator", "suite"], weights=[6, 3, 1])[0]
    if role == "network":
        path = network_path(_pick_network(b))
        return role, _text(path), path
    if role == "accelerator":
        path = accelerator_path(b.pick(SMALL_ACCELERATORS))
        return role, _text(path), path
    return role, yaml.safe_dump(_small_suite(), sort_keys=False), SUITE


def _bomb(levels: int) -> str:
    """Billion laughs: a flow list of anchors, each a list of nine aliases of the one before."""
    items = ["&b0 [" + ", ".join(["lol"] * 9) + "]"]
    items += [f"&b{i} [" + ", ".join([f"*b{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


def _nested(depth: int, style: str) -> str:
    if style == "list":
        return "[" * depth + "]" * depth
    if style == "map":
        return "{a: " * depth + "1" + "}" * depth
    return "".join(f"{'  ' * i}a:\n" for i in range(depth)) + "  " * depth + "1"


def _set_top(text: str, key: str, value: str) -> str:
    """Replace a top-level key's value (its whole block) in YAML text, or append the key."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"{key}:")), None)
    if start is None:
        return f"{text.rstrip()}\n{key}: {value}\n"
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " -#\t"):
        end += 1
    return "\n".join([*lines[:start], f"{key}: {value}", *lines[end:]]) + "\n"


def _raw_text(b: _Builder, role: str, text: str) -> bytes:
    key = {"network": "layers", "accelerator": "buffer", "suite": "instances"}[role]
    op = b.pick(
        ["bomb", "nesting", "complex-key", "scalar", "scalar", "scalar", "merge", "duplicate-key", "tabs", "bytes",
         "encoding", "degenerate", "truncate", "recursive"]
    )  # fmt: skip
    if op == "bomb":
        where = b.pick(["unused", key, "name"])
        bomb = _bomb(b.pick([3, 6, 10, 10]))
        b.note(f"raw {role}: billion-laughs anchors ({bomb.count('&')} levels), {where}")
        if where == "unused":
            return f"x-anchors: {bomb}\n{text}".encode()
        return _set_top(text, where, bomb).encode()
    if op == "nesting":
        depth = b.pick([50, 200, 500, 1000, 3000, 10_000])
        style = b.pick(["list", "map", "block"])
        if style == "block":
            depth = min(depth, 1000)
        where = b.pick(["x-nested", key, "name"])
        b.note(f"raw {role}: {where} nested {depth} deep ({style})")
        nested = _nested(depth, style)
        if style == "block":
            nested = "\n" + "\n".join("  " + line for line in nested.splitlines())
        return _set_top(text, where, nested).encode()
    if op == "complex-key":
        item = b.pick(["? [a, b]\n: 1", "? {a: 1}\n: 1", "[1, 2]: x", "1: x", "null: x", "1.5: x", "true: x", "~: x"])
        b.note(f"raw {role}: complex key {item!r}")
        return f"{text}\n{item}\n".encode()
    if op == "scalar":
        matches = list(re.finditer(r"\b([a-z_]+): ([^,}\n#{\[][^,}\n#]*)", text))
        if matches:
            match = b.pick(matches)
            scalar = b.pick(RAW_SCALARS)
            b.note(f"raw {role}: {match.group(1)}: {match.group(2).strip()!r} -> {scalar!r}")
            return (text[: match.start(2)] + scalar + text[match.end(2) :]).encode()
    if op == "merge":
        return _raw_merge(b, role, text)
    if op == "duplicate-key":
        line = b.pick(["name: dup", f"{key}: []", "name: [a]", f"{key}: ~"])
        b.note(f"raw {role}: repeated top-level key {line!r}")
        return f"{line}\n{text}".encode() if b.chance(0.5) else f"{text}\n{line}\n".encode()
    if op == "tabs":
        lines = text.splitlines()
        indented = [i for i, line in enumerate(lines) if line.startswith("  ")]
        if indented:
            i = b.pick(indented)
            lines[i] = "\t" + lines[i][2:]
            b.note(f"raw {role}: a tab indents line {i + 1}")
        else:
            lines = [line.replace(": ", ":\t", 1) for line in lines]
            b.note(f"raw {role}: tabs after every first colon")
        return ("\n".join(lines) + "\n").encode()
    if op == "bytes":
        data = text.encode()
        at = b.rng.randrange(len(data) + 1)
        chunk = b.pick(INSERTED_BYTES) if b.chance(0.8) else bytes(b.rng.randrange(256) for _ in range(20))
        b.note(f"raw {role}: bytes {chunk!r} inserted at byte {at}")
        return data[:at] + chunk + data[at:]
    if op == "encoding":
        how = b.pick(["utf-16", "utf-16-le", "utf-32", "latin-1", "bom", "crlf", "cr"])
        b.note(f"raw {role}: encoded as {how}")
        if how == "latin-1":
            return ("# café\n" + text.replace("name: ", "name: é", 1)).encode("latin-1")
        if how == "bom":
            return b"\xef\xbb\xbf" + text.encode()
        if how in ("crlf", "cr"):
            return text.replace("\n", "\r\n" if how == "crlf" else "\r").encode()
        return text.encode(how)
    if op == "degenerate":
        data = b.pick(DEGENERATE)
        b.note(f"raw {role}: whole file {data!r}")
        return data
    if op == "recursive":
        value = b.pick(["&r [*r]", "&r {x: *r}", "&r [1, [2, *r]]"])
        b.note(f"raw {role}: {key}: {value}")
        return _set_top(text, key, value).encode()
    data = text.encode()
    at = b.rng.randrange(len(data))
    b.note(f"raw {role}: truncated to {at} of {len(data)} bytes")
    return data[:at]


def _raw_merge(b: _Builder, role: str, text: str) -> bytes:
    """YAML merge keys: a layer that inherits another's fields, or a merge of something that is no mapping."""
    lines = text.splitlines()
    flow = [i for i, line in enumerate(lines) if line.lstrip().startswith("- {")]
    bad = b.pick(["1", "[1]", "*nothing", "[*base, 2]", "{}", "~"])
    if role == "network" and len(flow) >= 2:
        first, later = flow[0], b.pick(flow[1:])
        lines[first] = lines[first].replace("- {", "- &base {", 1)
        source = "*base" if b.chance(0.6) else bad
        lines[later] = lines[later].replace("- {", f"- {{<<: {source}, ", 1)
        b.note(f"raw {role}: layer on line {later + 1} merges {source}")
        return ("\n".join(lines) + "\n").encode()
    source = b.pick(["{name: merged}", bad, "[{a: 1}, {b: 2}]"])
    b.note(f"raw {role}: top-level <<: {source}")
    return f"<<: {source}\n{text}".encode()


# --------------------------------------------------------------------------- command lines

OBJECTIVES = (
    "dram", "energy", "latency", "dram,latency", "latency,dram", "energy,dram,latency", "dram,dram", "", ",",
    "dram,", "DRAM", "speed", "dram latency", " dram", "latency,energy", "[bold]dram[/]",
)  # fmt: skip
OUTS = (
    f"{DIR}/r.json", DIR, "/proc/x/y.json", f"{DIR}/missing/r.json", "/dev/null", "/dev/full", "",
    f"{DIR}/r.json/", f"{DIR}/{'x' * 300}.json", f"{DIR}/ro.json",
)  # fmt: skip
PLOTS = (
    f"{DIR}/p.png", DIR, "/proc/x/p.png", f"{DIR}/missing/p.png", f"{DIR}/p.txt", f"{DIR}/p", f"{DIR}/p.pdf",
    f"{DIR}/p.svg", f"{DIR}/p.jpg", "/dev/null", "", f"{DIR}/p.PNG",
)  # fmt: skip
BAD_OPTIONS: dict[str, tuple[str, ...]] = {
    "--threads": ("0", "2", "-1", "1000000000000", "1.5", "abc", "", "1e3", "0x10", "\u0661", "1_0", "9" * 30),
    "--jobs": ("0", "1", "2", "-1", "abc", "1e3", "1.5", "", "9" * 30),
    "--seed": ("-1", "2147483648", "abc", "9223372036854775808", "-2147483649", "4294967296", "1e3", "9" * 300, ""),
    "--time-limit": ("nan", "inf", "-inf", "0", "-1", "1e-9", "1e300", "1e999", "abc", "0.001", "1e-300", "", "NaN"),
    "--mip-gap": ("1", "-0.1", "nan", "0.5", "0.999999", "inf", "1e-300", "abc", "-0", "1e-12", "0.1"),
    "--fusion": ("0", "1", "2", "3", "-1", "1000000000", "abc", "1.5", "nan", "9" * 20),
    "--solver": ("highs", "ortools-sat", "ortools-scip", "HIGHS", "gurobi", ""),
    "--objective": OBJECTIVES,
    "--method": ("milp", "random", "anneal", "genetic", "timeloop", "loma", "Random", "tabu", "zigzag"),
    "--space": ("own", "integers", "divisors", "Own", ""),
    "--evaluations": ("1", "2", "10", "0", "-1", "abc", "1e3", ""),
    "--out": OUTS,
    "--suite": (f"{DIR}/missing.yaml", "/dev/null", DIR, str(SUITE), str(network_path("tiny_dscnn"))),
    "--halo": ("any", "rows,columns", "", "sideways", "ROWS", "rows,", ",", "rows+columns,recompute", "\x1b[31mred"),
    "--fused-footprint": ("sum", "liveness", "peak", ""),
    "--keep-tensors": ("yes", "no", "true", ""),
}
FLAGS = ("--marginals", "--quiet", "--no-decompose")
CLI_SIZES = (
    "1B", "1 B", "0B", "16KiB", "1MiB", "1e999 KiB", "9" * 300 + "KiB", "-4 KiB", "abc", "4611686018427387904",
    "nan KiB", "inf", "", "1.5 KiB", "64 kib", "4 GiB", "[/]", "100MiB", "3 KiB",
)  # fmt: skip
SWEEP_OPTIONS: dict[str, tuple[str, ...]] = {
    "--min": CLI_SIZES,
    "--max": CLI_SIZES,
    "--points": ("1", "2", "3", "0", "-1", "abc", "1.5", "1e1", ""),
    "--out": (f"{DIR}/s.csv", DIR, "/proc/x/s.csv", f"{DIR}/missing/s.csv", "/dev/null", "/dev/full", ""),
    "--plot": PLOTS,
    "--capacities": ("16KiB", "16KiB,64KiB", "16KiB,16KiB", "0B", "abc", "", ",", "1e999 KiB"),
    "--banks": ("4KiB", "4KiB,8KiB", "0B", "abc", ""),
    "--bandwidths": ("4", "4,8", "0", "-1", "nan", "inf", "abc", ""),
    "--macs": ("64", "64,256", "0", "1.5", "abc", ""),
    "--networks": (str(network_path("tiny_dscnn")), f"{DIR}/missing.yaml", "/dev/null", DIR),
    "--executor": ("local", "ray", "", "LOCAL"),
    "--workers": ("1", "0", "-1", "abc", ""),
}
VALID_OBJECTIVES = ("dram", "energy", "latency", "dram,latency", "latency,dram", "energy,latency", "dram,energy")
SOLVERS = ("highs", "ortools-sat", "ortools-scip")
METHODS = ("milp", "random", "anneal", "genetic")
PER_LAYER_ONLY = ("timeloop", "loma")


def _command(b: _Builder) -> list[str]:
    """``solve``, or a short ``sweep``."""
    if b.chance(0.12):
        return ["sweep", "--points", b.pick(["1", "2", "2", "3"])]
    return ["solve"]


def _bad_option(b: _Builder, command: str) -> list[str]:
    table = dict(BAD_OPTIONS)
    if command == "sweep":
        table.update(SWEEP_OPTIONS)
        for name in ("--method", "--evaluations", "--space", "--marginals", "--quiet"):
            table.pop(name, None)
    if b.chance(0.08):
        flag = b.pick(FLAGS)
        b.note(f"option {flag}")
        return [flag]
    name = b.pick(sorted(table))
    value = b.pick(table[name])
    b.note(f"option {name} {_short(value)}")
    if name == "--method" and value in (*METHODS[1:], *PER_LAYER_ONLY):
        evaluations = b.pick(BAD_OPTIONS["--evaluations"])
        b.note(f"option --evaluations {evaluations!r}")
        return [name, value, "--evaluations", evaluations]
    if b.chance(0.15):
        return [f"{name}={value}"]
    return [name, value]


def _valid_options(b: _Builder, command: str, network: str | None) -> list[str]:
    """Options that a correct tool accepts, drawn so that the solve stays short."""
    heuristic = command == "solve" and b.chance(0.12)  # takes one objective and no --marginals
    args: list[str] = []
    if b.chance(0.4):
        objectives = [o for o in VALID_OBJECTIVES if not heuristic or "," not in o]
        args += ["--objective", b.pick(objectives)]
    if b.chance(0.4):
        args += ["--fusion", b.pick(["2", "3", "4", "6"])]
    if b.chance(0.3):
        args += ["--solver", b.pick(SOLVERS)]
    if b.chance(0.15):
        args += ["--threads", "2"]
    if b.chance(0.15):
        args += ["--seed", str(b.rng.randrange(10))]
    if command != "bench" and b.chance(0.2):
        args += ["--jobs", b.pick(["1", "2", "3"])]
    if b.chance(0.1):
        args += ["--mip-gap", b.pick(["0.01", "0.5"])]
    if b.chance(0.15):
        args += ["--halo", b.pick(["any", "rows", "recompute,columns"])]
    if b.chance(0.1):
        args += ["--fused-footprint", "liveness"]
    if b.chance(0.1):
        args += ["--no-decompose"]
    # no --keep-tensors yes: with a free split its program can take minutes to prove (a known limit, not
    # a robustness question); BAD_OPTIONS still draws the flag's spellings
    if heuristic:
        per_layer_only = () if "--fusion" in args else PER_LAYER_ONLY  # they refuse fusion (and a free split)
        args += ["--method", b.pick([*METHODS[1:], *per_layer_only]), "--evaluations", b.pick(["5", "20", "100"])]
        if b.chance(0.5):
            args += ["--space", b.pick(["own", "integers"])]
    if command == "solve":
        if not heuristic and b.chance(0.15) and network in SMALL_NETWORKS:
            args += ["--marginals"]
        if b.chance(0.5):
            args += ["--quiet"]
        if b.chance(0.4):
            args += ["--out", f"{DIR}/result.json"]
    return args


def _options(b: _Builder, command: str, network: str | None) -> list[str]:
    """Options for a mutated-file case: usually valid, sometimes one bad one too."""
    args = _valid_options(b, command, network) if b.chance(0.5) else (["--quiet"] if b.chance(0.5) else [])
    if b.chance(0.1):
        args += _bad_option(b, command)
    return args


# --------------------------------------------------------------------------- families


def _family_network(b: _Builder) -> list[str]:
    network = _pick_network(b)
    doc = _mutate(b, _parsed(network_path(network)), NETWORK_OPS)
    b.notes.insert(0, f"from networks/{network}.yaml")
    net = b.file("net.yaml", _dump(b, doc))
    acc = str(accelerator_path(b.pick(SMALL_ACCELERATORS)))
    command = _command(b)
    return [*command, net, acc, *_options(b, command[0], network)]


def _family_accelerator(b: _Builder) -> list[str]:
    accelerator = b.pick(SMALL_ACCELERATORS)
    doc = _mutate(b, _parsed(accelerator_path(accelerator)), ACCELERATOR_OPS)
    b.notes.insert(0, f"from accelerators/{accelerator}.yaml")
    network = b.pick(SMALL_NETWORKS)
    acc = b.file("acc.yaml", _dump(b, doc))
    command = _command(b)
    return [*command, str(network_path(network)), acc, *_options(b, command[0], network)]


def _family_suite(b: _Builder) -> list[str]:
    suite = _small_suite()
    names = [entry["name"] for entry in suite["instances"]]
    if b.chance(0.3):  # relative paths: they are relative to the suite file, not to the working folder
        for entry in suite["instances"]:
            for key in ("network", "accelerator"):
                source = Path(entry[key])
                relative = f"{source.parent.name}/{source.name}"
                b.file(f"s/{relative}", _text(source))
                entry[key] = relative
        b.note("suite: relative paths, suite in a subfolder")
    doc = _mutate(b, suite, SUITE_OPS) if b.chance(0.85) else suite
    path = b.file("s/suite.yaml", _dump(b, doc))
    name = b.pick(names) if b.chance(0.85) else b.pick(["nope@npu-32k", "", "TINY_DSCNN@NPU-32K", "[/]"])
    command = _command(b)
    return [*command, name, "--suite", path, *_options(b, command[0], None)]


def _family_raw(b: _Builder) -> list[str]:
    role, text, original = _source(b)
    b.note(f"from {original.relative_to(INSTANCES)}")
    if b.chance(0.1):
        special = b.pick(["folder", "/dev/null", "missing", "long-name", "dash", "tilde", "loop"])
        b.note(f"{role} path: {special}")
        path = {
            "folder": f"{DIR}/in.yaml",
            "/dev/null": "/dev/null",
            "missing": f"{DIR}/missing.yaml",
            "long-name": f"{DIR}/{'n' * 300}.yaml",
            "dash": "-",
            "tilde": "~/in.yaml",
            "loop": f"{DIR}/loop.yaml",
        }[special]
        if special == "folder":
            b.folders.append("in.yaml")
        if special == "loop":
            b.links["loop.yaml"] = "loop.yaml"
    else:
        path = b.file("in.yaml", _raw_text(b, role, text))
    command = _command(b)
    if role == "suite":
        return [*command, b.pick(SMALL_ENTRIES), "--suite", path, *_options(b, command[0], None)]
    if role == "network":
        return [*command, path, str(accelerator_path(b.pick(SMALL_ACCELERATORS))), *_options(b, command[0], None)]
    network = b.pick(SMALL_NETWORKS)
    return [*command, str(network_path(network)), path, *_options(b, command[0], network)]


def _instances(b: _Builder) -> tuple[list[str], str | None]:
    """A valid instance: two files, or a suite entry."""
    if b.chance(0.3):
        entry = b.pick(SMALL_ENTRIES)
        return [entry], entry.split("@")[0]
    network = b.pick(SMALL_NETWORKS)
    return [str(network_path(network)), str(accelerator_path(b.pick(SMALL_ACCELERATORS)))], network


def _family_options(b: _Builder) -> list[str]:
    command = ["sweep", "--points", b.pick(["1", "2"])] if b.chance(0.25) else ["solve"]
    instances, network = _instances(b)
    args = _valid_options(b, command[0], network) if b.chance(0.3) else []
    for _ in range(b.pick([1, 1, 1, 2, 2, 3])):
        args += _bad_option(b, command[0])
    if command[0] == "sweep" and b.chance(0.1):
        args += ["--points", "1", "--min", "1B", "--max", "1B"]
        b.note("sweep --points 1 --min 1B --max 1B")
    if b.chance(0.15):
        instances = _odd_instances(b, instances)
    argv = [*command, *instances, *args]
    return _odd_argv(b, argv) if b.chance(0.1) else argv


def _odd_instances(b: _Builder, instances: list[str]) -> list[str]:
    how = b.pick(["none", "three", "swapped", "twice", "name"])
    b.note(f"instances: {how}")
    if how == "none":
        return []
    if how == "three":
        return [*instances, "extra"]
    if how == "swapped" and len(instances) == 2:
        return instances[::-1]
    if how == "twice":
        return [instances[0], instances[0]]
    name = b.pick(
        ["nope@npu-32k", "", "@", " tiny_dscnn@npu-32k", "tiny_dscnn@npu-32k ", "TINY_DSCNN@NPU-32K", "tiny_dscnn",
         "[bold red]x[/]", "-", "a\nb", "x" * 5000, "tiny_dscnn@npu-32k@npu-32k"]
    )  # fmt: skip
    b.note(f"instance name {_short(name)}")
    return [name]


def _odd_argv(b: _Builder, argv: list[str]) -> list[str]:
    how = b.pick(["unknown-long", "unknown-short", "dangling", "prefix", "repeat", "no-command", "bad-command", "help"])
    b.note(f"argv: {how}")
    if how == "unknown-long":
        return [*argv, "--foo"]
    if how == "unknown-short":
        return [*argv, "-x"]
    if how == "dangling":
        return [*argv, b.pick(["--threads", "--out", "--objective", "--suite"])]
    if how == "prefix":
        return [*argv, "--thr", "2"]
    if how == "repeat":
        return [*argv, "--threads", "1", "--threads", "2"]
    if how == "no-command":
        return argv[1:]
    if how == "bad-command":
        return [b.pick(["solv", "", "SOLVE", "--version"]), *argv[1:]]
    return [argv[0], "--help"]


def _family_valid(b: _Builder) -> list[str]:
    """A valid command line: it must solve (exit 0)."""
    command = ["sweep", "--points", b.pick(["1", "2"])] if b.chance(0.15) else ["solve"]
    instances, network = _instances(b)
    args = _valid_options(b, command[0], network)
    b.expect = frozenset({0, 3, 4}) if "--method" in args else frozenset({0})
    if any(method in args for method in PER_LAYER_ONLY):  # an instance may have a free split: refused
        b.expect |= {2}
    b.note("valid command line")
    return [*command, *instances, *args]


def _family_bench(b: _Builder) -> list[str]:
    """``bench`` with a suite that holds nothing runnable, so that a correct tool fails fast."""
    how = b.pick(["missing", "folder", "empty", "broken", "missing-network", "bad-network"])
    b.note(f"bench: suite {how}")
    if how == "missing":
        suite = f"{DIR}/missing.yaml"
    elif how == "folder":
        suite = DIR
    elif how == "empty":
        suite = b.file("suite.yaml", b.pick(["", "instances: []\n", "instances:\n", "[]\n"]))
    elif how == "broken":
        suite = b.file("suite.yaml", "instances:\n  - {name: a, network: [\n")
    elif how == "missing-network":
        entry = {"name": "x@y", "network": f"{DIR}/missing.yaml", "accelerator": str(accelerator_path("npu_32k"))}
        suite = b.file("suite.yaml", yaml.safe_dump({"instances": [entry]}))
    else:
        b.file("net.yaml", _text(network_path("tiny_dscnn")).replace("kernel: 1", "kernel: 0"))
        entry = {"name": "x@y", "network": f"{DIR}/net.yaml", "accelerator": str(accelerator_path("npu_32k"))}
        suite = b.file("suite.yaml", yaml.safe_dump({"instances": [entry]}))
    args = ["bench", "--suite", suite]
    options = {
        "--jobs": ("0", "-1", "abc", "1.5", "", "1"),
        "--seed": ("abc", "-1", "2147483648", "1"),
        "--fusion": ("-1", "abc", "1e9", "2"),
        "--out": ("/proc/x", f"{DIR}/bench", "/dev/null", ""),
    }
    for name in b.rng.sample(sorted(options), b.pick([0, 1, 2])):
        value = b.pick(options[name])
        args += [name, value]
        b.note(f"option {name} {value!r}")
    return args


FAMILIES: dict[str, tuple[Callable[[_Builder], list[str]], float]] = {
    "network": (_family_network, 30),
    "accelerator": (_family_accelerator, 16),
    "suite": (_family_suite, 6),
    "raw": (_family_raw, 20),
    "options": (_family_options, 20),
    "valid": (_family_valid, 6),
    "bench": (_family_bench, 2),
}


# --------------------------------------------------------------------------- outcomes and the contract

FAILURE_KINDS = ("traceback", "hang", "crash", "exit-code", "stderr-format", "unexpected-exit", "mismatch")


@dataclass(frozen=True)
class Problem:
    """One way a run broke the contract (a failure) or looks wrong (a warning)."""

    kind: str  # FAILURE_KINDS, or a warning: "message", "slow"
    key: str  # groups problems of one cause: the exception and where it is raised, the offending line's shape
    detail: str = ""

    @property
    def failure(self) -> bool:
        return self.kind in FAILURE_KINDS

    @property
    def label(self) -> str:
        return f"{self.kind}: {self.key}"


@dataclass
class Outcome:
    case: Case
    mode: str  # "in-process" or "subprocess"
    folder: str
    code: int | None  # None when the run was stopped or crashed
    stdout: str
    stderr: str
    seconds: float
    exception: str | None = None  # the traceback of an exception that escaped main, or where a hang was stopped
    problems: list[Problem] = field(default_factory=list)

    @property
    def failures(self) -> list[Problem]:
        return [p for p in self.problems if p.failure]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.failure]


class CaseTimeout(BaseException):
    """Raised by SIGALRM inside a case that overran its bound (a BaseException: ``except Exception`` won't eat it)."""


def _alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout


class _Bytes(io.BytesIO):
    def close(self) -> None:  # keep the bytes when the tool closes its stream
        pass


def _stream(errors: str) -> io.TextIOWrapper:
    """Like a real process's stdout or stderr piped to a file: UTF-8, not a terminal."""
    return io.TextIOWrapper(_Bytes(), encoding="utf-8", errors=errors, write_through=True)


def _text_of(stream: io.TextIOWrapper) -> str:
    with contextlib.suppress(ValueError):
        stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("utf-8", "replace")


def _exit_code(value: object, stderr: io.TextIOWrapper) -> int:
    """The process exit code for ``main``'s return value or ``SystemExit.code``, as Python computes it."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=stderr)
    return 1


def _flush_all() -> None:
    for stream in (sys.__stdout__, sys.__stderr__):
        if stream is not None:
            with contextlib.suppress(ValueError, OSError):
                stream.flush()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)  # C stdio buffers


@contextlib.contextmanager
def _capture_fds() -> Iterator[list[str]]:
    """Capture what C code writes to file descriptors 1 and 2 (HiGHS, OR-Tools); yields [stdout, stderr] at exit."""
    captured: list[str] = []
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        _flush_all()
        saved = [os.dup(1), os.dup(2)]
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            yield captured
        finally:
            _flush_all()
            for fd, old in zip((1, 2), saved, strict=True):
                os.dup2(old, fd)
                os.close(old)
            for file in (out, err):
                file.seek(0)
                captured.append(file.read().decode("utf-8", "replace"))


def run_inprocess(case: Case, folder: Path, timeout: float | None = None, *, fds: bool = False) -> Outcome:
    """Run ``dse_milp.cli.main(argv)`` in this process, in the case's folder, with a SIGALRM time bound.

    With ``fds``, what is written straight to file descriptors 1 and 2 (by C code) is appended to
    stdout and stderr (the worker processes do this; it would disturb pytest's own capture).
    """
    from dse_milp.cli import main

    case.materialise(folder)
    argv = case.argv_in(folder)
    out, err = _stream("strict"), _stream("backslashreplace")
    cwd, stdin = os.getcwd(), sys.stdin
    code: int | None = None
    error: BaseException | None = None
    exception: str | None = None
    previous = signal.signal(signal.SIGALRM, _alarm)
    started = time.perf_counter()
    with _capture_fds() if fds else contextlib.nullcontext([]) as c_output:
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout or case.timeout)
            try:
                os.chdir(folder)
                sys.stdin = io.StringIO("")
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    try:
                        code = _exit_code(main(argv), err)
                    except SystemExit as exc:
                        code = _exit_code(exc.code, err)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException as exc:  # CaseTimeout, or an exception that escaped main
            error, exception = exc, traceback.format_exc()
        finally:
            seconds = time.perf_counter() - started
            signal.signal(signal.SIGALRM, previous)
            os.chdir(cwd)
            sys.stdin = stdin
    c_out, c_err = c_output or ["", ""]
    stdout, stderr = _text_of(out) + c_out, _text_of(err) + c_err
    outcome = Outcome(case, "in-process", str(folder), code, stdout, stderr, seconds, exception)
    if isinstance(error, CaseTimeout):
        outcome.problems.append(Problem("hang", f"stopped in {_where(exception or '')}", exception or ""))
    elif error is not None:
        outcome.code = 1
        key = f"{type(error).__name__} at {_where(exception or '')}"
        outcome.problems.append(Problem("traceback", key, exception or ""))
    outcome.problems += check(outcome)
    return outcome


def run_subprocess(case: Case, folder: Path, timeout: float | None = None) -> Outcome:
    """Run ``python -m dse_milp argv`` as a real process in the case's folder."""
    case.materialise(folder)
    argv = [sys.executable, "-m", "dse_milp", *case.argv_in(folder)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            argv,
            cwd=folder,
            capture_output=True,
            timeout=timeout or case.timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        seconds = time.perf_counter() - started
        out, err = (x.decode("utf-8", "replace") if x else "" for x in (exc.stdout, exc.stderr))
        outcome = Outcome(case, "subprocess", str(folder), None, out, err, seconds)
        outcome.problems.append(Problem("hang", "process killed at the time bound"))
        outcome.problems += check(outcome)
        return outcome
    seconds = time.perf_counter() - started
    out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    code: int | None = proc.returncode
    outcome = Outcome(case, "subprocess", str(folder), code, out, err, seconds)
    if proc.returncode < 0:
        outcome.code = None
        outcome.problems.append(Problem("crash", f"killed by {signal.Signals(-proc.returncode).name}"))
    outcome.problems += check(outcome)
    return outcome


def _frames(text: str) -> list[tuple[str, str]]:
    """(file, function) of every frame in a formatted traceback, outermost first."""
    return re.findall(r'File "([^"]+)", line \d+, in (\S+)', text)


def _relative(filename: str) -> str:
    with contextlib.suppress(ValueError):
        return str(Path(filename).resolve().relative_to(REPO))
    parts = Path(filename).parts
    return "/".join(parts[parts.index("site-packages") + 1 :]) if "site-packages" in parts else Path(filename).name


def _where(text: str) -> str:
    """The innermost frame in the package (with the innermost frame of all when that is elsewhere)."""
    frames = [(_relative(f), fn) for f, fn in _frames(text) if Path(f).resolve() != Path(__file__).resolve()]
    ours = [f"{f}:{fn}" for f, fn in frames if f.split("/")[0] in PACKAGES and not f.startswith("tests/")]
    if not frames:
        return "?"
    innermost = f"{frames[-1][0]}:{frames[-1][1]}"
    if not ours:
        return innermost
    return ours[-1] if ours[-1] == innermost else f"{ours[-1]} (in {innermost})"


def _exception_name(text: str) -> str:
    """The exception type of the last traceback in a text: the first unindented line after its frames."""
    lines = text.splitlines()
    last_frame = max((i for i, line in enumerate(lines) if line.startswith('  File "')), default=-1)
    for line in lines[last_frame + 1 :]:
        if line and not line.startswith(" "):
            return line.split(":")[0].strip().rsplit(".", 1)[-1]
    return "?"


def _traceback_key(text: str) -> str:
    return f"{_exception_name(text)} at {_where(text)}"


def _shape(line: str, folder: str) -> str:
    """A line with its case-specific parts blanked, for grouping."""
    line = line.replace(folder, "{dir}")
    line = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", line)
    line = re.sub(r"\d+", "N", line)
    return line[:80]


PYDANTIC = re.compile(r"pydantic|input_value=|input_type=|errors\.pydantic\.dev|validation errors? for ")
PYTHON_REPR = re.compile(r"<class '|object at 0x|<built-in |<function |datetime\.(date|datetime)\(|Decimal\(")
EXCEPTION_NAME = re.compile(
    r"\b(ValueError|TypeError|KeyError|IndexError|AttributeError|OverflowError|ZeroDivisionError|RecursionError|"
    r"MemoryError|UnicodeDecodeError|UnicodeEncodeError|AssertionError|RuntimeError|NotImplementedError|"
    r"ConstructorError|ScannerError|ParserError|ComposerError|ReaderError)\b"
)
WARNING = re.compile(r"\b\w*Warning: ")


def check(outcome: Outcome) -> list[Problem]:
    """The contract, then the softer checks (warnings)."""
    case, code, out, err = outcome.case, outcome.code, outcome.stdout, outcome.stderr
    problems: list[Problem] = []
    for name, text in (("stdout", out), ("stderr", err)):
        if "Traceback" in text:
            problems.append(Problem("traceback", f"{_traceback_key(text)} (printed on {name})", text))
    if outcome.seconds > case.timeout and not any(p.kind == "hang" for p in outcome.problems):
        problems.append(Problem("hang", f"took {outcome.seconds:.0f} s > {case.timeout:.0f} s"))
    if code is not None and code not in ALLOWED_CODES and outcome.exception is None:
        first = err.strip().splitlines()[0] if err.strip() else "(no stderr)"
        problems.append(Problem("exit-code", f"exit {code}: {_shape(first, outcome.folder)}", err[-2000:]))
    if code == 2:
        lines = err.splitlines()
        if not err.strip():
            problems.append(Problem("stderr-format", "exit 2 with nothing on stderr"))
        else:
            bad = [line for line in lines if not line.startswith("error:")]
            if bad:
                key = (
                    "empty line"
                    if not bad[0].strip()
                    else f"line not starting with 'error:': {_shape(bad[0], outcome.folder)}"
                )
                problems.append(Problem("stderr-format", key, err[:2000]))
    earlier = any(p.failure for p in outcome.problems) or outcome.exception is not None
    if case.expect is not None and code is not None and code not in case.expect and not problems and not earlier:
        first = err.strip().splitlines()[0] if err.strip() else "(no stderr)"
        expected = "/".join(map(str, sorted(case.expect)))
        problems.append(
            Problem("unexpected-exit", f"exit {code}, expected {expected}: {_shape(first, outcome.folder)}")
        )
    problems += _warnings(outcome)
    return problems


def _warnings(outcome: Outcome) -> list[Problem]:
    case, code, out, err = outcome.case, outcome.code, outcome.stdout, outcome.stderr
    found: list[Problem] = []

    def warn(key: str, line: str) -> None:
        found.append(Problem("message", key, line[:300]))

    for line in err.splitlines():
        if PYDANTIC.search(line):
            warn("pydantic wording in a message", line)
        elif PYTHON_REPR.search(line):
            warn("a Python repr in a message", line)
        elif EXCEPTION_NAME.search(line) and "Traceback" not in err:
            warn(f"a raw exception name in a message ({EXCEPTION_NAME.search(line).group(1)})", line)  # type: ignore[union-attr]
        elif re.search(r"\[Errno \d+\]", line):
            warn("a raw OSError text in a message", line)
        elif WARNING.search(line):
            warn(f"a Python warning on stderr ({WARNING.search(line).group(0).strip()})", line)  # type: ignore[union-attr]
        elif len(line) > 1000:
            warn("a line of more than 1,000 characters", line)
    if "\x1b[" in out + err and "\x1b" not in "".join(case.argv) and not any(b"\x1b" in c for _, c in case.files):
        warn("ANSI escapes in output that is not a terminal", (out + err)[:300])
    if ":x:" in repr(case) and "\u274c" in out + err:
        warn("rich emoji code ':x:' rendered as an emoji", "")
    quiet = "--quiet" in case.argv
    shown = case.echo is None or "".join(case.echo.split()) in "".join(out.split())
    if code == 0 and not shown and not quiet and case.argv[:1] == ("solve",):
        warn("a name with rich markup is not printed verbatim", case.echo)
    if code == 3 and any(not line.startswith("infeasible:") for line in err.splitlines()):
        warn("exit 3 with a stderr line not starting with 'infeasible:'", err)
    if code == 4 and any(not line.startswith("time limit:") for line in err.splitlines()):
        warn("exit 4 with a stderr line not starting with 'time limit:'", err)
    if code == 0 and err.strip() and not found:
        warn("stderr output on success", err)
    if code == 0 and not out.strip() and "--help" not in case.argv:
        warn("success with nothing on stdout", "")
    if outcome.seconds > SLOW_SECONDS and outcome.seconds <= case.timeout:
        found.append(Problem("slow", f"more than {SLOW_SECONDS:.0f} s", f"{outcome.seconds:.1f} s"))
    return found


def compare(inprocess: Outcome, real: Outcome) -> list[Problem]:
    """A real process must end like the in-process run of the same case."""
    problems: list[Problem] = []
    if inprocess.code != real.code:
        problems.append(Problem("mismatch", f"exit {real.code} as a process, {inprocess.code} in-process"))
    elif real.code == 2 and inprocess.stderr.replace(inprocess.folder, "{dir}") != real.stderr.replace(
        real.folder, "{dir}"
    ):
        problems.append(Problem("mismatch", "different error messages as a process", real.stderr[:2000]))
    return problems


# --------------------------------------------------------------------------- running many cases


@dataclass(frozen=True)
class Task:
    case: Case
    mode: str = "in-process"  # or "subprocess"

    def folder(self, root: Path) -> Path:
        tag = "sub" if self.mode == "subprocess" else "in"
        return root / (f"s{self.case.seed}-c{self.case.index}-{tag}" if self.case.index >= 0 else self.case.family)


def run_task(task: Task, root: Path, *, capture_fds: bool = False) -> Outcome:
    if task.mode == "subprocess":
        outcome = run_subprocess(task.case, task.folder(root))
    else:
        outcome = run_inprocess(task.case, task.folder(root), fds=capture_fds)
    outcome.stdout, outcome.stderr = _clip(outcome.stdout), _clip(outcome.stderr)
    return outcome


def _clip(text: str, limit: int = 100_000) -> str:
    return (
        text
        if len(text) <= limit
        else f"{text[: limit // 2]}\n...[{len(text) - limit} chars]...\n{text[-limit // 2 :]}"
    )


def _worker(conn: Connection, root: str, memory_mb: int) -> None:
    """A worker process: runs the tasks it is sent, one at a time, and sends back their outcomes."""
    if memory_mb > 0:
        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import dse_milp.cli  # noqa: F401  (once per worker, not per case)

    while True:
        task = conn.recv()
        if task is None:
            return
        outcome = run_task(task, Path(root), capture_fds=True)
        conn.send(outcome)
        if _stopped(outcome):  # threads the case started may still run: start afresh
            return


def _stopped(outcome: Outcome) -> bool:
    return any(p.kind == "hang" for p in outcome.problems)


class _Slot:
    def __init__(self, ctx: Any, root: Path, memory_mb: int) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, str(root), memory_mb), daemon=True)
        self.process.start()
        child.close()
        self.task: tuple[int, Task] | None = None
        self.started = 0.0

    def give(self, number: int, task: Task) -> None:
        self.task, self.started = (number, task), time.monotonic()
        with contextlib.suppress(OSError):  # a worker that died: its pipe reads as ready, then EOF
            self.conn.send(task)

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


def run_tasks(
    tasks: Sequence[Task],
    root: Path,
    *,
    jobs: int = 2,
    memory_mb: int = MEMORY_LIMIT_MB,
    progress: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run tasks in ``jobs`` worker processes (0: in this process), in order of the result list."""
    root.mkdir(parents=True, exist_ok=True)
    results: dict[int, Outcome] = {}
    if jobs <= 0:
        for number, task in enumerate(tasks):
            results[number] = run_task(task, root)
            if progress:
                progress(results[number])
        return [results[i] for i in range(len(tasks))]
    ctx = multiprocessing.get_context("spawn")
    pending = deque(enumerate(tasks))
    slots = [_Slot(ctx, root, memory_mb) for _ in range(min(jobs, len(tasks)))]
    try:
        while len(results) < len(tasks):
            for slot in slots:
                if slot.task is None and pending:
                    slot.give(*pending.popleft())
            busy = [slot for slot in slots if slot.task is not None]
            deadline = min(s.started + s.task[1].case.timeout + KILL_GRACE for s in busy if s.task is not None)
            ready = wait([slot.conn for slot in busy], timeout=max(0.0, deadline - time.monotonic()))
            for i, slot in enumerate(slots):
                if slot.task is None:
                    continue
                number, task = slot.task
                outcome: Outcome | None = None
                if slot.conn in ready:
                    try:
                        outcome = slot.conn.recv()
                    except (EOFError, OSError):
                        outcome = _lost(task, root, slot, "crash")
                elif time.monotonic() > slot.started + task.case.timeout + KILL_GRACE:
                    slot.kill()
                    outcome = _lost(task, root, slot, "hang")
                if outcome is None:
                    continue
                results[number] = outcome
                if progress:
                    progress(outcome)
                slot.task = None
                if _stopped(outcome) or slot.conn.closed or not slot.process.is_alive():
                    if not slot.conn.closed:
                        slot.stop()
                    slots[i] = _Slot(ctx, root, memory_mb)
    finally:
        for slot in slots:
            if slot.task is not None:
                slot.kill()
            else:
                slot.stop()
    return [results[i] for i in range(len(tasks))]


def _lost(task: Task, root: Path, slot: _Slot, kind: str) -> Outcome:
    """The outcome of a task whose worker died (a crash) or was killed (a hang in code SIGALRM cannot stop)."""
    slot.process.join(timeout=5)
    seconds = time.monotonic() - slot.started
    outcome = Outcome(task.case, task.mode, str(task.folder(root)), None, "", "", seconds)
    if kind == "hang":
        outcome.problems.append(Problem("hang", "worker killed: the case ignored SIGALRM (stuck in C code?)"))
    else:
        exitcode = slot.process.exitcode
        how = signal.Signals(-exitcode).name if exitcode is not None and exitcode < 0 else f"exit {exitcode}"
        outcome.problems.append(Problem("crash", f"worker process died ({how})"))
    return outcome


def subprocess_sample(cases: Sequence[Case], count: int) -> list[Case]:
    """A few cases to run as real processes too: the first of each family, then evenly spaced ones."""
    chosen: list[Case] = []
    for family in ("valid", "network", "raw", "options", "accelerator", "suite", "bench"):
        first = next((c for c in cases if c.family == family), None)
        if first is not None and len(chosen) < count:
            chosen.append(first)
    rest = [c for c in cases if c not in chosen]
    step = max(1, len(rest) // max(1, count - len(chosen)))
    chosen += rest[::step][: count - len(chosen)]
    return chosen


def run_cases(
    cases: Sequence[Case],
    root: Path,
    *,
    jobs: int = 2,
    subprocesses: int = 0,
    memory_mb: int = MEMORY_LIMIT_MB,
    progress: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Every case in-process, and ``subprocesses`` of them also as real processes, compared to the former."""
    sample = subprocess_sample(cases, subprocesses) if subprocesses else []
    tasks = [Task(c) for c in cases] + [Task(c, "subprocess") for c in sample]
    outcomes = run_tasks(tasks, root, jobs=jobs, memory_mb=memory_mb, progress=progress)
    inprocess = {(o.case.seed, o.case.index, o.case.family): o for o in outcomes if o.mode == "in-process"}
    for outcome in outcomes:
        if outcome.mode == "subprocess":
            twin = inprocess[(outcome.case.seed, outcome.case.index, outcome.case.family)]
            if not outcome.failures and not twin.failures:
                outcome.problems += compare(twin, outcome)
    return outcomes


# --------------------------------------------------------------------------- reports


def _excerpt(text: str, lines: int = 12, width: int = 300) -> str:
    kept = [line if len(line) <= width else f"{line[:width]}...({len(line)} chars)" for line in text.splitlines()]
    if len(kept) > lines:
        kept = [*kept[:lines], f"... ({len(kept) - lines} more lines)"]
    return "\n".join(kept)


def _file_preview(content: bytes, limit: int = 600) -> str:
    text = content.decode("utf-8", "backslashreplace")
    text = "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else f"{text[:limit]}...({len(content)} bytes)"


def describe(outcome: Outcome, *, full: bool = False) -> str:
    """Everything needed to reproduce and understand one outcome."""
    case = outcome.case
    lines = [
        f"=== {case.name} ({case.family}, {outcome.mode}): exit {outcome.code}, {outcome.seconds:.2f} s",
        f"repro: {case.repro}",
        f"argv:  {shlex.join(case.argv_in(Path(outcome.folder)))}",
    ]
    lines += [f"note:  {note}" for note in case.notes]
    for problem in outcome.problems:
        lines.append(f"{'FAIL' if problem.failure else 'warn'}:  {problem.label}")
    for name, content in case.files:
        preview = _file_preview(content, 100_000 if full else 600)
        lines.append(f"--- file {name} ({len(content)} bytes):\n{preview}")
    for name, text in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
        if text:
            lines.append(f"--- {name}:\n{text if full else _excerpt(text)}")
    if outcome.exception:
        lines.append(f"--- exception:\n{outcome.exception if full else _excerpt(outcome.exception, 40)}")
    return "\n".join(lines)


def failing(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.failures]


def by_problem(outcomes: Sequence[Outcome], *, failures: bool = True) -> dict[str, list[Outcome]]:
    """Outcomes grouped by the label of each failure (or warning) they show, most frequent first."""
    groups: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        for label in dict.fromkeys(p.label for p in outcome.problems if p.failure == failures):
            groups.setdefault(label, []).append(outcome)
    return dict(sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])))


def report(outcomes: Sequence[Outcome]) -> str:
    """Failures grouped by class, with every failing case described after its class's summary."""
    groups = by_problem(outcomes)
    lines = [f"{len(failing(outcomes))} of {len(outcomes)} runs failed, in {len(groups)} classes"]
    for label, members in groups.items():
        lines.append(f"\n##### {label}: {len(members)} case(s)")
        lines += [describe(outcome) for outcome in members]
    return "\n".join(lines)


def outcome_table(outcomes: Sequence[Outcome]) -> str:
    """Exit codes and failures per family and mode, as a Markdown table."""
    rows: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        family = outcome.case.family + (" (subprocess)" if outcome.mode == "subprocess" else "")
        row = rows.setdefault(family, Counter())
        row["runs"] += 1
        code = outcome.code
        row[str(code) if code in ALLOWED_CODES else "other"] += 1
        row["failing"] += bool(outcome.failures)
        row["warned"] += bool(outcome.warnings)
        row["ms"] += round(outcome.seconds * 1000)
    columns = ["runs", "0", "2", "3", "4", "other", "failing", "warned"]
    lines = ["| family | " + " | ".join(columns) + " | mean s |", "|---" * (len(columns) + 2) + "|"]
    for family, row in sorted(rows.items(), key=lambda item: -item[1]["runs"]):
        cells = " | ".join(str(row[c]) for c in columns)
        lines.append(f"| {family} | {cells} | {row['ms'] / 1000 / row['runs']:.2f} |")
    return "\n".join(lines)


def class_table(outcomes: Sequence[Outcome], *, failures: bool = True) -> str:
    """One row per failure (or warning) class: how many cases, and the first one's repro."""
    groups = by_problem(outcomes, failures=failures)
    lines = ["| class | cases | first | repro |", "|---|---:|---|---|"]
    for label, members in groups.items():
        first = members[0]
        cell = label.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {cell} | {len(members)} | {first.case.name} ({first.mode}) | `{first.case.repro}` |")
    return "\n".join(lines)
