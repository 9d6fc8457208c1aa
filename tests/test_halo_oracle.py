"""An independent oracle for halo caching in fused groups.

A brute-force walk over the tiles of a fused group, written from the specification alone
(sets of positions, no closed forms), against ``group_cost``: the outside-tensor reads, the
extra MACs of every layer and the bits the row and column caches add to the footprint.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from dse_milp.fusion import GroupMapping, Segment, group_cost
from dse_milp.halo import Halo
from dse_milp.loader import parse_network
from dse_milp.units import segments
from dse_milp.workload import Layer, LayerKind, Operand
from tests.brute_force import residency_choices
from tests.layers import random_network_spec

Position = tuple[int, int]
Box = tuple[int, int, int, int]
"""A region: first row, last row, first column, last column (inclusive)."""


def box_positions(box: Box | None) -> set[Position]:
    if box is None:
        return set()
    r0, r1, c0, c1 = box
    return {(r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)}


def bounding_box(positions: set[Position]) -> Box | None:
    if not positions:
        return None
    rows = [r for r, _ in positions]
    cols = [c for _, c in positions]
    return min(rows), max(rows), min(cols), max(cols)


def reads(segment: Segment, layer: Layer, tensor: str, out: Position) -> set[Position]:
    """The positions of ``tensor`` that output position ``out`` of ``layer`` reads."""
    shape = segment.shape(tensor)
    r, c = out
    if layer.kind in (LayerKind.CONV2D, LayerKind.POOL):
        found = set()
        for i in range(layer.kh):
            for j in range(layer.kw):
                row, col = r * layer.sh - layer.ph + i, c * layer.sw - layer.pw + j
                if 0 <= row < shape.height and 0 <= col < shape.width:
                    found.add((row, col))
        return found
    if layer.kind is LayerKind.ADD:
        return {(r, c)}
    assert layer.kind is LayerKind.MATMUL
    if layer.n == shape.channels:
        return {(r, c)}
    return {(row, col) for row in range(shape.height) for col in range(shape.width)}


def regions(segment: Segment, rows: range, cols: range) -> dict[str, Box | None]:
    """Every tensor's region (a layer's: what it computes; an outside tensor's: what is loaded)
    for the tile ``rows`` x ``cols`` of the last layer's output, found backwards."""
    need: dict[str, set[Position]] = {segment.last.name: {(r, c) for r in rows for c in cols}}
    held: dict[str, Box | None] = {}
    for layer in reversed(segment.layers):
        box = bounding_box(need.get(layer.name, set()))
        held[layer.name] = box
        for out in box_positions(box):
            for tensor in dict.fromkeys(layer.inputs):
                need.setdefault(tensor, set()).update(reads(segment, layer, tensor, out))
    for tensor in segment.externals:
        held[tensor] = bounding_box(need.get(tensor, set()))
    return held


def tile_ranges(extent: int, size: int) -> list[range]:
    return [range(start, min(start + size, extent)) for start in range(0, extent, size)]


@dataclass
class Walk:
    """What the walk of one group under one halo mode found, per tensor."""

    produced: Counter = field(default_factory=Counter)
    """Positions produced (computed or loaded), summed over tiles."""
    held: Counter = field(default_factory=Counter)
    """Positions of the regions, summed over tiles."""
    line_buffer: Counter = field(default_factory=Counter)
    """The largest line buffer (positions, one channel)."""
    column_cache: Counter = field(default_factory=Counter)
    """The largest column cache (positions, one channel)."""
    needed: dict[str, set[Position]] = field(default_factory=dict)
    """Every position any tile needs."""
    counts: dict[str, Counter] = field(default_factory=dict)
    """How many times each position was produced."""


def walk(segment: Segment, mapping: GroupMapping) -> Walk:
    last = segment.shape(segment.last.name)
    bands = [
        [regions(segment, rows, cols) for cols in tile_ranges(last.width, mapping.cols)]
        for rows in tile_ranges(last.height, mapping.rows)
    ]
    tensors = list(bands[0][0])
    use_rows = mapping.halo in (Halo.ROWS, Halo.BOTH)
    use_cols = mapping.halo in (Halo.COLUMNS, Halo.BOTH)
    # the columns a tensor's regions ever use, over all tiles
    span: dict[str, int] = {}
    for x in tensors:
        boxes = [tile[x] for band in bands for tile in band if tile[x] is not None]
        span[x] = max(b[3] for b in boxes) - min(b[2] for b in boxes) + 1 if boxes else 0

    result = Walk()
    result.counts = {x: Counter() for x in tensors}
    result.needed = {x: set() for x in tensors}
    line: dict[str, set[Position]] = {x: set() for x in tensors}
    for b, band in enumerate(bands):
        column: dict[str, set[Position]] = {x: set() for x in tensors}  # emptied at each band
        for t, tile in enumerate(band):
            for x in tensors:
                region = box_positions(tile[x])
                result.needed[x] |= region
                cached = (line[x] if use_rows else set()) | (column[x] if use_cols else set())
                made = region - cached
                result.produced[x] += len(made)
                result.held[x] += len(region)
                result.counts[x].update(made)
            # the column cache for the next tile of the band
            for x in tensors:
                column[x] = set()
                if t + 1 < len(band) and tile[x] is not None and band[t + 1][x] is not None:
                    nxt = band[t + 1][x]
                    column[x] = {(r, c) for r, c in box_positions(tile[x]) if nxt[2] <= c <= nxt[3]}
                    if use_cols:
                        r0, r1, _, _ = tile[x]
                        shared = len(set(range(tile[x][2], tile[x][3] + 1)) & set(range(nxt[2], nxt[3] + 1)))
                        size = (r1 - r0 + 1) * shared
                        assert size == len(column[x])
                        result.column_cache[x] = max(result.column_cache[x], size)
        # the line buffer for the next band
        for x in tensors:
            line[x] = set()
            if b + 1 < len(bands):
                held = set().union(*(box_positions(tile[x]) for tile in band))
                next_rows = {r for tile in bands[b + 1] for r, _ in box_positions(tile[x])}
                line[x] = {(r, c) for r, c in held if r in next_rows}
                if use_rows:
                    shared = len({r for r, _ in held} & next_rows)
                    result.line_buffer[x] = max(result.line_buffer[x], shared * span[x])
    return result


