"""An independent check of any solution: every layer mapped, tiles legal, buffers respected.

It recomputes traffic and footprints with the scalar closed forms of
``dse_milp.traffic``, so a solution from the MILP, a heuristic or a file is
judged the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from dse_milp.accelerator import Accelerator
from dse_milp.fusion import GroupCost, GroupMapping, Segment, fusible, group_cost
from dse_milp.traffic import INNERMOST, LOOPS, Mapping, OnChip, Traffic, footprint, spans_groups, traffic
from dse_milp.workload import Network, Operand


@dataclass(frozen=True)
class CheckedLayer:
    traffic: Traffic
    buffer_bytes: dict[str, float]
    """Bytes of each buffer the mapping's tiles occupy, and the tensors kept while it runs."""


@dataclass(frozen=True)
class CheckedGroup:
    segment: Segment
    cost: GroupCost
    buffer_bytes: dict[str, float]


@dataclass(frozen=True)
class Check:
    layers: dict[str, CheckedLayer]
    """Layers run alone."""
    groups: dict[tuple[str, str], CheckedGroup]
    """Fused groups, by first and last layer."""
    violations: list[str]

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def dram_bits(self) -> int:
        alone = sum(layer.traffic.total for layer in self.layers.values())
        return alone + sum(group.cost.traffic.total for group in self.groups.values())


