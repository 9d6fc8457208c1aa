"""The closed forms of the traffic model against a direct simulation of the loop nest."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dse_milp.simulate import simulate
from dse_milp.traffic import ORDERS, Levels, Mapping, Tiling, exposed, footprint, needed_inputs, traffic
from dse_milp.workload import Layer, LayerKind, Operand, Precision
from tests.layers import group_spans, small_layers, tilings


@settings(max_examples=400, deadline=None)
@given(data=st.data(), layer=small_layers(), double_buffering=st.booleans(), in_buffer=st.booleans())
def test_closed_form_matches_simulation_for_every_order(
    data: st.DataObject, layer: Layer, double_buffering: bool, in_buffer: bool
):
    """Every order with every operand innermost, and with levels drawn at random; tiles of
    one group, or of several whole groups."""
    tiling, groups = data.draw(group_spans(layer, data.draw(tilings(layer))))
    level = st.integers(0, 4)
    for order in ORDERS:
        for levels in (Levels(), Levels(data.draw(level), data.draw(level), data.draw(level))):
            mapping = Mapping(tiling, order, levels, groups)
            walk = simulate(layer, mapping, double_buffering, in_buffer)
            assert traffic(layer, mapping) == walk.traffic, mapping
            assert footprint(layer, mapping, double_buffering, in_buffer) == walk.footprint, mapping
            assert exposed(layer, mapping) == walk.exposed, mapping


def test_needed_inputs_counts_rows_with_halo_gaps_and_padding():
    # 3x3 stride 1, pad 1 over 8 rows: output rows [0, 4) read input rows [-1, 5) -> [0, 5)
    assert needed_inputs(0, 4, stride=1, kernel=3, pad=1, size=8) == 5
    # the last tile [6, 8) reads [5, 9) -> [5, 8)
    assert needed_inputs(6, 8, stride=1, kernel=3, pad=1, size=8) == 3
    # 1x1 stride 2: output rows [0, 3) read rows 0, 2, 4 only
    assert needed_inputs(0, 3, stride=2, kernel=1, pad=0, size=6) == 3
    # 2x2 stride 3: rows {0,1}, {3,4}
    assert needed_inputs(0, 2, stride=3, kernel=2, pad=0, size=6) == 4


def _conv(**overrides) -> Layer:
    base = {"name": "conv", "kind": LayerKind.CONV2D, "inputs": ("input",), "m": 4, "n": 6, "r": 4, "c": 4,
            "h": 4, "w": 4, "kh": 1, "kw": 1, "precision": Precision(8, 8, 8, 32)}  # fmt: skip
    return Layer(**(base | overrides))


def test_hand_derived_weight_stationary_1x1_conv():
    """A 1x1 conv, M=4, N=6, 4x4 output, tiles (2, 3, 2, 4) in order mnrc.

    Trip counts: T_m = 2, T_n = 2, T_r = 2, T_c = 1.
    - weights (relevant m, n): innermost active relevant loop is n; the loop
      outside it that weights ignore is none -> read once: 4*6 = 24 bytes;
    - inputs (relevant n, r, c): innermost active is r; m sits outside -> read
      T_m = 2 times: 2 * 6*16 = 192 bytes;
    - outputs (relevant m, r, c): innermost active is r; n sits outside -> each
      output tile visited T_n = 2 times: written once finally (64 bytes), and once
      as a partial sum (64 * 4 bytes), read back once (64 * 4 bytes).
    """
    t = traffic(_conv(), Mapping(Tiling(2, 3, 2, 4), "mnrc"))
    assert (t.weight_read, t.input_read, t.output_write, t.psum_write, t.psum_read) == (
        24 * 8,
        192 * 8,
        64 * 8,
        256 * 8,
        256 * 8,
    )


def test_hand_derived_output_stationary_keeps_partial_sums_on_chip():
    """Same layer and tiles in order rcmn: n innermost, so every output tile is finished
    before it leaves (no partial sums), but weights are re-read for each of the
    T_r * T_c = 2 spatial tiles and inputs for each of the T_m = 2 output-channel tiles."""
    t = traffic(_conv(), Mapping(Tiling(2, 3, 2, 4), "rcmn"))
    assert (t.weight_read, t.input_read, t.output_write, t.psum_write, t.psum_read) == (
        48 * 8,
        192 * 8,
        64 * 8,
        0,
        0,
    )


def test_edge_tiles_and_halo_are_exact():
    """3x3 conv, pad 1, 5 output rows tiled by 2: tiles [0,2) [2,4) [4,5) read input rows
    [0,3) [1,5) [3,5) -> 3 + 4 + 2 = 9 rows (not 3 * 4 = 12); columns untiled read all 5."""
    layer = _conv(m=1, n=1, r=5, c=5, h=5, w=5, kh=3, kw=3, ph=1, pw=1)
    t = traffic(layer, Mapping(Tiling(1, 1, 2, 5), "mnrc"))
    assert t.input_read == 9 * 5 * 8
    assert footprint(layer, Mapping(Tiling(1, 1, 2, 5), "mnrc"), False)[Operand.INPUT] == 4 * 5 * 8


def test_depthwise_has_no_reduction_across_channels():
    layer = _conv(m=4, n=4, groups=4, kh=3, kw=3, ph=1, pw=1)
    for order in ORDERS:
        t = traffic(layer, Mapping(Tiling(1, 1, 1, 1), order))
        assert t.psum_read == t.psum_write == 0
