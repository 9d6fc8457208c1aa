"""What a formulation is built from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.candidates import OPERANDS, Candidates
from dse_milp.cost import Objective, cost
from dse_milp.workload import Network


@dataclass(frozen=True)
class MappingProblem:
    """A network on an accelerator, with each layer's candidate mappings and an objective."""

    network: Network
    accelerator: Accelerator
    candidates: dict[str, Candidates]
    """Candidate mappings by layer name."""
    objectives: tuple[Objective, ...]
    """Lexicographic: the first is minimised, the next breaks its ties, and so on."""

    def cost(self, objective: Objective, layer: str) -> np.ndarray:
        """The cost of each candidate of ``layer`` under ``objective``."""
        cands = self.candidates[layer]
        return cost(objective, cands.layer, self.accelerator, cands.total_bits / 8)

    def buffer_bytes(self, layer: str) -> dict[str, np.ndarray]:
        """Bytes each candidate of ``layer`` occupies in each buffer."""
        footprint = self.candidates[layer].footprint
        return {
            b.name: footprint[:, [OPERANDS.index(op) for op in b.operands]].sum(axis=1) / 8
            for b in self.accelerator.buffers
        }
