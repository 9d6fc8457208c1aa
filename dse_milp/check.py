"""An independent check of any solution: every layer mapped, tiles legal, buffers respected.

It recomputes traffic and footprints with the scalar closed forms of
``dse_milp.traffic``, so a solution from the MILP, a heuristic or a file is
judged the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from dse_milp.accelerator import Accelerator
from dse_milp.traffic import LOOPS, Mapping, Traffic, footprint, traffic
from dse_milp.workload import Network


@dataclass(frozen=True)
class CheckedLayer:
    traffic: Traffic
    buffer_bytes: dict[str, float]
    """Bytes of each buffer the mapping's tiles occupy."""


@dataclass(frozen=True)
class Check:
    layers: dict[str, CheckedLayer]
    violations: list[str]

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def dram_bits(self) -> int:
        return sum(layer.traffic.total for layer in self.layers.values())


def check_mappings(network: Network, accelerator: Accelerator, mappings: dict[str, Mapping]) -> Check:
    layers: dict[str, CheckedLayer] = {}
    violations: list[str] = []
    for layer in network.layers:
        mapping = mappings.get(layer.name)
        if mapping is None:
            violations.append(f"layer {layer.name!r} has no mapping")
            continue
        if sorted(mapping.order) != sorted(LOOPS):
            violations.append(f"layer {layer.name!r}: order {mapping.order!r} is not a permutation of {LOOPS!r}")
            continue
        bad = [
            f"t_{d}={getattr(mapping.tiling, d)} not in 1..{extent}"
            for d, extent in layer.dims.items()
            if not 1 <= getattr(mapping.tiling, d) <= extent
        ]
        if bad:
            violations.append(f"layer {layer.name!r}: {', '.join(bad)}")
            continue
        tiles = footprint(layer, mapping.tiling, accelerator.double_buffering)
        held = {b.name: sum(tiles[op] for op in b.operands) / 8 for b in accelerator.buffers}
        for b in accelerator.buffers:
            if held[b.name] > b.capacity_bytes:
                violations.append(
                    f"layer {layer.name!r}: tiles need {held[b.name]:g} bytes of the {b.name} buffer "
                    f"({b.capacity_bytes} bytes)"
                )
        layers[layer.name] = CheckedLayer(traffic(layer, mapping), held)
    unknown = sorted(set(mappings) - set(network.by_name))
    violations.extend(f"mapping for unknown layer {name!r}" for name in unknown)
    return Check(layers, violations)
