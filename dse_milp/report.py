"""Reports of a solution: the JSON record and the terminal table."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from dse_milp.layouts import AUTO, Layouts
from dse_milp.solution import GroupResult, LayerResult, Solution
from dse_milp.traffic import Traffic


def progress_bar(console: Console) -> Progress:
    """rich's default progress bar, with its descriptions taken as plain text (names are data)."""
    return Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def label(name: str) -> str:
    """A user's name as a table shows it: as it is, or quoted when it holds a line break or
    another character that is not printable (the console takes no markup, see ``cli.main``)."""
    return name if name.isprintable() else repr(name)


def plot_text(text: str) -> str:
    """``text`` for a matplotlib title or label: a '$' would start mathtext, and a malformed
    formula fails at drawing time."""
    return text.replace("$", r"\$")


def pyplot():  # noqa: ANN201
    """matplotlib's pyplot on its file-only backend, imported only when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _number(value: float) -> int | float:
    """Exact bytes stay integers in JSON; fractions (sub-byte precisions) stay floats."""
    return int(value) if float(value).is_integer() else float(value)


def _pair(a: int, b: int) -> int | list[int]:
    return a if a == b else [a, b]


def _traffic_record(t: Traffic) -> dict[str, int | float]:
    return {
        "input_read": _number(t.input_read / 8),
        "weight_read": _number(t.weight_read / 8),
        "output_write": _number(t.output_write / 8),
        "psum_read": _number(t.psum_read / 8),
        "psum_write": _number(t.psum_write / 8),
        "total": _number(t.total / 8),
    }


def _bursts_record(bursts: Traffic | None, useful_bits: int, burst_bytes: int) -> dict[str, Any] | None:
    """Bursts by kind of transfer, the bytes they move and the share of those bytes used."""
    if bursts is None:
        return None
    counts = {field: getattr(bursts, field) for field in ("input_read", "weight_read", "output_write",
                                                           "psum_read", "psum_write")}  # fmt: skip
    moved = bursts.total * burst_bytes
    return {"bursts": counts | {"total": bursts.total}, "moved_bytes": moved,
            "efficiency": useful_bits / 8 / moved if moved else 1.0}  # fmt: skip


def layer_record(
    result: LayerResult,
    total_bytes: float,
    group: int | None,
    marginals: dict[str, float | None] | None,
    burst_bytes: int = 1,
) -> dict[str, Any]:
    layer, mapping = result.layer, result.mapping
    return {
        "name": layer.name,
        "kind": layer.kind.value,
        "dims": {
            "m": layer.m, "n": layer.n, "r": layer.r, "c": layer.c, "kh": layer.kh, "kw": layer.kw,
            "stride": _pair(layer.sh, layer.sw), "padding": _pair(layer.ph, layer.pw), "groups": layer.groups,
        },
        "group": group,
        "tiles": None if mapping is None else mapping.tiling.as_dict(),
        "order": None if mapping is None else mapping.order,
        "levels": None if mapping is None else mapping.levels._asdict(),
        "groups_per_tile": None if mapping is None else mapping.groups,
        "footprint_bytes": _number(sum(result.buffer_bytes.values())),
        "buffer_bytes": {name: _number(v) for name, v in result.buffer_bytes.items()},
        "dram_bytes": _traffic_record(result.traffic),
        "dram_bursts": _bursts_record(result.bursts, result.traffic.total, burst_bytes),
        "layouts": _layouts_record(result.layouts),
        "share": result.dram_bytes / total_bytes if total_bytes else 0.0,
        "shadow_price": result.shadow_price,
        "marginal_bytes_per_channel": None if marginals is None else marginals[layer.name],
        "latency_cycles": result.latency_cycles,
        "energy_pj": result.energy_pj,
        "candidates": result.candidates,
    }  # fmt: skip


def _layouts_record(layouts: Layouts | None) -> dict[str, str] | None:
    return None if layouts is None else {"input": str(layouts.input), "output": str(layouts.output)}


def group_record(group: GroupResult, total_bytes: float, burst_bytes: int = 1) -> dict[str, Any]:
    bursts = None if group.bursts is None else sum(group.bursts.values(), Traffic())
    return {
        "layers": [layer.name for layer in group.segment.layers],
        "tile": {"rows": group.mapping.rows, "cols": group.mapping.cols},
        "halo": str(group.mapping.halo),
        "tiles": group.cost.tiles,
        "resident_weights": [layer.name for layer in group.segment.layers if layer.name in group.mapping.resident],
        "weight_pieces": dict(group.mapping.pieces),
        "reads": list(group.segment.externals),
        "footprint_bytes": _number(sum(group.buffer_bytes.values())),
        "buffer_bytes": {name: _number(v) for name, v in group.buffer_bytes.items()},
        "dram_bytes": _traffic_record(group.cost.traffic),
        "dram_bursts": _bursts_record(bursts, group.cost.traffic.total, burst_bytes),
        "layouts": _layouts_record(group.layouts),
        "share": group.dram_bytes / total_bytes if total_bytes else 0.0,
        "extra_macs": sum(group.cost.extra_macs.values()),
        "shadow_price": group.shadow_price,
        "latency_cycles": group.latency_cycles,
        "energy_pj": group.energy_pj,
        "candidates": group.candidates,
    }


def solution_record(solution: Solution) -> dict[str, Any]:
    """The JSON result (keys documented in README.md)."""
    r = solution.result
    total = solution.dram_bytes
    burst = solution.accelerator.burst_bytes
    moved = solution.moved_bytes
    index = {id(group): i for i, group in enumerate(solution.groups)}
    return {
        "network": solution.network.name,
        "accelerator": solution.accelerator.name,
        "objective": solution.objectives[0].value,
        "tie_breakers": [o.value for o in solution.objectives[1:]],
        "status": r.status.value,
        "objective_value": r.objective,
        "bound": r.bound,
        "gap": r.gap,
        "solver": r.solver,
        "solver_version": r.version,
        "solve_seconds": r.seconds,
        "seconds": solution.seconds,
        "buffer_sizes": solution.buffer_sizes,
        "free_split": solution.accelerator.split is not None,
        "totals": {
            "dram_bytes": _number(total),
            "compulsory_bytes": _number(solution.compulsory_bytes),
            "ratio_to_compulsory": total / solution.compulsory_bytes,
            "latency_cycles": solution.latency_cycles,
            "energy_pj": solution.energy_pj,
            "macs": solution.network.macs,
            "moved_bytes": moved,
            "burst_efficiency": None if moved is None else (total / moved if moved else 1.0),
        },
        "burst_bytes": burst,
        "fused_footprint": "liveness" if solution.accelerator.fused_liveness else "sum",
        "halo_modes": [str(mode) for mode in solution.accelerator.halo],
        "keep_tensors": solution.accelerator.keep_tensors,
        "kept_tensors": [layer.name for layer in solution.network.layers if layer.name in solution.kept_tensors],
        "layout": solution.layout,
        "tensor_layouts": {tensor: str(x) for tensor, x in solution.layouts.items()},
        "layers": [
            layer_record(
                layer, total, None if layer.group is None else index[id(layer.group)], solution.marginals, burst
            )
            for layer in solution.layers
        ],
        "groups": [group_record(group, total, burst) for group in solution.groups],
        "notes": list(solution.notes),
        "evaluations": solution.evaluations,
        "curve": None
        if solution.curve is None
        else [{"seconds": t, "evaluations": n, "objective_value": v} for t, n, v in solution.curve],
    }


def stopped_record(network: str, accelerator: str, status: str, message: str) -> dict[str, Any]:
    """The JSON result of a run that stopped without a solution (``interrupted``, ``no_solution``)."""
    return {"network": network, "accelerator": accelerator, "status": status, "message": message}


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no Infinity or NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def json_text(record: Any) -> str:
    """Standard JSON (no Infinity or NaN: an unbounded bound is null), indented, one trailing newline."""
    return json.dumps(_finite(record), indent=2, allow_nan=False) + "\n"


def human_bytes(value: float) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(value) >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:g} B"


def _value(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.6g}"


def layer_table(solution: Solution) -> Table:
    total = solution.dram_bytes
    unit = solution.objectives[0].unit
    table = Table(
        title=f"{label(solution.network.name)} on {label(solution.accelerator.name)}",
        title_justify="left",
        caption=f"price: {unit} saved per extra byte of buffer for that layer or group (docs/traffic_model.md, 9)"
        + ("; per channel: DRAM bytes saved by removing one output channel" if solution.marginals else ""),
        caption_justify="left",
    )
    columns = ("layer", "kind", "tiles [g:]m,n,r,c", "order [level]", "footprint", "input", "weight", "output", "psum")
    for column in columns:
        table.add_column(column, justify="left" if column in ("layer", "kind", "order [level]") else "right")
    table.add_column("total", justify="right")
    table.add_column("share", justify="right")
    table.add_column("price", justify="right")
    if solution.marginals is not None:
        table.add_column("per channel", justify="right")
    bursts = solution.moved_bytes is not None
    if bursts:
        table.add_column("moved", justify="right")
        table.add_column("eff.", justify="right")
    index = {id(group): i for i, group in enumerate(solution.groups)}
    for layer in solution.layers:
        t = layer.traffic
        if layer.mapping is None:
            tiles, order = "-", f"group {index[id(layer.group)]}"
        else:
            tiling, spans = layer.mapping.tiling, layer.mapping.groups
            tiles = f"{spans}g:" * (spans > 1) + f"{tiling.m},{tiling.n},{tiling.r},{tiling.c}"
            order = layer.mapping.nest()
        marginal = [] if solution.marginals is None else [_marginal(solution.marginals[layer.layer.name])]
        moved = []
        if bursts:
            assert layer.bursts is not None
            size = layer.bursts.total * solution.accelerator.burst_bytes
            moved = [human_bytes(size), f"{100 * layer.dram_bytes / size:.0f}%" if size else "-"]
        table.add_row(
            label(layer.layer.name),
            layer.layer.kind.value,
            tiles,
            order,
            human_bytes(sum(layer.buffer_bytes.values())),
            human_bytes(t.input_read / 8),
            human_bytes(t.weight_read / 8),
            human_bytes(t.output_write / 8),
            human_bytes((t.psum_read + t.psum_write) / 8),
            human_bytes(layer.dram_bytes),
            f"{100 * layer.dram_bytes / total:.1f}%" if total else "-",
            _price(layer.shadow_price),
            *marginal,
            *moved,
        )
    return table


def _marginal(value: float | None) -> str:
    return "-" if value is None else human_bytes(value)


def _price(price: dict[str, float] | None) -> str:
    """A shadow price: one number for a unified buffer, else one per buffer."""
    if price is None:
        return "-"
    if len(price) == 1:
        return f"{next(iter(price.values())):.3g}"
    return " / ".join(f"{name[0]} {value:.3g}" for name, value in price.items())


def _weights_cell(group: GroupResult) -> str:
    """The resident layers, and the streamed ones read in pieces of more than one channel."""
    resident = ", ".join(label(x.name) for x in group.segment.layers if x.name in group.mapping.resident) or "-"
    pieces = ", ".join(f"{label(name)} by {q}" for name, q in group.mapping.pieces)
    return f"{resident}; pieces: {pieces}" if pieces else resident


def group_table(solution: Solution) -> Table:
    total = solution.dram_bytes
    table = Table(title="fused groups (each runs tile by tile over its last layer's output)", title_justify="left")
    columns = ("group", "layers", "tile rows x cols", "tiles", "halo", "resident weights; pieces", "reads from DRAM")
    for column in columns:
        table.add_column(column, justify="right" if column in ("group", "tiles") else "left")
    for column in ("footprint", "DRAM", "share", "extra MACs", "price"):
        table.add_column(column, justify="right")
    for i, group in enumerate(solution.groups):
        layers = group.segment.layers
        table.add_row(
            str(i),
            ", ".join(label(layer.name) for layer in layers),
            f"{group.mapping.rows} x {group.mapping.cols}",
            str(group.cost.tiles),
            str(group.mapping.halo),
            _weights_cell(group),
            ", ".join(label(name) for name in group.segment.externals),
            human_bytes(sum(group.buffer_bytes.values())),
            human_bytes(group.dram_bytes),
            f"{100 * group.dram_bytes / total:.1f}%" if total else "-",
            f"{sum(group.cost.extra_macs.values()):,}",
            _price(group.shadow_price),
        )
    return table


def _layouts_line(solution: Solution) -> str:
    """The layout asked for (``NCHW``), or how many tensors the program put in each layout."""
    if solution.layout != AUTO:
        return solution.layout
    counts = Counter(str(x) for x in solution.layouts.values())
    return "layouts chosen by the program: " + ", ".join(f"{n} {x}" for x, n in sorted(counts.items()))


def print_summary(solution: Solution, console: Console) -> None:
    """Totals against the compulsory traffic, latency, energy and the solver's verdict."""
    total = solution.dram_bytes
    r = solution.result
    compulsory = solution.compulsory_bytes
    console.print(
        f"DRAM traffic {human_bytes(total)} ({total:,.0f} bytes); compulsory {human_bytes(compulsory)} "
        f"({compulsory:,.0f} bytes); ratio {total / compulsory:.3f}"
    )
    moved = solution.moved_bytes
    if moved is not None:
        console.print(
            f"DRAM moves {human_bytes(moved)} ({moved:,.0f} bytes) in bursts of {solution.accelerator.burst_bytes} "
            f"bytes, feature maps in {_layouts_line(solution)}; efficiency {100 * total / moved:.1f}%"
        )
    if solution.accelerator.keep_tensors:
        kept = [layer for layer in solution.network.layers if layer.name in solution.kept_tensors]
        size = sum(layer.output_elements * layer.precision.output for layer in kept) / 8
        console.print(
            f"tensors kept on chip between units: {len(kept)} of the {len(solution.network.layers)} layer outputs "
            f"({human_bytes(size)} in all, each only while it is live)"
        )
    if solution.accelerator.split is not None:
        chosen = ", ".join(f"{name} {human_bytes(size)}" for name, size in solution.buffer_sizes.items())
        console.print(
            f"buffer split chosen by the program: {chosen} (of {human_bytes(solution.accelerator.split.total_bytes)})"
        )
    console.print(
        f"latency {solution.latency_cycles:,.0f} cycles "
        f"({solution.latency_cycles / solution.accelerator.clock_mhz / 1000:.3f} ms); "
        f"energy {solution.energy_pj / 1e6:,.3f} uJ"
    )
    gap = "n/a" if r.gap is None else f"{100 * r.gap:.4g}%"
    ties = "".join(f", ties broken by {o.value}" for o in solution.objectives[1:])
    for note in solution.notes:
        console.print(f"note: {note}")
    # under bursts the program's space is the byte model's candidates and their coarsest variants
    # (a heuristic search, which counts its evaluations, proves nothing and searches bytes)
    program_in_bursts = moved is not None and solution.evaluations is None
    space = " over the candidates priced in bursts (docs/traffic_model.md, 5b)" if program_in_bursts else ""
    console.print(
        f"{r.solver} {r.version}: {r.status.value}{space}; objective ({solution.objectives[0].value}{ties}) "
        f"{_value(r.objective)} {solution.objectives[0].unit}, bound {_value(r.bound)}, gap {gap}; "
        + ", ".join(f"{step} {seconds:.2f} s" for step, seconds in solution.seconds.items())
    )


def print_solution(solution: Solution, console: Console, table: bool = True) -> None:
    """The per-layer table (unless ``table`` is false), then totals and the solver's verdict."""
    if table:
        console.print(layer_table(solution))
        if solution.groups:
            console.print(group_table(solution))
    print_summary(solution, console)
