"""DRAM bursts and tensor layouts: the per-block counts against a walk of every element."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dse_milp.accelerator import Accelerator, Energy, free_split, sized
from dse_milp.burst_candidates import with_coarsest
from dse_milp.bursts import group_bursts, layer_bursts
from dse_milp.candidates import bank_counts, fewest_tiles, generate
from dse_milp.fusion import GroupMapping
from dse_milp.halo import Halo
from dse_milp.layouts import NCHW, NHWC, Layout, Layouts, input_spans
from dse_milp.passes import pass_bursts
from dse_milp.simulate import _bursts as element_bursts
from dse_milp.simulate import simulate, simulate_group_bursts
from dse_milp.solution import solve
from dse_milp.traffic import ORDERS, Levels, Mapping, Tiling, Traffic, traffic
from dse_milp.units import segments
from dse_milp.workload import Layer, LayerKind, Precision, Shape
from tests.brute_force import residency_choices
from tests.layers import group_spans, small_layers, tilings
from tests.test_fusion import random_fusion_instance, random_networks, random_pieces

LAYOUTS = st.sampled_from([NCHW, NHWC, Layout("NCHW", 1), Layout("NCHW", 2), Layout("NCHW", 3)])


@settings(max_examples=120, deadline=None)
@given(data=st.data(), layer=small_layers(), burst=st.sampled_from([1, 2, 3, 4, 16]))
def test_bursts_equal_a_walk_of_every_element(data: st.DataObject, layer: Layer, burst: int):
    """Every transfer's distinct bursts, found from its elements' addresses one by one, for
    random tilings (tiles of one group or of several whole groups), orders, levels, layouts
    and bursts (odd bursts and 4-bit elements included, so elements straddle bursts and runs
    share them)."""
    tiling, groups = data.draw(group_spans(layer, data.draw(tilings(layer))))
    levels = Levels(*(data.draw(st.integers(0, 4)) for _ in range(3)))
    mapping = Mapping(tiling, data.draw(st.sampled_from(ORDERS)), levels, groups)
    layouts = Layouts(data.draw(LAYOUTS), data.draw(LAYOUTS))
    walk = simulate(layer, mapping, layouts=(layouts.input, layouts.output), burst_bytes=burst)
    assert layer_bursts(layer, mapping, layouts, burst) == walk.bursts


@settings(max_examples=60, deadline=None)
@given(data=st.data(), layer=small_layers())
def test_one_byte_bursts_of_whole_bytes_are_the_bytes(data: st.DataObject, layer: Layer):
    """With 1-byte bursts and 8-bit elements every layout moves exactly the traffic's bytes."""
    layer = Layer(**{**layer.__dict__, "precision": Precision(8, 8, 8, 32)})
    mapping = Mapping(data.draw(tilings(layer)), data.draw(st.sampled_from(ORDERS)))
    moved = layer_bursts(layer, mapping, Layouts(data.draw(LAYOUTS), data.draw(LAYOUTS)), 1)
    bits = traffic(layer, mapping)
    assert moved.input_read == bits.input_read // 8
    assert moved.output_write == bits.output_write // 8
    assert moved.psum_read == bits.psum_read // 8


def test_a_strided_1x1_conv_moves_the_columns_it_skips():
    """A 1x1 stride-2 conv over 8x8 inputs (1 channel, 8-bit) reads columns 0, 2, 4, 6 of every
    other row. In NCHW with 4-byte bursts each read row touches bytes 0-3 and 4-7: two bursts,
    8 bytes moved for 4 used. One whole-tensor transfer: 4 rows, 8 bursts, 32 bytes for 16."""
    layer = Layer("s2", LayerKind.CONV2D, ("input",), m=1, n=1, r=4, c=4, h=8, w=8, sh=2, sw=2,
                  precision=Precision(8, 8, 8, 32))  # fmt: skip
    assert input_spans(0, 4, 2, 1, 0, 8) == [(0, 1), (2, 3), (4, 5), (6, 7)]
    whole = Mapping(Tiling(1, 1, 4, 4), "mnrc")
    assert traffic(layer, whole).input_read == 16 * 8
    assert layer_bursts(layer, whole, Layouts(NCHW, NCHW), 4).input_read == 8
    # the output (4x4) is dense: 16 bytes, 4 bursts
    assert layer_bursts(layer, whole, Layouts(NCHW, NCHW), 4).output_write == 4