def kept_bytes(network: Network, kept: frozenset[str], start: int, stop: int, bank: int | None = None) -> float:
    """Bytes the tensors in ``kept`` hold while layers ``start``..``stop`` (positions, both
    included) run: those written at or before ``stop`` and last read at or after ``start``,
    whole (with ``bank``, each in whole banks of that many bytes)."""
    position = {layer.name: i for i, layer in enumerate(network.layers)}
    held = 0.0
    for x in kept:
        last = max(position[r.name] for r in network.consumers(x))
        if start <= last and stop >= position[x]:
            size = network.by_name[x].output_elements * network.by_name[x].precision.output / 8
            held += size if bank is None else -(-size // bank) * bank
    return held


def _overflows(accelerator: Accelerator, held: dict[str, float], what: str) -> list[str]:
    return [
        f"{what}: tiles need {held[b.name]:g} bytes of the {b.name} buffer ({b.capacity_bytes} bytes)"
        for b in accelerator.buffers
        if held[b.name] > b.capacity_bytes
    ]


def check_mappings(
    network: Network,
    accelerator: Accelerator,
    mappings: dict[str, Mapping],
    groups: dict[tuple[str, str], GroupMapping] | None = None,
    kept: frozenset[str] = frozenset(),
) -> Check:
    """Check that every layer runs exactly once (alone with a mapping, or in one fused group),
    that tiles are legal and that they fit the buffers; evaluate everything on the way.

    The tensors in ``kept`` stay on chip from the unit that writes them to the unit that last
    reads them: none of their transfers count, and their whole size joins, in the buffer of
    the output operand, what every unit in between holds. Each must be a layer's output that
    leaves its unit (not read only inside a fused group) and that some layer reads.
    """
    groups = groups or {}
    position = {layer.name: i for i, layer in enumerate(network.layers)}
    valid = frozenset(x for x in kept if x in network.by_name and network.consumers(x))
    violations_kept = [f"kept tensor {x!r} is not a layer output that a layer reads" for x in sorted(kept - valid)]

    def with_kept(held: dict[str, float], start: int, stop: int) -> dict[str, float]:
        """``held`` plus the tensors kept while layers ``start``..``stop`` run."""
        live = kept_bytes(network, valid, start, stop)
        buffer = accelerator.buffer_of(Operand.OUTPUT).name
        return held | {buffer: held[buffer] + live} if live else held

    layers: dict[str, CheckedLayer] = {}
    checked_groups: dict[tuple[str, str], CheckedGroup] = {}
    violations: list[str] = violations_kept
    runs = dict.fromkeys(position, 0)
    for (first, last), mapping in groups.items():
        if first not in position or last not in position:
            violations.append(f"group {first!r}..{last!r}: unknown layer")
            continue
        start, stop = position[first], position[last] + 1
        if not fusible(network, start, stop):
            violations.append(f"group {first!r}..{last!r} cannot run fused")
            continue
        segment = Segment(network, start, stop)
        out = segment.shape(last)
        if not (1 <= mapping.rows <= out.height and 1 <= mapping.cols <= out.width):
            violations.append(f"group {first!r}..{last!r}: tile {mapping.rows}x{mapping.cols} not within {out}")
            continue
        if mapping.halo not in accelerator.halo:
            violations.append(f"group {first!r}..{last!r}: halo {mapping.halo} is not among the accelerator's modes")
            continue
        streamed = {layer.name: layer.m for layer in segment.layers if layer.has_weights}
        bad_pieces = [
            f"{name!r} in pieces of {q}"
            for name, q in mapping.pieces
            if name not in streamed or name in mapping.resident or not 1 <= q <= streamed[name]
        ]
        if bad_pieces or len({name for name, _ in mapping.pieces}) < len(mapping.pieces):
            violations.append(f"group {first!r}..{last!r}: weights read in pieces not of a streamed layer's "
                              f"channels: {', '.join(bad_pieces) or 'a layer named twice'}")  # fmt: skip
            continue
        for layer in segment.layers:
            runs[layer.name] += 1
        inside = [x for x in valid if x in segment.names and x != last]
        if inside:
            violations.append(f"group {first!r}..{last!r}: kept tensors {sorted(inside)} never leave it")
        outer = frozenset(x for x in valid if x in segment.externals or x == last)
        cost = group_cost(segment, mapping, accelerator.double_buffering, accelerator.liveness, outer)
        held = with_kept(accelerator.held_bytes(cost.footprint), start, stop - 1)
        violations.extend(_overflows(accelerator, held, f"group {first!r}..{last!r}"))
        checked_groups[first, last] = CheckedGroup(segment, cost, held)
    for layer in network.layers:
        mapping = mappings.get(layer.name)
        if mapping is None:
            if runs[layer.name] == 0:
                violations.append(f"layer {layer.name!r} has no mapping")
            continue
        runs[layer.name] += 1
        if sorted(mapping.order) != sorted(LOOPS):
            violations.append(f"layer {layer.name!r}: order {mapping.order!r} is not a permutation of {LOOPS!r}")
            continue
        bad = [
            f"t_{d}={getattr(mapping.tiling, d)} not in 1..{extent}"
            for d, extent in layer.dims.items()
            if not 1 <= getattr(mapping.tiling, d) <= extent
        ] + [
            f"{operand} level {level} not in 0..{len(LOOPS)}"
            for operand, level in mapping.levels._asdict().items()
            if not 0 <= level <= len(LOOPS)
        ]
        if not 1 <= mapping.groups <= layer.groups:
            bad.append(f"tiles span {mapping.groups} groups, not 1..{layer.groups}")
        elif mapping.groups > 1 and not spans_groups(layer, mapping):
            bad.append(f"tiles span {mapping.groups} groups but t_m, t_n are not whole groups")
        if not accelerator.operand_levels and mapping.levels != INNERMOST:
            bad.append(f"levels {tuple(mapping.levels)} on an accelerator whose operands stay innermost")
        if bad:
            violations.append(f"layer {layer.name!r}: {', '.join(bad)}")
            continue
        held = accelerator.held_bytes(
            footprint(layer, mapping, accelerator.double_buffering, accelerator.accumulate_in_buffer)
        )
        held = with_kept(held, position[layer.name], position[layer.name])
        violations.extend(_overflows(accelerator, held, f"layer {layer.name!r}"))
        layers[layer.name] = CheckedLayer(OnChip.of(layer, kept).less(layer, traffic(layer, mapping)), held)
    violations.extend(f"layer {name!r} runs {count} times" for name, count in runs.items() if count > 1)
    unknown = sorted(set(mappings) - set(network.by_name))
    violations.extend(f"mapping for unknown layer {name!r}" for name in unknown)
    return Check(layers, checked_groups, violations)
