"""The program's input: every unit (a layer run alone, a group of layers that can run fused)
with its candidate mappings.

Layers of one shape, and groups of one signature (a chain of identical blocks), share one
generation (``signature``, ``renamed``); the distinct generations are independent and run on
worker processes (``dse_milp.workers``), their results taken in a fixed order, so the
candidates never depend on the number of workers.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, replace

from dse_milp.accelerator import Accelerator
from dse_milp.burst_candidates import group_in_bursts, layer_in_bursts, pairs
from dse_milp.candidates import Candidates, OnChip, generate, shape_of, stacked
from dse_milp.cost import Objective
from dse_milp.diagnose import does_not_fit
from dse_milp.errors import InfeasibleError, InterruptedRun, NoSolutionError
from dse_milp.fusion import GroupCandidates, Segment, fusible, generate_group
from dse_milp.layouts import Layout
from dse_milp.stopping import INTERRUPTED, TIME_LIMIT, stop_reason
from dse_milp.workers import ordered
from dse_milp.workload import Layer, Network
from formulations import MappingProblem


def segments(network: Network, longest: int) -> list[Segment]:
    """Every group of 2 to ``longest`` consecutive layers that can run fused."""
    n = len(network.layers)
    return [
        Segment(network, start, stop)
        for start in range(n)
        for stop in range(start + 2, min(start + longest, n) + 1)
        if fusible(network, start, stop)
    ]


def signature(segment: Segment) -> tuple:
    """What a fused group's candidates depend on, without names: each layer's shape, where
    each of its inputs comes from (a layer of the group, by position, or an outside tensor,
    by position among them) and whether it takes its weights from a tensor, and the outside
    tensors' shapes. Groups of the same signature (a chain of identical blocks) share their
    candidates (``renamed``)."""
    position = {layer.name: i for i, layer in enumerate(segment.layers)}
    outside = {x: i for i, x in enumerate(segment.externals)}

    def source(tensor: str) -> tuple[str, int]:
        return ("in", position[tensor]) if tensor in position else ("out", outside[tensor])

    layers = tuple(
        (shape_of(layer), tuple(source(x) for x in layer.inputs), layer.weight_from is not None)
        for layer in segment.layers
    )
    return layers, tuple(segment.shape(x) for x in segment.externals)


def renamed(cands: GroupCandidates, segment: Segment) -> GroupCandidates:
    """``cands`` (of a group of the same signature) for ``segment``: its resident layers and
    its layers read in pieces named by their positions in ``segment``."""
    if cands.segment == segment:
        return cands
    names = {old.name: new.name for old, new in zip(cands.segment.layers, segment.layers, strict=True)}
    mappings = tuple(
        replace(m, resident=frozenset(names[n] for n in m.resident), pieces=tuple((names[n], q) for n, q in m.pieces))
        for m in cands.mappings
    )
    return replace(cands, segment=segment, mappings=mappings)


def kept_candidates(network: Network) -> frozenset[str]:
    """The tensors that may stay on chip between units: every layer output some layer reads."""
    return frozenset(layer.name for layer in network.layers if network.consumers(layer.name))


def _layer_boundary(layer: Layer, keepable: frozenset[str]) -> tuple[str, ...]:
    """The tensors a layer run alone may find, or leave, on chip: its inputs, its weights if
    another layer's output, and its output."""
    read = (*layer.inputs, *((layer.weight_from,) if layer.weight_from else ()), layer.name)
    return tuple(x for x in dict.fromkeys(read) if x in keepable)


def _group_boundary(segment: Segment, keepable: frozenset[str]) -> tuple[str, ...]:
    """The tensors a fused group may find, or leave, on chip: its outside tensors, its output."""
    return tuple(x for x in (*segment.externals, segment.last.name) if x in keepable)


def _subsets(tensors: tuple[str, ...]) -> list[frozenset[str]]:
    """Every subset of ``tensors``, the empty one first."""
    return [frozenset(c) for n in range(len(tensors) + 1) for c in itertools.combinations(tensors, n)]


