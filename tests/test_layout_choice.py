"""The program's choice of tensor layouts under DRAM bursts, against brute force."""

from __future__ import annotations

import itertools
from dataclasses import astuple, replace

import pytest

from dse_milp.accelerator import Accelerator
from dse_milp.burst_candidates import AUTO_LAYOUTS
from dse_milp.bursts import group_bursts, layer_bursts
from dse_milp.check import check_mappings
from dse_milp.cost import Objective
from dse_milp.layouts import NCHW, Layout, Layouts
from dse_milp.loader import parse_network
from dse_milp.solution import solve
from dse_milp.solvers import SolverOptions, get_backend
from dse_milp.traffic import Mapping, Tiling, Traffic, traffic
from dse_milp.units import build_problem
from dse_milp.workload import Network
from formulations import build_model
from tests.layers import small_accelerator
from tests.test_fusion import random_networks

BURST = 8


def bursty(capacity: int, burst: int = BURST, **kwargs: bool) -> Accelerator:
    return replace(small_accelerator(capacity, **kwargs), burst_bytes=burst)


def program_optimum(network: Network, acc: Accelerator, fusion: int, layouts: tuple[Layout, ...]) -> float:
    """The optimum of the program itself (before any tie-break or coarsening), in bytes moved."""
    problem = build_problem(network, acc, (Objective.DRAM,), fusion, layouts=layouts)
    model = build_model(problem)
    result = get_backend("highs").solve(model, SolverOptions().started())
    assert result.has_solution
    return float(model.total["dram"]())


def test_priced_candidates_move_the_bursts_of_their_layouts():
    """Every candidate of every layer and group, in every layout pair: its bits are its whole
    bursts (counted again here), and its useful bits the traffic model's."""
    checked = 0
    for network in random_networks(12, seed=3):
        acc = bursty(2048)
        problem = build_problem(network, acc, (Objective.DRAM,), fusion=3, layouts=AUTO_LAYOUTS)
        for name, cands in problem.candidates.items():
            layer = network.by_name[name]
            assert {str(p.input) for p in cands.layouts} <= {str(x) for x in AUTO_LAYOUTS}
            for k in range(len(cands)):
                mapping = cands.mapping(k)
                moved = layer_bursts(layer, mapping, cands.layouts[k], BURST)
                assert tuple(cands.traffic[k]) == tuple(8 * BURST * x for x in astuple(moved))
                assert tuple(cands.useful[k]) == astuple(traffic(layer, mapping))
                checked += 1
        for cands in problem.groups.values():
            for k, mapping in enumerate(cands.mappings):
                moved = sum(group_bursts(cands.segment, mapping, cands.layouts[k], BURST).values(), Traffic())
                assert cands.total_bits[k] == 8 * BURST * moved.total
                checked += 1
    assert checked > 500


def test_layouts_chosen_equal_brute_force_over_every_assignment():
    """Layers alone: for every assignment of a layout to every tensor, each layer takes its
    cheapest candidate in the layouts of what it reads and writes; the program's optimum is
    the least total over every assignment. Some instances must be ones where the layers'
    own favourite layouts disagree, or the test would not test the linking: 16-byte bursts in
    a 128-byte buffer (with tiles of several groups, most layers' favourites agree)."""
    compared = disagreeing = 0
    for network in random_networks(30, seed=9):
        acc = bursty(128, burst=16)
        problem = build_problem(network, acc, (Objective.DRAM,), layouts=AUTO_LAYOUTS)
        tensors = list(dict.fromkeys(t for layer in network.layers for t in (*layer.inputs, layer.name)))
        if len(tensors) > 6:
            continue
        best = float("inf")
        for assignment in itertools.product(AUTO_LAYOUTS, repeat=len(tensors)):
            of = dict(zip(tensors, assignment, strict=True))
            total = 0.0
            for layer in network.layers:
                cands = problem.candidates[layer.name]
                reads = {of[t] for t in layer.inputs[: layer.input_tensors]}
                ok = [k for k, p in enumerate(cands.layouts) if {p.input} == reads and p.output == of[layer.name]]
                total += min((cands.total_bits[k] for k in ok), default=float("inf")) / 8
            best = min(best, total)
        assert program_optimum(network, acc, 0, AUTO_LAYOUTS) == pytest.approx(best)
        compared += 1
        disagreeing += best > sum(cands.total_bits.min() for cands in problem.candidates.values()) / 8
    assert compared >= 20 and disagreeing >= 1


