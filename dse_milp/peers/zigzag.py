"""Run ZigZag (KULeuven-MICAS/zigzag, PyPI ``zigzag-dse``, 3.9.x) on one of our layers and bring the
mapping it chooses back into our model.

What is built (``hardware``, ``workload``, ``spatial_mapping``), written as YAML to a temporary folder:

- the workload: one ZigZag layer with ZigZag's own ONNX convention (``zigzag/parser/onnx/conv_parser.py``):
  ``O[b][g][k][oy][ox] += W[g][k][c][fy][fx] * I[b][g][c][iy][ix]`` with ``K = m // groups``,
  ``C = n // groups``, ``G = groups``, ``OY = r``, ``OX = c``, ``FY = kh``, ``FX = kw``, ``B = 1``,
  ``iy = sh*oy + fy``, ``ix = sw*ox + fx``, the input's true size as ``pr_loop_sizes`` and the padding;
  a matmul is the same nest with ``OY`` = its rows, ``OX = FY = FX = 1``; a pool is ZigZag's
  ``Pooling`` (``W`` at 0 bits); an add of two tensors is ZigZag's ``Add`` (the second tensor is ``W``).
  Precisions in bits: ``I`` = input, ``W`` = weight, ``O`` = partial sum, ``O_final`` = output;
- the hardware: DRAM on top (bandwidth ``dram_bandwidth`` bytes per cycle, byte-granular), then one
  level holding ``I1``/``I2``/``O`` of exactly the unified buffer's capacity (or one level per
  operand for separate buffers), then a ``D1 x D2`` MAC array of ``macs`` MACs (``pe_array``):
  ``D1`` unrolls ``K`` (``G`` when the layer has no ``K``), ``D2`` unrolls ``C`` (``OX`` when it has no
  ``C``), each by ``min(side, extent)`` (ZigZag turns a side that does not divide the extent into a
  fractional unrolling). No register level: ZigZag 3.9 does not need one (its
  ``gemm_l1_l3`` example feeds ``I1``/``I2`` straight from L1), so the buffer feeds the array;
- the search: ZigZag's API (``get_hardware_performance_zigzag``) with LOMA, uneven mappings, the
  given ``lpf_limit`` and the criterion ``opt``: ``latency`` (the API's default), ``energy`` or
  ``EDP``; ZigZag has no DRAM-traffic criterion, so ``dram`` runs ``energy`` on hardware whose only
  cost is the DRAM's (buffer and MAC energies 0; a DRAM access costs the same per byte either way).

Back from ZigZag (``ZigzagResult``): its DRAM bytes (reads and writes at the top level, every operand,
partial sums included, counted from ``Mapping.unit_mem_data_movement``: elements x precision), energy,
latency, wall seconds, the temporal mapping (per operand, per memory level, loops inner to outer) and
spatial mapping as plain data, and the mapping translated into ours (``translate``) where it can be.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dse_milp.accelerator import Accelerator
from dse_milp.traffic import LOOPS, Levels, Mapping, Tiling, footprint, trip_count
from dse_milp.traffic import traffic as our_traffic
from dse_milp.workload import Layer, LayerKind, Operand

OPTS = ("latency", "energy", "EDP", "dram")
"""The criteria: ZigZag's own (``get_hardware_performance_zigzag(opt=...)``; ``latency`` is its default),
and ``dram``: ZigZag's ``energy`` on a copy of the hardware whose only cost is DRAM access (buffer and MAC
energies 0), so that it minimises its own DRAM traffic (ties: least latency)."""

OURS: dict[str, str] = {"K": "m", "C": "n", "OY": "r", "OX": "c"}
"""ZigZag's loop dimensions that are our tile loops; ``G`` is our group loop."""

LAYER_OPERANDS: dict[str, Operand] = {"I": Operand.INPUT, "W": Operand.WEIGHT, "O": Operand.OUTPUT}
"""ZigZag's layer operands and ours (an add's second tensor, ZigZag's ``W``, is one of our inputs)."""

MEMORY_OPERANDS: dict[str, str] = {"I": "I1", "W": "I2", "O": "O"}
"""ZigZag's ``memory_operand_links``, as in its examples."""

Loop = tuple[str, float]
"""A ZigZag loop: its dimension and its size (a spatial size may be fractional)."""


