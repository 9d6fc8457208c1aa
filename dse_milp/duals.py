"""Shadow prices of the buffer capacities, from an explicit LP step.

A MILP has no duals, so they come from a documented LP. The solved program
splits the network into *units*: layers run alone, and fused groups. For a unit
and a buffer b, the LP step relaxes the unit's one-hot choice to weights
``w_k >= 0`` summing to 1 over the unit's candidates, generated as if b were
unbounded (so that mappings a larger b would admit take part), subject to
every buffer's capacity:

    min  sum_k cost_k w_k   s.t.  sum_k w_k = 1,   sum_k footprint_k[b'] w_k <= capacity[b']  for every b'

The dual of b's row is the unit's **shadow price** of b: objective units (DRAM
bytes by default) saved per extra byte of b for that unit alone. With one
buffer the LP is the lower convex envelope of the unit's (footprint, cost)
candidates and the price is the envelope's slope at the capacity; it is 0 once
the capacity exceeds the footprint where the envelope bottoms out. The cost is
the first objective's.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

import numpy as np

from dse_milp.accelerator import Accelerator
from dse_milp.burst_candidates import group_in_bursts, layer_in_bursts
from dse_milp.candidates import OPERANDS, Candidates, generate, shape_of
from dse_milp.cost import Objective
from dse_milp.errors import DseError
from dse_milp.fusion import GroupCandidates, Segment, generate_group
from dse_milp.layouts import Layouts
from dse_milp.solvers.highs import convex_choice_lp
from dse_milp.stopping import stop_reason
from dse_milp.traffic import OnChip
from dse_milp.units import renamed, signature
from dse_milp.workers import ordered
from dse_milp.workload import Layer, Operand
from formulations import MappingProblem

Kept = tuple[frozenset[str], float]
"""Tensors a unit finds or leaves on chip, and the bytes kept tensors hold while it runs."""

UNBOUNDED = 1 << 40
"""Bytes: a buffer size no tile reaches."""


def _lifted(accelerator: Accelerator, buffer: str) -> Accelerator:
    buffers = tuple(replace(b, capacity_bytes=UNBOUNDED) if b.name == buffer else b for b in accelerator.buffers)
    return replace(accelerator, buffers=buffers)


def _usage(accelerator: Accelerator, footprint: np.ndarray) -> np.ndarray:
    """Bytes of each buffer (columns) each candidate (rows of per-operand bits) occupies."""
    return np.column_stack(
        [footprint[:, [OPERANDS.index(op) for op in b.operands]].sum(axis=1) / 8 for b in accelerator.buffers]
    )


@dataclass(frozen=True)
class Lifted:
    """The candidates of one unit generated as if one buffer were unbounded (``accelerator`` is
    the lifted one): a layer's, or a fused group's with the resident sets an LP mix can need;
    with ``layouts``, priced in their bursts; the tensors ``on_chip`` move nothing."""

    unit: Layer | Segment
    accelerator: Accelerator
    objective: Objective
    layouts: Layouts | None
    on_chip: frozenset[str]

    def __call__(self) -> Candidates | GroupCandidates:
        acc, objectives, unit, on_chip = self.accelerator, (self.objective,), self.unit, self.on_chip
        if isinstance(unit, Segment):
            cands = generate_group(unit, acc, objectives, hull=True, kept=on_chip)
            return cands if self.layouts is None else group_in_bursts(cands, acc, objectives, (self.layouts,), on_chip)
        if self.layouts is None:
            return generate(unit, acc, objectives, OnChip.of(unit, on_chip))
        return layer_in_bursts(unit, acc, objectives, (self.layouts,), OnChip.of(unit, on_chip))

    def shared(self) -> tuple:
        """What the generation depends on: layers of one shape, and groups of one signature
        with the same tensors on chip, share it (renamed, ``for_unit``)."""
        unit = self.unit
        if isinstance(unit, Segment):
            boundary = (*unit.externals, unit.last.name)
            return (signature(unit), self.accelerator, self.objective, self.layouts,
                    tuple(x in self.on_chip for x in boundary))  # fmt: skip
        return (shape_of(unit), self.accelerator, self.objective, self.layouts, OnChip.of(unit, self.on_chip))

    def for_unit(self, cands: Candidates | GroupCandidates) -> Candidates | GroupCandidates:
        """``cands``, generated for a unit sharing this one's generation, as this unit's."""
        if isinstance(self.unit, Segment):
            assert isinstance(cands, GroupCandidates)
            return renamed(cands, self.unit)
        return replace(cands, layer=self.unit)


def _run(work: Lifted) -> Candidates | GroupCandidates | DseError:
    """``work()``, or the error that leaves its units without a price."""
    try:
        return work()
    except DseError as exc:
        return exc


def _lifted_work(problem: MappingProblem, unit: Segment | str, buffer: str, layouts: Layouts | None,
                 kept: Kept) -> Lifted:  # fmt: skip
    what = unit if isinstance(unit, Segment) else problem.network.by_name[unit]
    return Lifted(what, _lifted(problem.accelerator, buffer), problem.objectives[0], layouts, kept[0])


def unit_lp(problem: MappingProblem, unit: Segment | str, buffer: str, extra: float = 0.0,
            layouts: Layouts | None = None, kept: Kept = (frozenset(), 0.0),
            lifted: Candidates | GroupCandidates | None = None) -> tuple[float, float]:  # fmt: skip
    """The LP step of one unit (a layer name, or a fused group's segment) for ``buffer``,
    whose capacity is raised by ``extra`` bytes: (optimum, shadow price of ``buffer``).
    With DRAM bursts, its candidates are priced in the bursts of ``layouts``, the layouts the
    solution gave the tensors it reads and writes. With tensors kept on chip, ``kept``: those
    the unit finds or leaves on chip (its candidates move none of them) and the bytes of the
    output's buffer the kept tensors live while it runs hold. ``lifted``: the unit's
    candidates for the lifted buffer (``Lifted``), when already generated."""
    on_chip, reserved = kept
    acc = problem.accelerator
    objective = problem.objectives[0]
    # The candidates generated for the lifted buffer, and the program's own, which hold the
    # mapping it chose: the lifted set is pruned as if b were unbounded, and may have dropped
    # every mapping that fits the other buffers (an output buffer of a few bytes).
    cands = lifted if lifted is not None else _lifted_work(problem, unit, buffer, layouts, kept)()
    if isinstance(unit, Segment):
        assert isinstance(cands, GroupCandidates)
        key = (unit.layers[0].name, unit.last.name)
        view = replace(problem, groups={key: cands}, objectives=(objective,))
        cost, footprint = view.group_cost(objective, key), cands.footprint
        if key in problem.groups:
            same = _held(problem.groups[key], layouts, on_chip)
            cost = np.concatenate([cost, problem.group_cost(objective, key)[same]])
            footprint = np.concatenate([footprint, problem.groups[key].footprint[same]])
    else:
        assert isinstance(cands, Candidates)
        view = replace(problem, candidates={unit: cands}, objectives=(objective,))
        cost, footprint = view.cost(objective, unit), cands.footprint
        if unit in problem.candidates:
            same = _held(problem.candidates[unit], layouts, on_chip)
            cost = np.concatenate([cost, problem.cost(objective, unit)[same]])
            footprint = np.concatenate([footprint, problem.candidates[unit].footprint[same]])
    holder = acc.buffer_of(Operand.OUTPUT).name
    raised = {b.name: float(b.capacity_bytes) for b in acc.buffers}
    raised[buffer] += extra
    raised[holder] -= reserved
    capacity = np.array(list(raised.values()))
    value, duals = convex_choice_lp(cost, _usage(acc, footprint), capacity)
    index = [b.name for b in acc.buffers].index(buffer)
    return value, max(0.0, -float(duals[index]))


def _held(cands: Candidates | GroupCandidates, chosen: Layouts | None, kept: frozenset[str]) -> np.ndarray:
    """Which of a unit's candidates keep the ``chosen`` layouts (all, without bursts) and the
    ``kept`` tensors on chip (all, when none keeps any)."""
    same = np.ones(len(cands), dtype=bool)
    if chosen is not None:
        same &= np.array([pair == chosen for pair in cands.layouts], dtype=bool)
    if cands.kept:
        same &= np.array([k == kept for k in cands.kept], dtype=bool)
    return same


def shadow_prices(
    problem: MappingProblem,
    units: list[Segment | str],
    deadline: float | None = None,
    layouts: dict[str, Layouts] | None = None,
    kept: dict[str, Kept] | None = None,
    jobs: int = 1,
) -> tuple[dict[str, dict[str, float]], str | None]:
    """The shadow price of every buffer for each unit (a layer name or a group's segment),
    by unit name (a layer's, or ``first..last`` for a group), and a note on what is missing.
    With DRAM bursts, ``layouts`` holds the layouts the solution gave each unit's tensors;
    with tensors kept on chip, ``kept`` what each unit keeps (``unit_lp``). The lifted
    generations, one per layer shape or group signature and buffer, run on up to ``jobs``
    worker processes; the LPs run here.

    An optional report step: Ctrl-C or ``deadline`` ends it early, and a unit whose LP fails
    is left without a price; both are said in the note, and neither sinks the solution.
    """
    names = [unit if isinstance(unit, str) else f"{unit.layers[0].name}..{unit.last.name}" for unit in units]
    on_chip = {name: (kept or {}).get(name, (frozenset(), 0.0)) for name in names}
    held = {name: (layouts or {}).get(name) for name in names}
    buffers = [b.name for b in problem.accelerator.buffers]
    asked = {(name, b): _lifted_work(problem, unit, b, held[name], on_chip[name])
             for name, unit in zip(names, units, strict=True) for b in buffers}  # fmt: skip
    shared = {ask: work.shared() for ask, work in asked.items()}
    work: dict[tuple, Lifted] = {}
    for ask, key in shared.items():
        work.setdefault(key, asked[ask])  # done for the first unit that needs it
    generated: dict[tuple, Candidates | GroupCandidates | DseError] = {}
    pending = list(zip(names, units, strict=True))
    prices: dict[str, dict[str, float]] = {}
    failed: list[str] = []

    def price_ready() -> None:  # the units, in order, whose generations are all in: here, while workers go on
        while pending and all(shared[pending[0][0], b] in generated for b in buffers):
            name, unit = pending.pop(0)
            try:
                prices[name] = {b: unit_lp(problem, unit, b, 0.0, held[name], on_chip[name],
                                           asked[name, b].for_unit(_raised(generated[shared[name, b]])))[1]
                                for b in buffers}  # fmt: skip
            except DseError as exc:
                failed.append(f"{name!r} ({exc})")

    with contextlib.closing(ordered(_run, list(work.values()), jobs, deadline)) as results:  # workers end here
        for key, cands in zip(work, results, strict=False):
            generated[key] = cands
            price_ready()
    if pending:  # the generations stopped short
        return prices, f"prices of {len(pending)} of {len(units)} units skipped ({stop_reason(deadline)})"
    return prices, (f"no price for {', '.join(failed)}" if failed else None)


def _raised(generated: Candidates | GroupCandidates | DseError) -> Candidates | GroupCandidates:
    if isinstance(generated, DseError):
        raise generated
    return generated
