"""Per-operand levels: the reduction of orders x levels to patterns, against brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dse_milp.accelerator import Accelerator, free_split
from dse_milp.candidates import TRAFFIC_FIELDS, fewest_tiles, generate
from dse_milp.cost import Objective
from dse_milp.levels import patterns, summary
from dse_milp.simulate import simulate
from dse_milp.traffic import LOOPS, ORDERS, Levels, Mapping, Tiling, footprint, traffic
from dse_milp.workload import Layer, LayerKind, Operand, Precision
from tests.brute_force import every_mapping
from tests.layers import ENERGY, small_accelerator, small_layers, tilings

EVERY_LEVELS = [Levels(*x) for x in itertools.product(range(len(LOOPS) + 1), repeat=3)]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), layer=small_layers())
def test_each_operand_depends_only_on_its_own_level(data: st.DataObject, layer: Layer):
    """What the brute force relies on: an operand's traffic and footprint do not change
    when another operand moves."""
    tiling, order = data.draw(tilings(layer)), data.draw(st.sampled_from(ORDERS))
    levels = data.draw(st.sampled_from(EVERY_LEVELS))
    fields = {Operand.INPUT: ("input_read",), Operand.WEIGHT: ("weight_read",),
              Operand.OUTPUT: ("output_write", "psum_read", "psum_write")}  # fmt: skip
    base = Mapping(tiling, order, levels)
    for op in Operand:
        moved = Mapping(tiling, order, Levels(*(levels.of(o) if o is op else 4 - levels.of(o) for o in Operand)))
        assert [getattr(traffic(layer, moved), f) for f in fields[op]] == [
            getattr(traffic(layer, base), f) for f in fields[op]
        ]
        assert footprint(layer, moved, True)[op] == footprint(layer, base, True)[op]


@settings(max_examples=40, deadline=None)
@given(data=st.data(), layer=small_layers(), double_buffering=st.booleans(), in_buffer=st.booleans())
def test_brute_force_evaluates_the_scalar_closed_form(
    data: st.DataObject, layer: Layer, double_buffering: bool, in_buffer: bool
):
    acc = small_accelerator(10**6, double_buffering, in_buffer=in_buffer)
    tilings_, total, _, _, _ = every_mapping(layer, acc)
    for _ in range(20):
        t = data.draw(st.integers(0, len(tilings_) - 1))
        o = data.draw(st.integers(0, len(ORDERS) - 1))
        levels = data.draw(st.sampled_from(EVERY_LEVELS))
        assert total[(t, o, *levels)] == traffic(layer, Mapping(tilings_[t], ORDERS[o], levels)).total


@settings(max_examples=150, deadline=None)
@given(
    layer=small_layers(),
    capacity=st.integers(4, 400),
    double_buffering=st.booleans(),
    separate=st.booleans(),
    operand_levels=st.booleans(),
    in_buffer=st.booleans(),
)
def test_least_traffic_equals_every_order_level_and_tiling(
    layer: Layer, capacity: int, double_buffering: bool, separate: bool, operand_levels: bool, in_buffer: bool
):
    """The 51 patterns (or the three stationary orders, operands innermost) lose nothing: the
    least-traffic candidate that fits equals the least over every tiling x 24 orders x 125
    level assignments (or innermost only) that fits."""
    acc = small_accelerator(capacity, double_buffering, separate, operand_levels, in_buffer)
    _, total, fit, _, _ = every_mapping(layer, acc)
    cands = generate(layer, acc)
    if not fit.any():
        assert len(cands) == 0
        return
    assert int(cands.total_bits.min()) == int(total[fit].min())


@settings(max_examples=60, deadline=None)
@given(layer=small_layers(), double_buffering=st.booleans(), in_buffer=st.booleans())
def test_the_front_equals_brute_force_at_every_capacity(layer: Layer, double_buffering: bool, in_buffer: bool):
    """Each candidate's (traffic, footprint) is on the brute-force front of every mapping, and
    every point of that front has a candidate: the whole trade-off curve, not only its end."""
    acc = small_accelerator(10**6, double_buffering, in_buffer=in_buffer)
    _, total, _, held, _ = every_mapping(layer, acc)
    size = np.broadcast_to(sum(held.values()), total.shape)
    points = sorted(set(zip(size.ravel().tolist(), total.ravel().tolist(), strict=True)))
    front, best = [], None
    for s, t in points:
        if best is None or t < best:
            front.append((s, t))
            best = t
    cands = generate(layer, acc)
    assert sorted(zip(cands.footprint.sum(axis=1).tolist(), cands.total_bits.tolist(), strict=True)) == front


@settings(max_examples=60, deadline=None)
@given(layer=small_layers(), banks=st.integers(1, 8), bank=st.sampled_from([4, 16]))
def test_least_traffic_under_a_free_split_equals_brute_force(layer: Layer, banks: int, bank: int):
    buffers, split = free_split(banks * bank, bank)
    acc = Accelerator("split", buffers, False, 4.0, 100.0, 8, ENERGY, split)
    _, total, fit, held, _ = every_mapping(layer, acc)
    fit = fit & (sum(-(-block // (8 * bank)) for block in held.values()) <= banks)
    cands = generate(layer, acc)
    if not fit.any():
        assert len(cands) == 0
        return
    assert int(cands.total_bits.min()) == int(total[fit].min())


@settings(max_examples=60, deadline=None)
@given(data=st.data(), layer=small_layers())
def test_every_candidate_mapping_is_exact_under_simulation(data: st.DataObject, layer: Layer):
    capacity, double_buffering = data.draw(st.integers(8, 400)), data.draw(st.booleans())
    acc = small_accelerator(capacity, double_buffering, in_buffer=data.draw(st.booleans()))
    objectives = data.draw(st.sampled_from([(Objective.DRAM,), (Objective.LATENCY, Objective.DRAM)]))
    cands = generate(layer, acc, objectives)
    for k in range(len(cands)):
        mapping = cands.mapping(k)
        walk = simulate(layer, mapping, acc.double_buffering, acc.accumulate_in_buffer)
        assert tuple(int(v) for v in cands.traffic[k]) == tuple(getattr(walk.traffic, f) for f in TRAFFIC_FIELDS)
        assert list(cands.footprint[k]) == [walk.footprint[op] for op in Operand]
        assert cands.exposed[k] == walk.exposed


def test_the_reduction_keeps_51_patterns_and_three_when_operands_stay_innermost():
    every = patterns()
    assert len(every) == 51
    assert [p.order for p in patterns(per_operand=False)] == ["mnrc", "rcmn", "rcnm"]
    # each pattern's representative has the pattern's summary, and the innermost ones come first
    for p in every:
        assert summary(p.order, p.levels) == (p.full, p.refetch)
    assert all(p.levels == Levels() for p in every[:3])


def test_a_depthwise_layer_in_4_kib_reaches_the_compulsory_traffic():
    """The issue's case: 3x3 depthwise, 8 channels of 56x56, in 4 KiB. One tile per operand
    cannot hold a whole plane of both input and output (2 x 3,136 bytes), so it rereads the
    halo between row tiles; holding a channel's whole input plane while writing the output in
    small blocks reads every input once."""
    layer = Layer("dw", LayerKind.CONV2D, ("input",), m=8, n=8, r=56, c=56, h=56, w=56, kh=3, kw=3, ph=1,
                  pw=1, groups=8, precision=Precision(8, 8, 8, 32))  # fmt: skip
    acc = small_accelerator(4096)
    compulsory = (8 * 56 * 56 * 2 + 8 * 9) * 8
    innermost = generate(layer, small_accelerator(4096, operand_levels=False))
    assert innermost.total_bits.min() > compulsory
    cands = generate(layer, acc)
    best = cands.mapping(int(np.argmin(cands.total_bits)))
    assert cands.total_bits.min() == compulsory
    assert best.levels.input < 4  # the input holds a block wider than one tile


def test_hand_derived_output_block_keeps_partial_sums_on_chip():
    """A 1x1 conv, M=4, N=6, 4x4 output, tiles (2, 3, 2, 4), order mnrc, the output at level 2
    (its block spans the whole r and c loops: 2 x 4 x 4 at psum width). The reduction loop n
    sits outside the output's level but inside its block's lifetime: every n tile accumulates
    into the resident block, so no partial sums leave, while the input is read T_m = 2 times
    and the weights once."""
    layer = Layer("conv", LayerKind.CONV2D, ("input",), m=4, n=6, r=4, c=4, h=4, w=4,
                  precision=Precision(8, 8, 8, 32))  # fmt: skip
    mapping = Mapping(Tiling(2, 3, 2, 4), "mnrc", Levels(4, 4, 2))
    t = traffic(layer, mapping)
    assert (t.weight_read, t.input_read, t.output_write, t.psum_write, t.psum_read) == (
        24 * 8, 2 * 96 * 8, 64 * 8, 0, 0,
    )  # fmt: skip
    assert footprint(layer, mapping, False)[Operand.OUTPUT] == 2 * 4 * 4 * 32
    assert traffic(layer, Mapping(Tiling(2, 3, 2, 4), "mnrc")).psum_write == 64 * 4 * 8


@settings(max_examples=80, deadline=None)
@given(
    layer=small_layers(),
    capacity=st.integers(4, 400),
    double_buffering=st.booleans(),
    separate=st.booleans(),
    operand_levels=st.booleans(),
)
def test_ties_go_to_the_fewest_tiles(
    layer: Layer, capacity: int, double_buffering: bool, separate: bool, operand_levels: bool
):
    """Of every mapping that fits and moves the least traffic, ``fewest_tiles`` finds one with
    the fewest tiles (brute force over every tiling, order and level), and it is exact."""
    acc = small_accelerator(capacity, double_buffering, separate, operand_levels)
    tilings_, total, fit, _, _ = every_mapping(layer, acc)
    if not fit.any():
        return
    least = int(total[fit].min())
    count = np.array([math.prod(-(-e // getattr(t, d)) for d, e in layer.dims.items()) for t in tilings_])
    fewest = int(np.broadcast_to(count.reshape(-1, *[1] * (total.ndim - 1)), total.shape)[fit & (total == least)].min())
    mapping = fewest_tiles(layer, acc, least)
    assert mapping is not None
    assert traffic(layer, mapping).total == least
    held = footprint(layer, mapping, double_buffering)
    assert all(sum(held[op] for op in b.operands) <= 8 * b.capacity_bytes for b in acc.buffers)
    assert math.prod(-(-e // getattr(mapping.tiling, d)) for d, e in layer.dims.items()) == fewest
    assert operand_levels or mapping.levels == Levels()