@dataclass(frozen=True)
class Oracle:
    input_read: int
    extra_macs: dict[str, int]
    input_cache: int
    output_cache: int


def oracle(segment: Segment, mapping: GroupMapping) -> Oracle:
    found = walk(segment, mapping)
    if mapping.halo is Halo.RECOMPUTE:
        assert not any(found.line_buffer.values())
        assert not any(found.column_cache.values())
        assert found.produced == found.held  # every tile makes its whole region
    if mapping.halo is Halo.BOTH:
        for x, region in found.needed.items():
            assert set(found.counts[x]) == region, x
            assert all(n == 1 for n in found.counts[x].values()), x
    input_read = input_cache = output_cache = 0
    for x in segment.externals:
        per_position = segment.shape(x).channels * segment.input_bits(x)
        input_read += found.produced[x] * per_position
        input_cache += (found.line_buffer[x] + found.column_cache[x]) * per_position
    extra_macs = {}
    for layer in segment.layers:
        channels = segment.shape(layer.name).channels
        extra_macs[layer.name] = found.produced[layer.name] * channels * layer.macs_per_output - layer.macs
        output_cache += (
            (found.line_buffer[layer.name] + found.column_cache[layer.name]) * channels * layer.precision.output
        )
    return Oracle(input_read, extra_macs, input_cache, output_cache)


def compare(segment: Segment, mapping: GroupMapping, label: str = "") -> tuple[bool, bool]:
    """Assert the closed form agrees with the oracle; say whether caching changed reads or MACs."""
    expected = oracle(segment, mapping)
    cost = group_cost(segment, mapping, False, None)
    plain_mapping = GroupMapping(mapping.rows, mapping.cols, mapping.resident, Halo.RECOMPUTE)
    plain = group_cost(segment, plain_mapping, False, None)
    where = f"{label} {[x.name for x in segment.layers]} {mapping}"
    got_read = sum(t.input_read for t in cost.by_layer.values())
    assert got_read == expected.input_read, f"input reads {where}: closed {got_read} oracle {expected.input_read}"
    got_macs = {layer.name: cost.extra_macs.get(layer.name, 0) for layer in segment.layers}
    assert got_macs == expected.extra_macs, f"extra MACs {where}: closed {got_macs} oracle {expected.extra_macs}"
    got_in = cost.footprint[Operand.INPUT] - plain.footprint[Operand.INPUT]
    assert got_in == expected.input_cache, f"input cache {where}: closed {got_in} oracle {expected.input_cache}"
    got_out = cost.footprint[Operand.OUTPUT] - plain.footprint[Operand.OUTPUT]
    assert got_out == expected.output_cache, f"output cache {where}: closed {got_out} oracle {expected.output_cache}"
    if mapping.halo is Halo.RECOMPUTE:
        return False, False
    base = oracle(segment, plain_mapping)
    return expected.input_read != base.input_read, expected.extra_macs != base.extra_macs


def test_halo_closed_form_matches_brute_force() -> None:
    """Random small networks, every segment of up to 4 layers, random tiles, every halo mode."""
    rng = random.Random(2024)
    cases = changed_reads = changed_macs = cached = 0
    for i in range(60):
        network = parse_network(random_network_spec(rng, rng.randint(2, 5)), f"oracle-{i}")
        for segment in segments(network, 4):
            last = segment.shape(segment.last.name)
            for _ in range(3):
                rows, cols = rng.randint(1, last.height), rng.randint(1, last.width)
                resident = rng.choice(residency_choices(segment))
                for mode in Halo:
                    mapping = GroupMapping(rows, cols, resident, mode)
                    reads_changed, macs_changed = compare(segment, mapping, f"network {i}")
                    cases += 1
                    changed_reads += reads_changed
                    changed_macs += macs_changed
                    cached += reads_changed or macs_changed
    assert cases > 200
    assert cached > 30
    assert changed_reads > 10
    assert changed_macs > 10
