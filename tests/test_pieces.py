"""Streamed weights in pieces: the per-layer and per-group fronts against every piece size
and assignment, and the candidates priced in bursts against every byte candidate with every
assignment that fits."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest

from dse_milp.accelerator import Accelerator, Energy, unified_buffer
from dse_milp.burst_candidates import group_in_bursts
from dse_milp.bursts import group_bursts, piece_bursts
from dse_milp.fusion import GroupMapping, Segment, generate_group, group_cost, weight_slice
from dse_milp.layouts import NCHW, NHWC, Layouts
from dse_milp.loader import parse_network
from dse_milp.pieces import assignments, layer_front
from dse_milp.traffic import Traffic
from dse_milp.units import renamed, segments, signature
from dse_milp.workload import Layer, LayerKind, Precision
from tests.layers import conv_chain
from tests.test_fusion import random_networks

ENERGY = Energy(20.0, 0.6, 0.2)


def conv(name: str, m: int, n: int, k: int, bits: int = 8, groups: int = 1) -> Layer:
    return Layer(name, LayerKind.CONV2D, ("input",), m=m, n=n, r=4, c=4, h=4 + k - 1, w=4 + k - 1, kh=k, kw=k,
                 groups=groups, precision=Precision(input=bits, weight=bits, output=bits))  # fmt: skip


@pytest.mark.parametrize("burst", [2, 16, 64])
def test_a_layer_front_holds_the_fewest_bursts_of_every_piece_size(burst: int):
    """Every piece size moves no fewer bursts than the front's point of the largest size no
    larger than it; along the front the bursts fall strictly as the pieces grow."""
    for layer in (conv("dw", 32, 32, 3, groups=32), conv("c", 24, 5, 3), conv("p", 40, 3, 1, bits=4)):
        front = layer_front(layer, burst)
        assert front[0][0] == 1
        assert all(b1 < b0 and q1 > q0 for (q0, b0), (q1, b1) in itertools.pairwise(front))
        for q in range(1, layer.m + 1):
            best = max(point for point in front if point[0] <= q)
            assert piece_bursts(layer, q, burst) >= best[1]


def test_a_depthwise_slice_of_nine_bytes_in_pieces_of_seven():
    """3x3 depthwise, 8-bit: 9 bytes a channel. One channel at a time, 64-byte bursts move
    32 bursts for 32 channels; seven at a time (63 bytes) ceil(32/7) = 5 bursts; 64 at a
    time would need more channels than there are: 32 channels, 288 bytes, 5 bursts."""
    layer = conv("dw", 32, 32, 3, groups=32)
    assert weight_slice(layer) == 9
    assert piece_bursts(layer, 1, 64) == 32
    assert piece_bursts(layer, 7, 64) == 4 * 1 + 1  # four pieces of 63 bytes, one of 36
    assert piece_bursts(layer, 32, 64) == 5
    assert layer_front(layer, 64)[-1] == (7, 5)  # 7 channels already move as few as 32


def test_assignments_dominate_every_assignment_of_pieces():
    rng = random.Random(3)
    for _ in range(30):
        layers = [conv(f"l{i}", rng.randint(1, 6), rng.randint(1, 4), rng.choice([1, 3]),
                       bits=rng.choice([4, 8])) for i in range(rng.randint(1, 3))]  # fmt: skip
        burst, limit = rng.choice([2, 4, 16]), rng.randint(0, 400)
        front = assignments(layers, burst, limit)
        assert front[0] == (0, 0, ())
        for extra, saved, chosen in front:  # each point is what its assignment holds and saves
            piece = dict(chosen)
            assert extra == sum((piece.get(x.name, 1) - 1) * weight_slice(x) * x.precision.weight for x in layers)
            assert saved == sum(
                piece_bursts(x, 1, burst) - piece_bursts(x, piece.get(x.name, 1), burst) for x in layers
            )
            assert extra <= limit
        for sizes in itertools.product(*(range(1, x.m + 1) for x in layers)):
            extra = sum((q - 1) * weight_slice(x) * x.precision.weight for q, x in zip(sizes, layers, strict=True))
            saved = sum(
                piece_bursts(x, 1, burst) - piece_bursts(x, q, burst) for q, x in zip(sizes, layers, strict=True)
            )
            if extra <= limit:
                assert any(e <= extra and s >= saved for e, s, _ in front), sizes


def every_pieces(segment: Segment, resident: frozenset[str]) -> list[tuple[tuple[str, int], ...]]:
    streamed = [x for x in segment.layers if x.has_weights and x.name not in resident]
    return [
        tuple((x.name, q) for x, q in zip(streamed, sizes, strict=True) if q > 1)
        for sizes in itertools.product(*(range(1, x.m + 1) for x in streamed))
    ]


@pytest.mark.parametrize("double", [False, True])
def test_group_candidates_in_bursts_hold_the_best_of_every_assignment(double: bool):
    """For each byte candidate and every assignment of pieces that fits, some candidate priced
    in bursts (for the same layouts) moves no more and holds no more; and every candidate
    moves exactly what its mapping's bursts move, pieces included."""
    rng = random.Random(5)
    compared = pieced = 0
    for network in random_networks(80, seed=8):
        for segment in segments(network, longest=3):
            capacity = rng.randint(40, 800)
            acc = Accelerator("a", unified_buffer(capacity), double, 4.0, 100.0, 8, ENERGY,
                              burst_bytes=rng.choice([4, 32, 64]))  # fmt: skip
            plain = generate_group(segment, acc, by_halo=True)
            if not len(plain):
                continue
            pair = Layouts(NCHW, NHWC)
            priced = group_in_bursts(plain, acc, (), (pair,))
            for i, mapping in enumerate(priced.mappings):
                moved = sum(group_bursts(segment, mapping, pair, acc.burst_bytes).values(), Traffic()).total
                assert priced.total_bits[i] == 8 * acc.burst_bytes * moved
                cost = group_cost(segment, mapping, double)
                assert list(priced.footprint[i]) == list(cost.footprint.values())
                assert priced.exposed[i] == cost.exposed
                pieced += bool(mapping.pieces)
            size = priced.footprint.sum(axis=1)
            for mapping in plain.mappings:
                for pieces in every_pieces(segment, mapping.resident):
                    trial = replace(mapping, pieces=pieces)
                    cost = group_cost(segment, trial, double)
                    if sum(cost.footprint.values()) > 8 * capacity:
                        continue
                    moved = 8 * acc.burst_bytes * sum(group_bursts(segment, trial, pair, acc.burst_bytes).values(),
                                                      Traffic()).total  # fmt: skip
                    held = sum(cost.footprint.values())
                    assert any(priced.total_bits[k] <= moved and size[k] <= held for k in range(len(priced)))
            compared += 1
    assert compared > 100 and pieced >= 5