def zigzag_available() -> bool:
    """Whether ZigZag (``zigzag-dse``, with ``six`` that its validator imports) can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("zigzag", "six"))


# --- inputs -------------------------------------------------------------------------------------------


def pe_array(macs: int) -> tuple[int, int]:
    """The MAC array ``(D1, D2)``: square when ``macs`` is a square, else ``D1`` the largest power
    of two not above its square root and ``D2 = macs // D1``."""
    side = math.isqrt(macs)
    if side * side == macs:
        return side, side
    d1 = 1 << (side.bit_length() - 1)
    return d1, macs // d1


def _pr_padding(out: int, kernel: int, stride: int, pad: int, size: int) -> list[int]:
    """[before, after] padding such that ZigZag's input extent (its count of distinct ``stride*o + f``,
    less the padding) is ``size`` where it would exceed it (``LayerNode.calc_pr_dimension_size_total``)."""
    span = out * kernel - max(0, kernel - stride) * (out - 1)
    extra = max(0, span - size)
    before = min(pad, extra)
    return [before, extra - before]


def workload(layer: Layer) -> list[dict[str, Any]]:
    """``layer`` as a one-layer ZigZag workload (the YAML's list of layers)."""
    bits = layer.precision
    if layer.kind is LayerKind.ADD:
        if layer.input_tensors != 2:
            raise ValueError(f"ZigZag's Add sums two tensors; {layer.name!r} sums {layer.input_tensors}")
        return [{
            "id": 0, "name": layer.name, "operator_type": "Add",
            "equation": "O[b][g][oy][ox]=W[b][g][oy][ox]+I[b][g][oy][ox]",
            "dimension_relations": [],
            "loop_dims": ["B", "G", "OY", "OX"], "loop_sizes": [1, layer.groups, layer.r, layer.c],
            "operand_precision": {"I": bits.input, "W": bits.input, "O": bits.psum, "O_final": bits.output},
            "operand_source": {"I": 0, "W": 0},
        }]  # fmt: skip
    relations = [f"ix={layer.sw}*ox+1*fx", f"iy={layer.sh}*oy+1*fy"]
    padding = [
        _pr_padding(layer.c, layer.kw, layer.sw, layer.pw, layer.w),
        _pr_padding(layer.r, layer.kh, layer.sh, layer.ph, layer.h),
    ]
    common = {
        "id": 0, "name": layer.name, "dimension_relations": relations,
        "pr_loop_dims": ["IX", "IY"], "pr_loop_sizes": [layer.w, layer.h], "padding": padding,
    }  # fmt: skip
    if layer.kind is LayerKind.POOL:
        return [common | {
            "operator_type": "Pooling",
            "equation": "O[b][g][oy][ox]+=W[fx][fy]*I[b][g][iy][ix]",
            "loop_dims": ["B", "G", "OY", "OX", "FX", "FY"],
            "loop_sizes": [1, layer.groups, layer.r, layer.c, layer.kw, layer.kh],
            "operand_precision": {"I": bits.input, "W": 0, "O": bits.psum, "O_final": bits.output},
            "operand_source": {"I": 0, "W": 0},
        }]  # fmt: skip
    return [common | {
        "operator_type": "Conv",
        "equation": "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
        "loop_dims": ["B", "K", "G", "OX", "OY", "C", "FX", "FY"],
        "loop_sizes": [1, layer.mg, layer.groups, layer.c, layer.r, layer.ng, layer.kw, layer.kh],
        "operand_precision": {"I": bits.input, "W": bits.weight, "O": bits.psum, "O_final": bits.output},
        "operand_source": {"I": 0, "W": 0},
    }]  # fmt: skip


def _zigzag_dims(layer: Layer) -> dict[str, int]:
    """The extent of each of ``layer``'s ZigZag loop dimensions (as ``workload`` writes them)."""
    entry = workload(layer)[0]
    return dict(zip(entry["loop_dims"], entry["loop_sizes"], strict=True))


def spatial_mapping(layer: Layer, accelerator: Accelerator) -> dict[str, list[str]]:
    """The user spatial mapping: ``D1`` unrolls ``K`` (or ``G``), ``D2`` unrolls ``C`` (or ``OX``), each
    ``min(side, extent)``; a dimension of extent 1 is not unrolled (ZigZag then fills that side itself)."""
    dims = _zigzag_dims(layer)
    d1, d2 = pe_array(accelerator.macs)
    mapping: dict[str, list[str]] = {}
    for oa, side, choices in (("D1", d1, ("K", "G")), ("D2", d2, ("C", "OX"))):
        dim = next((d for d in choices if dims.get(d, 1) > 1), None)
        if dim is not None:
            mapping[oa] = [f"{dim}, {min(side, dims[dim])}"]
    return mapping


