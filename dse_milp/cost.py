"""Objectives: what one candidate mapping of a layer costs.

- ``dram``: bytes moved off chip.
- ``latency``: cycles, ``max(compute, transfer)`` with compute = ceil(MACs / MAC units)
  and transfer = ceil(DRAM bytes / bandwidth): transfers overlap compute, and a
  layer takes a whole number of cycles.
- ``energy``: picojoules, ``e_dram * DRAM bytes + e_sram * SRAM bytes + e_mac * MACs``
  where every DRAM byte also passes through the on-chip buffer once and every MAC
  reads one input and one weight from it.

All three grow with DRAM traffic for a fixed layer, so the candidates that are
not dominated in (traffic, footprint) serve every objective.
"""

from __future__ import annotations

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
    objective: Objective, accelerator: Accelerator, dram_bytes: np.ndarray, macs: np.ndarray, operand_bytes: np.ndarray
) -> np.ndarray:
    """The cost of work that moves ``dram_bytes`` off chip and runs ``macs`` MACs reading
    ``operand_bytes`` from the buffer (arrays broadcast together)."""
    dram_bytes = np.asarray(dram_bytes, dtype=float)
    match objective:
        case Objective.DRAM:
            return dram_bytes
        case Objective.LATENCY:
            compute = np.ceil(np.asarray(macs, dtype=float) / accelerator.macs)
            return np.maximum(compute, np.ceil(dram_bytes / accelerator.dram_bandwidth))
        case Objective.ENERGY:
            e = accelerator.energy
            return e.dram_byte * dram_bytes + e.sram_byte * (dram_bytes + operand_bytes) + e.mac * np.asarray(macs)
    raise AssertionError(objective)


def cost(objective: Objective, layer: Layer, accelerator: Accelerator, dram_bytes: np.ndarray) -> np.ndarray:
    """The cost of each mapping of ``layer`` whose off-chip traffic is ``dram_bytes``."""
    return cost_of(objective, accelerator, dram_bytes, layer.macs, layer.macs * operand_bytes_per_mac(layer))