def test_small_tiles_cost_whole_bursts():
    """A 1x1 conv, 16 -> 16 channels over 4x4 (8-bit), tiles of one pixel: in NCHW each pixel's
    16 input channels lie 16 bytes apart, so with 64-byte bursts a one-pixel block touches 4
    bursts (256 bytes moved for 16 used); in NHWC they are one 16-byte run, one burst. Whole
    rows (t_c = 4) in NCHW: 16 runs of 4 bytes over 256 bytes, 4 bursts per row block."""
    layer = Layer("pw", LayerKind.CONV2D, ("input",), m=16, n=16, r=4, c=4, h=4, w=4,
                  precision=Precision(8, 8, 8, 32))  # fmt: skip
    pixel = Mapping(Tiling(16, 16, 1, 1), "mnrc")
    assert layer_bursts(layer, pixel, Layouts(NCHW, NCHW), 64).input_read == 16 * 4
    assert layer_bursts(layer, pixel, Layouts(NHWC, NHWC), 64).input_read == 16 * 1
    rows = Mapping(Tiling(16, 16, 1, 4), "mnrc")
    assert layer_bursts(layer, rows, Layouts(NCHW, NCHW), 64).input_read == 4 * 4


@pytest.mark.parametrize("text", ["nchw", "NHWC", "NCHW16c", "nchw4C"])
def test_layouts_parse(text: str):
    assert str(Layout.parse(text)).upper() == text.upper()


@pytest.mark.parametrize("text", ["CHW", "NCHW0c", "NCHW16", "NCHWc"])
def test_bad_layouts_are_refused(text: str):
    with pytest.raises(ValueError, match="NCHW<b>c"):
        Layout.parse(text)


@pytest.mark.parametrize("layouts", [(NCHW, NCHW), (NHWC, NHWC), (Layout("NCHW", 2), NHWC), (NCHW, Layout("NCHW", 3))])
def test_group_bursts_equal_a_walk_of_every_element(layouts: tuple[Layout, Layout]):
    """Fused groups on random chains and residual blocks: every tile's regions (less what a
    halo cache holds), weights (in pieces) and output, counted from their elements, for
    random tile sizes, residencies, halo modes and pieces."""
    rng = random.Random(11)
    compared = cached = 0
    for network in random_networks(60, seed=6):
        for segment in segments(network, longest=3):
            last = segment.shape(segment.last.name)
            resident = rng.choice(residency_choices(segment))
            mapping = GroupMapping(rng.randint(1, last.height), rng.randint(1, last.width), resident,
                                   rng.choice(list(Halo)), random_pieces(rng, segment, resident))  # fmt: skip
            burst = rng.choice([2, 4, 16])
            found = group_bursts(segment, mapping, Layouts(*layouts), burst)
            assert found == simulate_group_bursts(segment, mapping, layouts, burst)
            compared += 1
            plain = group_bursts(segment, replace(mapping, halo=Halo.RECOMPUTE), Layouts(*layouts), burst)
            cached += sum(found.values(), Traffic()).input_read < sum(plain.values(), Traffic()).input_read
    assert compared > 40 and cached > 5


def test_a_pass_over_nothing_moves_no_burst():
    """A block that reads no rows (or no columns) has no runs: no bursts, and no error."""
    assert pass_bursts(NCHW, Shape(2, 3, 3), 8, 4, [(0, 2)], [[]], [[(0, 3)]]) == 0
    assert pass_bursts(NHWC, Shape(2, 3, 3), 8, 4, [(0, 2)], [[(0, 3)]], [[]]) == 0
    assert pass_bursts(NCHW, Shape(2, 3, 3), 8, 4, [(0, 2)], [[(0, 3)]], [[(0, 3)]]) == 2 * 9 // 4 + 1