def test_auto_is_never_worse_than_one_layout_for_all_and_the_report_agrees():
    """With fusion: choosing the layouts is at least as good as any one layout for every tensor;
    the solution's tensors are in the layouts their writers and readers were priced in."""
    for network in random_networks(6, seed=5):
        acc = bursty(2048)
        auto = program_optimum(network, acc, 3, AUTO_LAYOUTS)
        for layout in AUTO_LAYOUTS:
            assert auto <= program_optimum(network, acc, 3, (layout,)) + 1e-6
        solution = solve(network, acc, fusion=3, prices=False)
        assert solution.moved_bytes is not None and solution.moved_bytes <= auto + 1e-6
        for r in solution.layers:
            assert r.layouts is not None
            if r.group is None:
                assert r.layouts.output == solution.layouts[r.layer.name]
                assert {solution.layouts[t] for t in r.layer.inputs[: r.layer.input_tensors]} == {r.layouts.input}
            elif r.layer is r.group.segment.last:
                assert r.layouts.output == solution.layouts[r.layer.name]


def test_one_byte_bursts_leave_everything_as_before():
    """Without a burst there is nothing to choose: no layouts, byte counts."""
    network = random_networks(1, seed=2)[0]
    acc = small_accelerator(2048)
    solution = solve(network, acc, prices=False)
    assert solution.layouts == {} and solution.moved_bytes is None
    assert all(r.layouts is None and r.bursts is None for r in solution.layers)
    assert solve(network, acc, prices=False, layout=NCHW).dram_bytes == solution.dram_bytes


def test_a_depthwise_layer_takes_tiles_of_many_channels_and_moves_only_whole_tensors():
    """A depthwise layer of 64 planes of 25x5 bytes, in a buffer that holds it whole, with
    128-byte bursts. One channel at a time, every 125-byte plane straddles a burst boundary;
    the program takes tiles of many channels and moves each tensor in ceil(bytes / 128)
    bursts, the weights (576 bytes) in 5, in NCHW, the first layout of those that tie. The
    checker accepts its mapping, and refuses tiles of too many or no groups, or too large
    for the buffer."""
    network = parse_network({
        "name": "dw", "input": {"channels": 64, "height": 25, "width": 5},
        "layers": [{"name": "dw", "kind": "conv2d", "in_channels": 64, "out_channels": 64, "kernel": 3,
                    "padding": 1, "groups": 64}],
    })  # fmt: skip
    solution = solve(network, bursty(32 * 1024, burst=128), prices=False)
    (result,) = solution.layers
    assert result.mapping is not None and result.mapping.groups > 1
    assert result.bursts is not None
    assert (result.bursts.input_read, result.bursts.weight_read, result.bursts.output_write) == (63, 5, 63)
    # whole tensors move in as many bursts in every layout: the tie goes to the earliest, NCHW
    assert solution.layouts == {"input": NCHW, "dw": NCHW}
    acc = bursty(32 * 1024, burst=128)
    assert check_mappings(network, acc, {"dw": result.mapping}).feasible
    for bad in (replace(result.mapping, groups=65), replace(result.mapping, groups=0)):
        (violation,) = check_mappings(network, acc, {"dw": bad}).violations
        assert "groups" in violation
    too_big = Mapping(Tiling(1, 1, 25, 5), "mnrc", groups=64)  # 64 x (8000 + 8000 + 576) / 64 bytes
    assert check_mappings(network, bursty(16 * 1024, burst=128), {"dw": too_big}).violations


def test_tiles_spanning_groups_must_span_them_whole():
    """A grouped conv (2 groups of 2 channels): tiles over both groups must take both channels
    of each along m and n; the bursts refuse the others too."""
    network = parse_network({
        "name": "g", "input": {"channels": 4, "height": 4, "width": 4},
        "layers": [{"name": "g", "kind": "conv2d", "in_channels": 4, "out_channels": 4, "kernel": 1, "groups": 2}],
    })  # fmt: skip
    acc, layer = bursty(4096), network.layers[0]
    whole, half = Mapping(Tiling(2, 2, 4, 4), "mnrc", groups=2), Mapping(Tiling(1, 2, 4, 4), "mnrc", groups=2)
    assert check_mappings(network, acc, {"g": whole}).feasible
    (violation,) = check_mappings(network, acc, {"g": half}).violations
    assert "not whole groups" in violation
    with pytest.raises(ValueError, match="not whole groups"):
        layer_bursts(layer, half, Layouts(NCHW, NCHW), BURST)
