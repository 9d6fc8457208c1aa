"""Why a mapping program has no solution, in words: which layers, and what each would need.

Two cases. A layer may fit no mapping at all (its smallest footprint overflows a
buffer, or under a free split needs more banks than there are); or, under a free
split, every layer fits alone but no one split fits them all. For the second,
the least split each layer needs is compared pair by pair, and a pair that
cannot share any split is named; when every pair can but the whole network
cannot, the layers with the largest needs are named.
"""

from __future__ import annotations

import itertools

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.candidates import OPERANDS, bank_counts
from dse_milp.workload import Layer
from formulations import MappingProblem


def does_not_fit(layer: Layer, smallest: np.ndarray, accelerator: Accelerator) -> str:
    """The message for a layer none of whose mappings fits: its mapping of least total footprint
    (``smallest``, bits per operand) against the capacities (or the banks of a free split)."""
    per_operand = dict(zip(OPERANDS, smallest, strict=True))
    parts = " + ".join(f"{op.value} {per_operand[op] / 8:g}" for op in OPERANDS)
    split = accelerator.split
    if split is not None:
        banks = bank_counts(np.asarray(smallest)[None, :], split)[0]
        need = " + ".join(f"{op.value} {int(n)}" for op, n in zip(OPERANDS, banks, strict=True))
        return (
            f"layer {layer.name!r} fits no mapping: its smallest footprint ({parts} bytes) needs {need} = "
            f"{int(banks.sum())} banks of {split.bank_bytes:,} bytes, more than the {split.banks} banks of the "
            f"{split.total_bytes:,}-byte total"
        )
    over = [
        f"{sum(per_operand[op] for op in b.operands) / 8:g} bytes > {b.capacity_bytes:,} bytes in the {b.name} buffer"
        for b in accelerator.buffers
        if sum(per_operand[op] for op in b.operands) > 8 * b.capacity_bytes
    ]
    return f"layer {layer.name!r} fits no mapping: its smallest footprint ({parts} bytes) needs " + "; ".join(
        over or ["more than the buffers hold"]
    )


def _needs(problem: MappingProblem) -> dict[str, np.ndarray]:
    """Per layer run alone, the bank counts (input, weight, output) of its candidates, minimal
    ones only."""
    split = problem.accelerator.split
    assert split is not None
    needs = {}
    for name, cands in problem.candidates.items():
        if len(cands):
            banks = np.unique(bank_counts(cands.footprint, split), axis=0)
            dominated = [any(np.all(o <= b) and np.any(o < b) for o in banks) for b in banks]
            needs[name] = banks[~np.array(dominated)]
    return needs


def _share(a: np.ndarray, b: np.ndarray, banks: int) -> bool:
    """Whether some split of ``banks`` banks holds a candidate of each: the element-wise max
    of a pair of rows fits."""
    return bool((np.maximum(a[:, None, :], b[None, :, :]).sum(axis=2) <= banks).any())


def _least(need: np.ndarray) -> np.ndarray:
    """The row of fewest banks in all (ties: the first)."""
    return need[int(np.argmin(need.sum(axis=1)))]


def infeasibility(problem: MappingProblem) -> list[str]:
    """Why the program of ``problem`` is infeasible, one line per reason."""
    alone = [name for name, cands in problem.candidates.items() if len(cands) == 0]
    if alone:
        return [f"the mapping program is infeasible: no set of fused groups covers the layers that fit no "
                f"mapping alone, {alone}"]  # fmt: skip
    split = problem.accelerator.split
    if split is None:
        return ["the mapping program is infeasible"]
    needs = _needs(problem)

    def shown(name: str) -> str:
        least = _least(needs[name]) * split.bank_bytes
        return (
            f"{name!r} needs at least "
            + ", ".join(f"{op.value} {n:,}" for op, n in zip(OPERANDS, least, strict=True))
            + " bytes"
        )

    for a, b in itertools.combinations(needs, 2):
        if not _share(needs[a], needs[b], split.banks):
            return [
                f"no one split of the {split.total_bytes:,}-byte buffer ({split.banks} banks of "
                f"{split.bank_bytes:,} bytes) fits both layers {a!r} and {b!r}: {shown(a)}; {shown(b)} "
                "(each fits alone)"
            ]
    largest = sorted(needs, key=lambda name: -int(_least(needs[name]).max()))[:3]
    return [
        f"no one split of the {split.total_bytes:,}-byte buffer ({split.banks} banks) fits every layer, though each "
        f"fits alone and every two fit together; the largest needs: " + "; ".join(shown(n) for n in largest)
    ]