def build_problem(
    network: Network,
    accelerator: Accelerator,
    objectives: tuple[Objective, ...],
    fusion: int = 0,
    cache: dict | None = None,
    deadline: float | None = None,
    layouts: tuple[Layout, ...] = (),
    jobs: int = 1,
) -> MappingProblem:
    """Generate the candidates of every layer, and of every group of up to ``fusion`` layers
    that can run fused; raise InfeasibleError naming each layer that fits nowhere.

    Candidates are kept by their costs under ``objectives`` (and their traffic) against
    their footprint; with ``layouts`` (DRAM bursts), priced in bursts for every pair of
    them (``dse_milp.burst_candidates``). ``cache`` (any dict, kept by the caller)
    reuses the candidates of layers and groups met before, for repeated solves of
    nearly the same network. The distinct generations run on up to ``jobs`` worker processes.
    Ctrl-C, or ``deadline`` passing, stops it with InterruptedRun or NoSolutionError.
    """
    cache = {} if cache is None else cache
    keepable = kept_candidates(network) if accelerator.keep_tensors else frozenset()
    alone = [(layer, kept) for layer in network.layers for kept in _subsets(_layer_boundary(layer, keepable))]
    fused = [(s, kept) for s in segments(network, fusion) for kept in _subsets(_group_boundary(s, keepable))]
    _generate_missing(alone, fused, accelerator, objectives, layouts, keepable, cache, deadline, jobs)
    candidates = {}
    for layer in network.layers:
        parts = []
        for kept in _subsets(_layer_boundary(layer, keepable)):
            key = _layer_key(layer, kept, accelerator, objectives)
            cands = cache[(*key, layouts) if layouts else key]
            parts.append(replace(cands, kept=(kept,) * len(cands)) if keepable else cands)
        candidates[layer.name] = stacked(parts, per_unit={"layer", "smallest_footprint"})
    groups = {}
    for segment in segments(network, fusion):
        parts = []
        for kept in _subsets(_group_boundary(segment, keepable)):
            key = _group_key(segment, kept, accelerator, objectives, layouts, keepable)
            cands = renamed(cache[(*key, layouts) if layouts else key], segment)
            parts.append(replace(cands, kept=(kept,) * len(cands)) if keepable else cands)
        cands = stacked(parts, per_unit={"segment"})
        if len(cands):
            groups[segment.layers[0].name, segment.last.name] = cands
    problem = MappingProblem(network, accelerator, candidates, objectives, groups, layouts, keepable)
    stuck = [
        does_not_fit(network.by_name[name], cands.smallest_footprint, accelerator)
        for name, cands in candidates.items()
        if len(cands) == 0 and not problem.covering(name)
    ]
    if stuck:
        raise InfeasibleError(stuck)
    return problem


def stop_if_asked(deadline: float | None, what: str) -> None:
    """Raise the error of an early stop (Ctrl-C, or the deadline) that came before any solution."""
    reason = stop_reason(deadline)
    if reason == INTERRUPTED:
        raise InterruptedRun(f"interrupted {what}, before any solution")
    if reason == TIME_LIMIT:
        raise NoSolutionError(f"reached {what}, before any solution")


def _layer_key(
    layer: Layer, kept: frozenset[str], accelerator: Accelerator, objectives: tuple[Objective, ...]
) -> tuple:
    return (layer, accelerator, objectives, OnChip.of(layer, kept))


def _group_key(segment: Segment, kept: frozenset[str], accelerator: Accelerator, objectives: tuple[Objective, ...],
               layouts: tuple[Layout, ...], keepable: frozenset[str]) -> tuple:  # fmt: skip
    boundary = _group_boundary(segment, keepable)
    return (signature(segment), accelerator, objectives, bool(layouts), tuple(x in kept for x in boundary))


