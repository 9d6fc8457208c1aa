"""Tensors kept on chip between units (issue 10 §2): candidates whose tensors on chip move
and expose nothing, against every mapping."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dse_milp.candidates import TRAFFIC_FIELDS, OnChip, generate
from dse_milp.cost import Objective, cost
from dse_milp.traffic import traffic
from dse_milp.workload import Layer
from tests.brute_force import every_mapping
from tests.layers import small_accelerator, small_layers


@st.composite
def on_chip(draw: st.DrawFn, layer: Layer) -> OnChip:
    return OnChip(draw(st.integers(0, layer.input_tensors)), layer.has_weights and draw(st.booleans()),
                  draw(st.booleans()))  # fmt: skip


@settings(max_examples=120, deadline=None)
@given(data=st.data(), layer=small_layers(), capacity=st.integers(4, 400), double=st.booleans(),
       separate=st.booleans(), objective=st.sampled_from(list(Objective)))  # fmt: skip
def test_candidates_with_tensors_on_chip_hold_the_best_of_every_mapping(
    data: st.DataObject, layer: Layer, capacity: int, double: bool, separate: bool, objective: Objective
):
    """For every mapping that fits, some candidate is no larger and costs no more, with the
    tensors on chip moving nothing; each candidate's traffic is the closed form's less
    theirs."""
    kept = data.draw(on_chip(layer))
    acc = small_accelerator(capacity, double, separate, True)
    cands = generate(layer, acc, (objective,), kept)
    every = every_mapping(layer, acc, kept)
    fits = every.fits
    if not fits.any():
        assert len(cands) == 0
        return
    for k in range(len(cands)):
        full = traffic(layer, cands.mapping(k))
        expected = dict(zip(TRAFFIC_FIELDS, (getattr(full, f) for f in TRAFFIC_FIELDS), strict=True))
        expected["input_read"] = expected["input_read"] // layer.input_tensors * (layer.input_tensors - kept.inputs)
        expected["weight_read"] *= not kept.weights
        expected["output_write"] *= not kept.output
        assert tuple(int(v) for v in cands.traffic[k]) == tuple(expected[f] for f in TRAFFIC_FIELDS)
    size = sum(every.held.values())
    value = cost(objective, layer, acc, every.traffic / 8, every.exposed / 8)
    mine = cost(objective, layer, acc, cands.total_bits / 8, cands.exposed / 8)
    held = cands.footprint.sum(axis=1)
    for v, s in zip(np.broadcast_to(value, fits.shape)[fits], np.broadcast_to(size, fits.shape)[fits], strict=True):
        assert np.any((held <= s) & (mine <= v * (1 + 1e-12))), (v, s)
