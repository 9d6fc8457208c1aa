"""What a formulation is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.candidates import OPERANDS, Candidates, bank_counts
from dse_milp.cost import Objective, cost, cost_of
from dse_milp.fusion import GroupCandidates
from dse_milp.layouts import Layout
from dse_milp.workload import Network

GroupKey = tuple[str, str]
"""A fused group, by its first and last layer."""


@dataclass(frozen=True)
class MappingProblem:
    """A network on an accelerator, with each layer's (and fused group's) candidate mappings."""

    network: Network
    accelerator: Accelerator
    candidates: dict[str, Candidates]
    """Candidate mappings of each layer run on its own, by layer name."""
    objectives: tuple[Objective, ...]
    """Lexicographic: the first is minimised, the next breaks its ties, and so on."""
    groups: dict[GroupKey, GroupCandidates] = field(default_factory=dict)
    """Candidate mappings of each group of layers that may run fused (none: no fusion)."""
    layouts: tuple[Layout, ...] = ()
    """With DRAM bursts: the layouts each tensor may take (the candidates carry theirs)."""
    kept_tensors: frozenset[str] = frozenset()
    """The tensors that may stay on chip between units (the candidates say which each keeps)."""

    def cost(self, objective: Objective, layer: str) -> np.ndarray:
        """The cost of each candidate of ``layer`` under ``objective``."""
        cands = self.candidates[layer]
        return cost(objective, cands.layer, self.accelerator, cands.total_bits / 8, cands.exposed / 8)

    def group_cost(self, objective: Objective, group: GroupKey) -> np.ndarray:
        """The cost of each candidate of a fused group, halo recomputation included."""
        cands = self.groups[group]
        macs, operand_bytes = cands.work()
        return cost_of(objective, self.accelerator, cands.total_bits / 8, macs, operand_bytes, cands.exposed / 8)

    def buffer_bytes(self, footprint: np.ndarray) -> dict[str, np.ndarray]:
        """Bytes each candidate (rows of a (k, 3) per-operand ``footprint`` in bits) occupies in
        each buffer: whole banks when the split is free."""
        split = self.accelerator.split
        if split is not None:
            banks = bank_counts(footprint, split)
            return {b.name: banks[:, OPERANDS.index(op)] * split.bank_bytes for b in self.accelerator.buffers
                    for op in b.operands}  # fmt: skip
        return {
            b.name: footprint[:, [OPERANDS.index(op) for op in b.operands]].sum(axis=1) / 8
            for b in self.accelerator.buffers
        }

    def covering(self, layer: str) -> list[GroupKey]:
        """The fused groups that contain ``layer`` (in the order of ``groups``)."""
        return self._covering.get(layer, [])

    @cached_property
    def _covering(self) -> dict[str, list[GroupKey]]:
        """Every layer's covering groups, found in one pass over the groups."""
        index: dict[str, list[GroupKey]] = {}
        for key, cands in self.groups.items():
            for layer in cands.segment.layers:
                index.setdefault(layer.name, []).append(key)
        return index
