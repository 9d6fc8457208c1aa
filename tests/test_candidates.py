"""Candidate generation against exhaustive enumeration of the complete tiling space."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dse_milp.accelerator import Accelerator
from dse_milp.candidates import STATIONARY_ORDERS, TRAFFIC_FIELDS, channel_options, generate
from dse_milp.traffic import ORDERS, Mapping, footprint, traffic
from dse_milp.workload import Layer, LayerKind
from tests.layers import ENERGY, every_tiling, small_accelerator, small_layers, tilings


@settings(max_examples=100, deadline=None)
@given(
    layer=small_layers(),
    capacity=st.integers(4, 400),
    double_buffering=st.booleans(),
    separate=st.booleans(),
    operand_levels=st.booleans(),
)
def test_every_candidate_is_exact_fits_and_is_not_dominated(
    layer: Layer, capacity: int, double_buffering: bool, separate: bool, operand_levels: bool
):
    acc = small_accelerator(capacity, double_buffering, separate, operand_levels)
    cands = generate(layer, acc)
    for k in range(len(cands)):
        mapping = cands.mapping(k)
        recomputed = traffic(layer, mapping)
        assert tuple(int(v) for v in cands.traffic[k]) == tuple(getattr(recomputed, f) for f in TRAFFIC_FIELDS)
        tiles = footprint(layer, mapping, double_buffering)
        assert [tiles[op] for op in tiles] == list(cands.footprint[k])
        for b in acc.buffers:
            assert sum(tiles[op] for op in b.operands) <= 8 * b.capacity_bytes
    # sorted by footprint up, traffic strictly down: no candidate dominates another
    size = cands.footprint.sum(axis=1)
    assert np.all(np.diff(size) > 0)
    assert np.all(np.diff(cands.total_bits) < 0)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), layer=small_layers())
def test_three_stationary_orders_reach_the_least_traffic_of_all_24(data: st.DataObject, layer: Layer):
    tiling = data.draw(tilings(layer))
    every = min(traffic(layer, Mapping(tiling, order)).total for order in ORDERS)
    stationary = min(traffic(layer, Mapping(tiling, order)).total for order in STATIONARY_ORDERS)
    assert stationary == every


def test_candidates_do_not_depend_on_capacity_beyond_the_filter():
    """A larger buffer keeps every candidate of a smaller one (the front is cut, not changed)."""
    layer = Layer("x", LayerKind.CONV2D, ("input",), m=8, n=6, r=6, c=6, h=8, w=8, kh=3, kw=3)
    small, large = generate(layer, small_accelerator(300)), generate(layer, small_accelerator(3000))
    assert len(small) < len(large)
    assert set(map(tuple, small.tiles)) <= set(map(tuple, large.tiles))


def test_channel_options_are_the_smallest_tile_per_trip_count():
    for extent in (1, 2, 7, 12, 64, 100, 1000):
        options = channel_options(extent)
        expected = {}
        for tile in range(1, extent + 1):
            expected.setdefault(-(-extent // tile), tile)
        assert sorted(expected.values()) == list(options.tile)
        assert len(options.tile) <= 2 * int(np.sqrt(extent)) + 1


def test_every_tiling_helper_is_complete():
    layer = Layer("x", LayerKind.CONV2D, ("input",), m=2, n=3, r=2, c=1, h=2, w=1)
    assert len(every_tiling(layer)) == 2 * 3 * 2 * 1


@settings(max_examples=80, deadline=None)
@given(layer=small_layers(), capacity=st.integers(4, 400), order=st.sampled_from(ORDERS))
def test_least_traffic_for_a_fixed_order_equals_brute_force(layer: Layer, capacity: int, order: str):
    from dse_milp.candidates import least_traffic_for_order

    acc = small_accelerator(capacity)
    fitting = [
        traffic(layer, Mapping(t, order)).total
        for t in every_tiling(layer)
        if sum(footprint(layer, Mapping(t, order), False).values()) <= 8 * capacity
    ]
    assert least_traffic_for_order(layer, acc, order) == (min(fitting) if fitting else None)


@settings(max_examples=40, deadline=None)
@given(layer=small_layers(), banks=st.integers(1, 8), order=st.sampled_from(ORDERS))
def test_least_traffic_for_a_fixed_order_under_a_free_split(layer: Layer, banks: int, order: str):
    from dse_milp.accelerator import free_split
    from dse_milp.candidates import least_traffic_for_order

    buffers, split = free_split(banks * 16, 16)
    acc = Accelerator("split", buffers, False, 4.0, 100.0, 8, ENERGY, split)
    fitting = [
        traffic(layer, Mapping(t, order)).total
        for t in every_tiling(layer)
        if sum(footprint(layer, Mapping(t, order), False).values()) <= 8 * split.total_bytes
    ]
    assert least_traffic_for_order(layer, acc, order) == (min(fitting) if fitting else None)