def test_shared_candidates_rename_the_layers_read_in_pieces():
    """Groups of the same shapes share their candidates; a copy names its own layers, those
    read in pieces included."""
    a, b = (Segment(parse_network(conv_chain(x, 2, channels=4, size=4)), 0, 2) for x in "ab")
    assert signature(a) == signature(b)
    cands = generate_group(a, Accelerator("x", unified_buffer(10**6), False, 4.0, 100.0, 8, ENERGY))
    cands = replace(cands, mappings=tuple(replace(m, resident=frozenset({"a0"}), pieces=(("a1", 2),))
                                          for m in cands.mappings))  # fmt: skip
    assert renamed(cands, a) is cands
    copy = renamed(cands, b)
    assert all(m.pieces == (("b1", 2),) and m.resident == {"b0"} for m in copy.mappings)


def test_a_mapping_reads_pieces_only_of_its_streamed_layers():
    """The checker refuses pieces of a resident layer, of a layer outside the group, or
    larger than the layer's channels."""
    from dse_milp.check import check_mappings

    network = random_networks(1, seed=8)[0]
    segment = next(s for s in segments(network, 3) if any(x.has_weights for x in s.layers))
    weighted = next(x for x in segment.layers if x.has_weights)
    acc = Accelerator("a", unified_buffer(10**6), False, 4.0, 100.0, 8, ENERGY)
    key = (segment.layers[0].name, segment.last.name)
    others = {x.name: None for x in network.layers if x.name not in segment.names}
    from dse_milp.candidates import generate

    alone = {name: generate(network.by_name[name], acc).mapping(0) for name in others}
    good = GroupMapping(1, 1, frozenset(), pieces=((weighted.name, weighted.m),))
    assert check_mappings(network, acc, alone, {key: good}).feasible
    for bad in (GroupMapping(1, 1, frozenset({weighted.name}), pieces=((weighted.name, 1),)),
                GroupMapping(1, 1, frozenset(), pieces=((weighted.name, weighted.m + 1),)),
                GroupMapping(1, 1, frozenset(), pieces=(("elsewhere", 2),))):  # fmt: skip
        assert any("pieces" in v for v in check_mappings(network, acc, alone, {key: bad}).violations)