def mapping_yaml(layer: Layer, accelerator: Accelerator) -> list[dict[str, Any]]:
    """ZigZag's mapping file: the spatial mapping and the operand links, as the ``default`` entry."""
    return [{"name": "default", "spatial_mapping": spatial_mapping(layer, accelerator),
             "memory_operand_links": dict(MEMORY_OPERANDS)}]  # fmt: skip


def _port(name: str, kind: str, bits_min: int, bits_max: int, allocation: list[str]) -> dict[str, Any]:
    return {"name": name, "type": kind, "bandwidth_min": bits_min, "bandwidth_max": bits_max,
            "allocation": allocation}  # fmt: skip


DRAM_BITS = 10**13
"""The DRAM level's capacity in bits: anything a layer needs."""


def hardware(accelerator: Accelerator, dram_energy_only: bool = False) -> dict[str, Any]:
    """``accelerator`` as a ZigZag hardware description: its buffer(s) under a DRAM.

    Costs: r_cost/w_cost are per access of ``bandwidth_max`` bits (ZigZag counts accesses of that
    width), so DRAM costs ``energy.dram_byte`` per byte and the buffer ``energy.sram_byte``; with
    ``dram_energy_only`` the buffer and the MACs cost nothing.
    """
    sram_byte = 0.0 if dram_energy_only else accelerator.energy.sram_byte
    mac = 0.0 if dram_energy_only else accelerator.energy.mac
    if accelerator.split is not None:
        raise ValueError(f"{accelerator.name}: a free split of the buffer has no ZigZag counterpart")
    d1, d2 = pe_array(accelerator.macs)
    dram_max = max(8, round(accelerator.dram_bandwidth * 8))
    wide = 32 * accelerator.macs  # the buffer never starves the array: only DRAM traffic is compared
    memories: dict[str, Any] = {}
    for buffer in accelerator.buffers:
        ops = [MEMORY_OPERANDS[zz] for zz, ours in LAYER_OPERANDS.items() if ours in buffer.operands]
        ports = []
        for i, op in enumerate(o for o in ops if o != "O"):
            ports.append(_port(f"r_port_{i + 1}", "read", 8, wide, [f"{op}, tl"]))
        if "O" in ops:
            ports.append(_port(f"rw_port_{len(ports) + 1}", "read_write", 8, wide, ["O, tl", "O, fl"]))
        dma = [f"{op}, fh" for op in ops] + (["O, th"] if "O" in ops else [])
        ports.append(_port(f"rw_port_{len(ports) + 1}", "read_write", 8, dram_max, dma))
        memories[f"buffer_{buffer.name}"] = {
            "size": buffer.capacity_bytes * 8,
            "r_cost": sram_byte * wide / 8,
            "w_cost": sram_byte * wide / 8,
            "area": 0,
            "latency": 1,
            "operands": ops,
            "ports": ports,
            "served_dimensions": ["D1", "D2"],
            "force_double_buffering": accelerator.double_buffering,
        }
    memories["dram"] = {
        "size": DRAM_BITS,
        "r_cost": accelerator.energy.dram_byte * dram_max / 8,
        "w_cost": accelerator.energy.dram_byte * dram_max / 8,
        "area": 0,
        "latency": 1,
        "operands": ["I1", "I2", "O"],
        "ports": [_port("rw_port_1", "read_write", 8, dram_max,
                        ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"])],
        "served_dimensions": ["D1", "D2"],
    }  # fmt: skip
    return {
        "name": accelerator.name,
        "memories": memories,
        "operational_array": {
            "unit_energy": mac,
            "unit_area": 1,
            "dimensions": ["D1", "D2"],
            "sizes": [d1, d2],
        },
    }


@dataclass(frozen=True)
class Inputs:
    """The three YAML files ZigZag reads."""

    workload: Path
    hardware: Path
    mapping: Path


def write_inputs(layer: Layer, accelerator: Accelerator, folder: Path, dram_energy_only: bool = False) -> Inputs:
    """Write ``layer``'s workload, ``accelerator``'s hardware and the mapping as YAML under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = Inputs(folder / "workload.yaml", folder / "hardware.yaml", folder / "mapping.yaml")
    for path, data in ((paths.workload, workload(layer)), (paths.hardware, hardware(accelerator, dram_energy_only)),
                       (paths.mapping, mapping_yaml(layer, accelerator))):  # fmt: skip
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return paths


# --- translation --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Translation:
    mapping: Mapping | None
    reason: str | None = None
    """Why the mapping is not representable (None when it is)."""
    notes: tuple[str, ...] = ()
    """What the translation changed that cannot add traffic in our model (a group loop moved outermost)."""


def _integral(value: float) -> bool:
    return abs(value - round(value)) <= 1e-9 * max(1.0, abs(value))


class _Unrepresentable(Exception):
    pass


def translate(layer: Layer, temporal: dict[str, list[list[Loop]]], spatial: dict[str, list[list[Loop]]]) -> Translation:
    """ZigZag's mapping of ``layer`` in our model, or None with the reason.

    ``temporal``: per layer operand (``I``, ``W``, ``O``), per memory level (inner to outer, DRAM last)
    the temporal loops, inner to outer (LOMA allocates one ordering, so each operand's loops
    concatenate to the same sequence). ``spatial``: per operand, per architecture level, the spatial
    loops (level 0 is the array).

    The tile of each dimension is the product of its loops below the lowest operand's DRAM cut,
    spatial loops included; the loops above it, adjacent loops of one dimension merged, are our
    DRAM loops (outer to inner, single-trip dimensions outermost); each operand's level is the
    number of them outside its own cut. ``G`` loops below the cut make a tile span groups; above
    it they are our group loop, outermost.
    """
    try:
        return _translate(layer, temporal, spatial)
    except _Unrepresentable as problem:
        return Translation(None, str(problem))


def _translate(
    layer: Layer, temporal: dict[str, list[list[Loop]]], spatial: dict[str, list[list[Loop]]]
) -> Translation:
    operands = [op for op in ("I", "W", "O") if op in temporal]
    sequences = {op: [loop for level in temporal[op] for loop in level] for op in operands}
    ordering = sequences[operands[0]]
    if any([(d, float(s)) for d, s in seq] != [(d, float(s)) for d, s in ordering] for seq in sequences.values()):
        raise _Unrepresentable("operands see different loop orderings")
    cuts = {op: len(ordering) - len(temporal[op][-1]) for op in operands}
    low = min(cuts.values())
    inner, outer = ordering[:low], ordering[low:]
    sizes = dict(_zigzag_dims(layer))
    below: dict[str, float] = dict.fromkeys(sizes, 1.0)
    for level in spatial[operands[0]]:
        for dim, size in level:
            below[dim] *= size
    for dim, size in inner:
        below[dim] *= size
    # the DRAM loops, inner to outer, adjacent loops of one dimension merged, each with the operands
    # whose cut lies below it
    merged: list[tuple[str, float, int]] = []  # (dim, trips, first index in ordering)
    for i, (dim, size) in enumerate(outer, start=low):
        if merged and merged[-1][0] == dim and all(c <= merged[-1][2] or c > i for c in cuts.values()):
            merged[-1] = (dim, merged[-1][1] * size, merged[-1][2])
        elif merged and merged[-1][0] == dim:
            raise _Unrepresentable(f"an operand's buffer cut splits the DRAM loops of {dim}")
        else:
            merged.append((dim, size, i))
    notes: list[str] = []
    bad = [dim for dim, _, _ in merged if dim not in OURS and dim != "G"]
    if bad:
        raise _Unrepresentable(f"loops of {', '.join(sorted(set(bad)))} above the buffer (ours keep them in a tile)")
    groups_above = [start for dim, _, start in merged if dim == "G"]
    wider = [op for op in operands if groups_above and cuts[op] > groups_above[0]]
    if wider:
        notes.append(
            f"{', '.join(wider)} hold(s) more groups than the tile in ZigZag; ours hold the tile's groups "
            "under the outermost group loop (a smaller block, and no more traffic)"
        )
    if groups_above and any(dim != "G" for dim, _, start in merged if start > groups_above[0]):
        notes.append("a group loop above the buffer is not outermost; ours is (that cannot add traffic)")
    ours = [(dim, trips, start) for dim, trips, start in merged if dim != "G"]
    seen = [dim for dim, _, _ in ours]
    repeated = sorted({d for d in seen if seen.count(d) > 1})
    if repeated:
        raise _Unrepresentable(f"DRAM loops of {', '.join(repeated)} are split by other loops")
    tiles: dict[str, int] = {}
    for zz, d in OURS.items():
        extent = layer.dims[d]
        trips = next((t for dim, t, _ in ours if dim == zz), 1.0)
        if not _integral(trips):
            raise _Unrepresentable(f"{zz} runs {trips:g} trips above the buffer")
        size = below.get(zz, 1.0)
        tile = round(size) if _integral(size) else math.ceil(size)
        if trip_count(extent, tile) != round(trips) or (_integral(size) and tile * round(trips) != extent):
            raise _Unrepresentable(f"{zz}: a tile of {size:g} and {trips:g} trips do not make the extent {extent}")
        if not _integral(size):
            notes.append(
                f"{zz}: ZigZag's greedy (fractional) unrolling averages a tile of {size:.4g}; ours is "
                f"{tile} with a shorter last tile ({round(trips)} trips either way)"
            )
        tiles[d] = tile
    groups = round(below.get("G", 1.0))
    if not _integral(below.get("G", 1.0)):
        raise _Unrepresentable(f"a tile spans {below['G']:g} groups")
    if groups > 1 and (tiles["m"], tiles["n"]) != (layer.mg, layer.ng):
        raise _Unrepresentable(f"the tile spans {groups} groups but not whole groups' channels")
    order_inner_to_outer = [OURS[dim] for dim, _, _ in ours]
    single = [d for d in LOOPS if d not in order_inner_to_outer]
    order = "".join(single) + "".join(reversed(order_inner_to_outer))
    # an operand's level: the single-trip loops plus the DRAM loops that start at or above its cut
    levels = {op: len(single) + sum(1 for _, _, start in ours if start >= cuts[op]) for op in operands}
    held = {o: len(LOOPS) for o in Operand}
    for op in operands:
        held[LAYER_OPERANDS[op]] = levels[op]
    if not layer.has_weights:  # a pool's W has no bits; an add's W is its second summed tensor: our input
        held[Operand.WEIGHT] = len(LOOPS)
        if layer.kind is LayerKind.ADD:
            # every loop of an add is relevant to every tensor, so the level changes no traffic: the deeper
            # of the two is taken (the smaller block, within what ZigZag holds)
            held[Operand.INPUT] = max(levels["I"], levels["W"])
            if levels["I"] != levels["W"]:
                notes.append(
                    f"the summed tensors sit at levels {levels['I']} (I) and {levels['W']} (W); ours "
                    f"holds both at {held[Operand.INPUT]} (no traffic changes: an add reuses nothing)"
                )
    mapping = Mapping(Tiling(**tiles), order, Levels(*(held[o] for o in Operand)), groups)
    return Translation(mapping, None, tuple(notes))


# --- running ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZigzagResult:
    layer: str
    opt: str
    """ZigZag's criterion."""
    dram_bytes: float
    """ZigZag's own DRAM traffic: reads and writes at the top level, every operand, partial sums included."""
    dram_bytes_by_operand: dict[str, dict[str, float]]
    """By ZigZag layer operand (``I``, ``W``, ``O``): ``read`` (DRAM to buffer) and ``write`` (buffer to DRAM)."""
    energy_pj: float
    """ZigZag's energy (with ``opt="dram"``, of its DRAM accesses only)."""
    latency_cycles: float
    """ZigZag's latency (``latency_total2``: with the first loads and the last stores)."""
    seconds: float
    """Wall seconds of the ZigZag call."""
    temporal_mapping: dict[str, list[list[Loop]]]
    """Per operand, per memory level (inner to outer, DRAM last), the loops LOMA allocated, inner to outer."""
    spatial_mapping: dict[str, dict[str, float]]
    """Per array dimension, the unrolled loop dimensions and their (possibly fractional) sizes."""
    mapping: Mapping | None
    """The chosen mapping in our model, or None (``reason``)."""
    reason: str | None = None
    notes: tuple[str, ...] = ()
    buffer_bits_used: dict[str, float] = field(default_factory=dict)
    """ZigZag's own view of the buffer: bits each operand holds there."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep ZigZag's INFO logging off the console, and undo the handler that its API's
    ``logging.basicConfig`` adds to the root logger (and the root's level it sets)."""
    root, package = logging.getLogger(), logging.getLogger("zigzag")
    handlers, root_level, package_level = list(root.handlers), root.level, package.level
    package.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(root_level)
        package.setLevel(package_level)


def _plain_temporal(cme: Any) -> dict[str, list[list[Loop]]]:
    origin = cme.temporal_mapping.mapping_dic_origin
    return {str(op): [[(str(d), float(s)) for d, s in level] for level in levels] for op, levels in origin.items()}


def _plain_spatial_levels(cme: Any) -> dict[str, list[list[Loop]]]:
    sm = cme.spatial_mapping.mapping_dict_origin
    return {str(op): [[(str(d), float(s)) for d, s in level] for level in levels] for op, levels in sm.items()}


def _plain_spatial(cme: Any) -> dict[str, dict[str, float]]:
    sm = cme.layer.spatial_mapping
    return {str(oa): {str(d): float(s) for d, s in sm[oa].items()} for oa in sm}


def dram_traffic_bits(cme: Any) -> dict[str, dict[str, float]]:
    """ZigZag's traffic at each operand's top memory level (the DRAM), in bits: ``read`` = elements
    read out to the level below (``rd ↓``), ``write`` = elements written in from below (``wr ↑``),
    each times its precision (partial sums at their width), as its cost model counts them."""
    from zigzag.hardware.architecture.memory_port import DataDirection
    from zigzag.mapping.data_movement import DataMoveAttr

    out: dict[str, dict[str, float]] = {}
    for op, patterns in cme.mapping.unit_mem_data_movement.items():
        top = patterns[-1]
        count = top.get_attribute(DataMoveAttr.DATA_ELEM_MOVE_COUNT)
        bits = top.get_attribute(DataMoveAttr.DATA_PRECISION)
        out[str(op)] = {
            "read": float(count.get(DataDirection.RD_OUT_TO_LOW) * bits.get(DataDirection.RD_OUT_TO_LOW)),
            "write": float(count.get(DataDirection.WR_IN_BY_LOW) * bits.get(DataDirection.WR_IN_BY_LOW)),
        }
    return out


def run_layer(layer: Layer, accelerator: Accelerator, lpf_limit: int = 6, opt: str = "latency",
              folder: Path | None = None) -> ZigzagResult:  # fmt: skip
    """Run ZigZag's LOMA on ``layer`` alone on ``accelerator`` and translate what it chooses.

    The inputs and ZigZag's dumps go to ``folder`` (a temporary folder, removed after, by default).
    """
    if opt not in OPTS:
        raise ValueError(f"opt must be one of {OPTS}, not {opt!r}")
    from zigzag.api import get_hardware_performance_zigzag

    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zigzag-")))
        paths = write_inputs(layer, accelerator, folder, dram_energy_only=opt == "dram")
        stack.enter_context(_quiet())
        start = time.perf_counter()
        energy, latency, cmes = get_hardware_performance_zigzag(
            str(paths.workload), str(paths.hardware), str(paths.mapping), opt="energy" if opt == "dram" else opt,
            lpf_limit=lpf_limit,
            dump_folder=str(folder / "out"), loma_show_progress_bar=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
    cme = cmes[0][1][0][0]  # SumStage's list of (cme, extra) per layer: one layer here
    by_operand = {op: {k: v / 8 for k, v in d.items()} for op, d in dram_traffic_bits(cme).items()}
    temporal = _plain_temporal(cme)
    translation = translate(layer, temporal, _plain_spatial_levels(cme))
    per_level = cme.mapping.data_bit_per_level_unrolled
    used = {str(op): float(bits[-2]) for op, bits in per_level.items()}
    return ZigzagResult(
        layer=layer.name,
        opt=opt,
        dram_bytes=sum(d["read"] + d["write"] for d in by_operand.values()),
        dram_bytes_by_operand=by_operand,
        energy_pj=float(energy),
        latency_cycles=float(latency),
        seconds=seconds,
        temporal_mapping=temporal,
        spatial_mapping=_plain_spatial(cme),
        mapping=translation.mapping,
        reason=translation.reason,
        notes=translation.notes,
        buffer_bits_used=used,
    )


# --- scoring in our model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OurScore:
    bytes: float
    """Our traffic of the mapping (``traffic(layer, mapping).total / 8``)."""
    fits: bool
    held_bytes: dict[str, float]
    """Bytes of each of our buffers the mapping's blocks occupy."""


def our_score(layer: Layer, accelerator: Accelerator, mapping: Mapping) -> OurScore:
    """Our traffic and buffer use for ``mapping`` (as ``dse_milp.check.check_mappings`` scores a layer run alone)."""
    held = accelerator.held_bytes(
        footprint(layer, mapping, accelerator.double_buffering, accelerator.accumulate_in_buffer)
    )
    fits = all(held[b.name] <= b.capacity_bytes for b in accelerator.buffers)
    return OurScore(our_traffic(layer, mapping).total / 8, fits, held)
