"""Objectives: what one candidate mapping of a layer (or a fused group) costs.

- ``dram``: bytes moved off chip.
- ``latency``: cycles. Compute takes ``C = ceil(MACs / MAC units)`` and the
  transfers ``X = ceil(DRAM bytes / bandwidth)``. Without double buffering a
  step's transfers and its compute take turns, so the latency is ``C + X``.
  With double buffering the next step's blocks arrive while this one computes,
  except the first load (nothing to compute yet) and the last store (nothing
  left to compute): ``max(C + E, X)`` with ``E = ceil(exposed bytes / bandwidth)``,
  the exposed bytes being the first copy of every block the first step reads
  plus one output block (``dse_milp.traffic.exposed``).
- ``energy``: picojoules, ``e_dram * DRAM bytes + e_sram * SRAM bytes + e_mac * MACs``
  where every DRAM byte also passes through the on-chip buffer once and every MAC
  reads one input and one weight from it.

For a fixed layer ``dram`` and ``energy`` grow with the DRAM traffic, and so
does ``latency`` without double buffering: then the candidates not dominated in
(traffic, footprint) serve every objective. With double buffering the latency
also depends on the exposed bytes, and the candidates are ranked by the
objectives themselves (``ranked_by_objectives``).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.workload import Layer


class Objective(StrEnum):
    DRAM = "dram"
    ENERGY = "energy"
    LATENCY = "latency"

    @property
    def unit(self) -> str:
        return {"dram": "bytes", "energy": "pJ", "latency": "cycles"}[self.value]


def operand_bytes_per_mac(layer: Layer) -> float:
    """On-chip bytes one MAC of ``layer`` reads: an input, and a weight if it has any."""
    return (layer.precision.input + (layer.precision.weight if layer.has_weights else 0)) / 8


def cost_of(
    objective: Objective,
    accelerator: Accelerator,
    dram_bytes: np.ndarray,
    macs: np.ndarray,
    operand_bytes: np.ndarray,
    exposed_bytes: np.ndarray,
) -> np.ndarray:
    """The cost of work that moves ``dram_bytes`` off chip, ``exposed_bytes`` of them before
    the first compute or after the last, and runs ``macs`` MACs reading ``operand_bytes`` from
    the buffer (arrays broadcast together)."""
    dram_bytes = np.asarray(dram_bytes, dtype=float)
    match objective:
        case Objective.DRAM:
            return dram_bytes
        case Objective.LATENCY:
            compute = np.ceil(np.asarray(macs, dtype=float) / accelerator.macs)
            transfer = np.ceil(dram_bytes / accelerator.dram_bandwidth)
            if not accelerator.double_buffering:
                return compute + transfer
            exposed = np.ceil(np.asarray(exposed_bytes, dtype=float) / accelerator.dram_bandwidth)
            return np.maximum(compute + exposed, transfer)
        case Objective.ENERGY:
            e = accelerator.energy
            return e.dram_byte * dram_bytes + e.sram_byte * (dram_bytes + operand_bytes) + e.mac * np.asarray(macs)
    raise AssertionError(objective)


def cost(
    objective: Objective, layer: Layer, accelerator: Accelerator, dram_bytes: np.ndarray, exposed_bytes: np.ndarray
) -> np.ndarray:
    """The cost of each mapping of ``layer`` that moves ``dram_bytes``, ``exposed_bytes`` of
    them exposed (see the module)."""
    operand_bytes = layer.macs * operand_bytes_per_mac(layer)
    return cost_of(objective, accelerator, dram_bytes, layer.macs, operand_bytes, exposed_bytes)


def ranked_by_objectives(objectives: Sequence[Objective], accelerator: Accelerator) -> bool:
    """Whether a layer's mappings must be ranked by their costs rather than by their traffic:
    only the double-buffered latency depends on more than the traffic."""
    return accelerator.double_buffering and Objective.LATENCY in objectives


def lexicographic_rank(*columns: np.ndarray) -> np.ndarray:
    """Dense ranks (0, 1, ...) of the rows formed by ``columns``, compared column by column."""
    if not len(columns[0]):
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort(columns[::-1])
    rows = np.stack([np.asarray(c)[order] for c in columns], axis=1)
    new = np.concatenate([[True], np.any(rows[1:] != rows[:-1], axis=1)])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.cumsum(new) - 1
    return rank


def objective_rank(
    objectives: Sequence[Objective],
    accelerator: Accelerator,
    dram_bits: np.ndarray,
    macs: np.ndarray,
    operand_bytes: np.ndarray,
    exposed_bits: np.ndarray,
) -> np.ndarray:
    """Ranks of mappings by their costs under ``objectives`` in order, then by their traffic
    (smaller is better).

    A lexicographic objective only ever needs, for each buffer size, the mapping of least
    rank that fits: one that is no larger and ranks no worse can replace it in any design,
    because a lexicographic order is kept by sums. When only the traffic counts, the traffic
    itself is returned: it orders the mappings the same way.
    """
    if set(objectives) <= {Objective.DRAM}:
        return np.asarray(dram_bits)
    shape = np.shape(dram_bits)
    values = [
        np.broadcast_to(cost_of(o, accelerator, dram_bits / 8, macs, operand_bytes, exposed_bits / 8), shape)
        for o in objectives
    ]
    return lexicographic_rank(*values, np.asarray(dram_bits))
