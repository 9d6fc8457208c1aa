"""A peer mapper side by side with the program, layer by layer (``bench --peers zigzag``).

ZigZag maps one layer at a time, so each distinct layer shape of the network is run once
(``dse_milp.peers.zigzag.run_layer``): LOMA with its default ``lpf_limit`` of 6, under the
criterion closest to the program's objective (``dram``: ZigZag's energy with only the DRAM
costing anything; ZigZag has no traffic criterion of its own). Its chosen mapping is scored
in both models: ZigZag's own DRAM bytes, and ours for the same mapping translated into our
model (where it can be: a kernel loop above the buffer cannot), counted where it also fits
our buffers (ZigZag sizes some blocks more leniently: an output block at its final width,
its own double buffering). Next to them, the program's least traffic for that layer (its
candidates' least, which the program's optimum reaches layer by layer). A layer where
ZigZag's mapping fits and moves less, in our own model, than our least would be a hole in
our mapping space: the record lists them (``beats_program``) and the report says so loudly.
"""

from __future__ import annotations

import time
from typing import Any

from dse_milp.accelerator import Accelerator
from dse_milp.candidates import generate, shape_of
from dse_milp.workload import Network

CRITERION = "dram"
LPF_LIMIT = 6
TOLERANCE = 1e-9


def compare_zigzag(network: Network, accelerator: Accelerator) -> dict[str, Any]:
    """ZigZag and the program on every layer shape of ``network`` (module docstring), as a plain
    dict: per shape its layers and the three traffics, and the network's totals."""
    from dse_milp.peers.zigzag import our_score, run_layer

    if accelerator.split is not None:
        return {"peer": "zigzag", "skipped": "a free split (ZigZag maps onto fixed memories)"}
    shapes: dict[Any, list[str]] = {}
    for layer in network.layers:
        shapes.setdefault(shape_of(layer), []).append(layer.name)
    rows = []
    for names in shapes.values():
        layer = network.by_name[names[0]]
        found = run_layer(layer, accelerator, lpf_limit=LPF_LIMIT, opt=CRITERION)
        start = time.perf_counter()
        least = float(generate(layer, accelerator).total_bits.min()) / 8
        ours_seconds = time.perf_counter() - start
        score = None if found.mapping is None else our_score(layer, accelerator, found.mapping)
        rows.append({
            "layers": names,
            "zigzag_bytes": found.dram_bytes,
            "zigzag_in_our_model": None if score is None else score.bytes,
            "fits_our_buffer": None if score is None else score.fits,
            "not_representable": found.reason,
            "program_least_bytes": least,
            "zigzag_seconds": found.seconds,
            "program_seconds": ours_seconds,
        })  # fmt: skip
    count = [len(r["layers"]) for r in rows]
    return {
        "peer": "zigzag",
        "criterion": CRITERION,
        "lpf_limit": LPF_LIMIT,
        "layers": rows,
        "zigzag_bytes": sum(r["zigzag_bytes"] * k for r, k in zip(rows, count, strict=True)),
        "program_least_bytes": sum(r["program_least_bytes"] * k for r, k in zip(rows, count, strict=True)),
        "zigzag_seconds": sum(r["zigzag_seconds"] for r in rows),
    } | in_our_model(rows)


def in_our_model(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Over the layers whose ZigZag mapping translates into ours and fits our buffers: both
    traffics, how many layers, and the layers where ZigZag's moves less than the program's
    least (a hole in our space); and how many translated mappings do not fit our buffers."""
    scored = [r for r in rows if r["zigzag_in_our_model"] is not None and r["fits_our_buffer"]]
    return {
        "representable_layers": sum(len(r["layers"]) for r in scored),
        "not_fitting_layers": sum(len(r["layers"]) for r in rows if r["fits_our_buffer"] is False),
        "zigzag_in_our_model_bytes": sum(r["zigzag_in_our_model"] * len(r["layers"]) for r in scored),
        "program_least_representable_bytes": sum(r["program_least_bytes"] * len(r["layers"]) for r in scored),
        "beats_program": [
            r["layers"][0] for r in scored if r["zigzag_in_our_model"] < r["program_least_bytes"] * (1 - TOLERANCE)
        ],
    }