@dataclass(frozen=True)
class _LayerWork:
    """One generation for the layers of one shape: their candidates (unless ``plain``), and with
    ``layouts``, those priced in bursts for every pair of them."""

    shape: Layer
    accelerator: Accelerator
    objectives: tuple[Objective, ...]
    on_chip: OnChip
    layouts: tuple[Layout, ...]
    plain: Candidates | None

    def __call__(self) -> tuple[Candidates, Candidates | None]:
        acc, objectives = self.accelerator, self.objectives
        plain = generate(self.shape, acc, objectives, self.on_chip) if self.plain is None else self.plain
        if not self.layouts:
            return plain, None
        return plain, layer_in_bursts(self.shape, acc, objectives, pairs(self.layouts), self.on_chip)


@dataclass(frozen=True)
class _GroupWork:
    """One generation for the groups of one signature, done for the first of them, ``segment``
    (renamed for the others), like ``_LayerWork``; with layouts to choose, every halo mode
    keeps its own front, to be priced in bursts."""

    segment: Segment
    accelerator: Accelerator
    objectives: tuple[Objective, ...]
    kept: frozenset[str]
    layouts: tuple[Layout, ...]
    plain: GroupCandidates | None

    def __call__(self) -> tuple[GroupCandidates, GroupCandidates | None]:
        acc, objectives, layouts = self.accelerator, self.objectives, self.layouts
        plain = self.plain
        if plain is None:
            plain = generate_group(self.segment, acc, objectives, by_halo=bool(layouts), kept=self.kept)
        if not layouts:
            return plain, None
        return plain, group_in_bursts(renamed(plain, self.segment), acc, objectives, pairs(layouts), self.kept)


def _run(work: _LayerWork | _GroupWork) -> tuple:
    return work()


def _generate_missing(
    alone: list[tuple[Layer, frozenset[str]]],
    fused: list[tuple[Segment, frozenset[str]]],
    accelerator: Accelerator,
    objectives: tuple[Objective, ...],
    layouts: tuple[Layout, ...],
    keepable: frozenset[str],
    cache: dict,
    deadline: float | None,
    jobs: int,
) -> None:
    """Put in ``cache`` the candidates of each layer (with the tensors it keeps) and each group
    that it lacks: one generation per layer shape and per group signature, on up to ``jobs``
    workers."""
    work: dict[tuple, _LayerWork | _GroupWork] = {}
    users: dict[tuple, list[tuple[tuple, Layer | Segment]]] = {}
    for layer, kept in alone:
        key = _layer_key(layer, kept, accelerator, objectives)
        if key in cache and (not layouts or (*key, layouts) in cache):
            continue
        on_chip = key[-1]
        shared = ("layer", shape_of(layer), on_chip)
        work.setdefault(shared, _LayerWork(shape_of(layer), accelerator, objectives, on_chip, layouts, cache.get(key)))
        users.setdefault(shared, []).append((key, layer))
    for segment, kept in fused:
        key = _group_key(segment, kept, accelerator, objectives, layouts, keepable)
        if key in cache and (not layouts or (*key, layouts) in cache):
            continue
        plain = cache.get(key)
        plain = None if plain is None else renamed(plain, segment)
        work.setdefault(key, _GroupWork(segment, accelerator, objectives, kept, layouts, plain))
        users.setdefault(key, []).append((key, segment))
    done = 0  # the results stop short at Ctrl-C or the deadline
    with contextlib.closing(ordered(_run, list(work.values()), jobs, deadline)) as results:
        for shared, (plain, priced) in zip(work, results, strict=False):
            done += 1
            for key, unit in users[shared]:
                own = {"layer": unit} if isinstance(unit, Layer) else {"segment": work[shared].segment}
                cache.setdefault(key, replace(plain, **own))
                if layouts:
                    cache[*key, layouts] = replace(priced, **own)
    if done < len(work):
        stop_if_asked(deadline, "while generating candidates")