@st.composite
def blocks(draw: st.DrawFn, extent: int) -> list[list[tuple[int, int]]]:
    """One to three blocks, each of sorted disjoint index ranges of ``range(extent)`` (maybe none)."""
    found = []
    for _ in range(draw(st.integers(1, 3))):
        cuts = sorted(draw(st.sets(st.integers(0, extent), max_size=4)))
        found.append(list(zip(cuts[::2], cuts[1::2], strict=False)))
    return found


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    shape=st.builds(Shape, st.integers(1, 40), st.integers(1, 6), st.integers(1, 9)),
    layout=st.sampled_from([NCHW, NHWC, Layout("NCHW", 4), Layout("NCHW", 16), Layout("NCHW", 3)]),
    bits=st.sampled_from([4, 8, 16, 32]),
    burst=st.sampled_from([1, 3, 16, 64, 128]),
)
def test_a_pass_equals_the_bursts_of_its_elements(
    data: st.DataObject, shape: Shape, layout: Layout, bits: int, burst: int
):
    """Every box of a pass (channel range x row block x column block): its elements' distinct
    bursts, counted from their addresses (``simulate``), against ``pass_bursts``. Large bursts
    over small tensors make runs of many rows and channels share bursts."""
    starts = data.draw(st.lists(st.integers(0, shape.channels - 1), min_size=1, max_size=3))
    channels = [(a, data.draw(st.integers(a + 1, shape.channels))) for a in starts]
    rows, cols = data.draw(blocks(shape.height)), data.draw(blocks(shape.width))
    walk = 0
    for c0, c1 in channels:
        for row_block in rows:
            for col_block in cols:
                heights = [h for a, b in row_block for h in range(a, b)]
                widths = [w for a, b in col_block for w in range(a, b)]
                box = [(c, h, w) for c in range(c0, c1) for h in heights for w in widths]
                walk += element_bursts(layout, shape, bits, burst, box)
    assert pass_bursts(layout, shape, bits, burst, channels, rows, cols) == walk


@pytest.mark.parametrize("burst", [3, 4, 16])
def test_tiles_of_several_groups_with_an_edge_block_equal_a_walk(burst: int):
    """A depthwise layer of 5 channels in blocks of 2 and 3 groups (the last block smaller),
    every layout, against the walk; and in NCHW each block of whole planes is one run."""
    layer = Layer("dw", LayerKind.CONV2D, ("input",), m=5, n=5, r=3, c=3, h=5, w=5, kh=3, kw=3,
                  groups=5, precision=Precision(8, 8, 8, 32))  # fmt: skip
    for groups in (2, 3, 5):
        for order in ("mnrc", "rcmn"):
            mapping = Mapping(Tiling(1, 1, 3, 3), order, Levels(), groups)
            for x in (NCHW, NHWC, Layout("NCHW", 2)):
                walk = simulate(layer, mapping, layouts=(x, x), burst_bytes=burst)
                assert layer_bursts(layer, mapping, Layouts(x, x), burst) == walk.bursts, (groups, order, x)
        # in NCHW a block of whole 25-byte planes is one run: bytes [25 g, 25 (g + b)) of the input
        moved = layer_bursts(layer, Mapping(Tiling(1, 1, 3, 3), "mnrc", Levels(), groups), Layouts(NCHW, NCHW), burst)
        runs = [(25 * g, 25 * min(g + groups, 5)) for g in range(0, 5, groups)]
        assert moved.input_read == sum((end - 1) // burst - start // burst + 1 for start, end in runs)


@settings(max_examples=40, deadline=None)
@given(small_layers())
def test_under_a_free_split_each_candidate_is_also_coarsened_within_its_own_banks(layer):
    """The split the program chooses may have no room for the coarsest mapping of all: every
    candidate's fewest-tiles mapping of the same bytes within the banks it already uses is a
    candidate too (what ``fewest_tiles`` finds on buffers of exactly those banks)."""
    buffers, split = free_split(2048, 128)
    acc = Accelerator("s", buffers, False, 4.0, 100.0, 8, Energy(20, 0.6, 0.2), split, burst_bytes=64)
    cands = generate(layer, acc)
    coarse = with_coarsest(cands, acc, False)
    held = {coarse.mapping(i) for i in range(len(coarse))}
    for k in range(len(cands)):
        banks = bank_counts(cands.footprint[k : k + 1], split)[0]
        own = sized(acc, {b.name: int(n) * 128 for b, n in zip(acc.buffers, banks, strict=True)})
        best = fewest_tiles(layer, own, int(cands.total_bits[k]))
        assert best is not None and best in held


@pytest.mark.parametrize("seed", [18, 20, 22, 35])
def test_more_halo_modes_never_cost_more_in_bursts(seed: int):
    """Candidates priced in bursts come from each halo mode's own byte front, so allowing
    more modes only adds to the space: a cached halo that moves fewer bytes but more bursts
    cannot push out the recompute candidate that moves the fewest bursts."""
    network, accelerator = random_fusion_instance(seed)
    accelerator = replace(accelerator, burst_bytes=16)
    value = {
        modes: solve(network, replace(accelerator, halo=modes), fusion=4, layout="NCHW").result.objective
        for modes in [(Halo.RECOMPUTE,), (Halo.RECOMPUTE, Halo.ROWS), tuple(Halo)]
    }
    assert value[tuple(Halo)] <= value[Halo.RECOMPUTE, Halo.ROWS] <= value[(Halo.RECOMPUTE,)]
