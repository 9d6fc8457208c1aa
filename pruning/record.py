"""What a compression run leaves behind: the log (CSV and JSON), the plots and the terminal table."""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import TaskID
from rich.table import Table

from dse_milp.report import human_bytes, progress_bar, pyplot
from pruning.loop import Row

CSV_COLUMNS = [
    "policy", "iteration", "accuracy", "accuracy_drop", "parameters", "macs", "dram_bytes", "ratio",
    "predicted_saved_bytes", "actual_saved_bytes", "status", "stop", "seconds", "removed", "widths",
]  # fmt: skip


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _number(value: float | None) -> int | float | None:
    """Whole bytes stay integers."""
    value = _finite(value)
    return int(value) if value is not None and float(value).is_integer() else value


def row_record(row: Row, start_accuracy: float) -> dict[str, Any]:
    record = asdict(row)
    record["accuracy_drop"] = start_accuracy - row.accuracy
    for key in ("dram_bytes", "predicted_saved", "actual_saved"):
        record[key] = _number(record[key])
    return record


def write_log(rows: Sequence[Row], start_accuracy: float, out: Path, about: dict[str, Any]) -> None:
    """``log.json`` (``about`` the run, then one record per row) and ``log.csv`` (one line per row;
    ``removed`` and ``widths`` as ``name:count`` lists). Each is written whole to a temporary file
    first, so that an interrupted run leaves the last complete log."""
    records = [row_record(row, start_accuracy) for row in rows]
    text = json.dumps({"run": about, "rows": records}, indent=2, allow_nan=False) + "\n"
    _write_atomic(out / "log.json", text)
    partial = out / "log.csv.part"
    with partial.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for record in records:
            line = {key: record.get(key) for key in CSV_COLUMNS}
            line["predicted_saved_bytes"] = record["predicted_saved"]
            line["actual_saved_bytes"] = record["actual_saved"]
            line["seconds"] = round(sum(record["seconds"].values()), 3)
            for key in ("removed", "widths"):
                line[key] = " ".join(f"{name}:{count}" for name, count in record[key].items())
            writer.writerow(line)
    partial.replace(out / "log.csv")


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def by_policy(rows: Sequence[Row]) -> dict[str, list[Row]]:
    runs: dict[str, list[Row]] = {}
    for row in rows:
        runs.setdefault(row.policy, []).append(row)
    return runs


def plot_pareto(rows: Sequence[Row], start_accuracy: float, max_drop: float, title: str, path: Path) -> None:
    """Accuracy against DRAM bytes, one line per policy, the start and the ``max_drop`` band marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    start_bytes = rows[0].dram_bytes
    ax.axhspan(start_accuracy - max_drop, start_accuracy, color="tab:green", alpha=0.12,
               label=f"within {max_drop:g} point(s) of the start")  # fmt: skip
    for policy, run in by_policy(rows).items():
        ax.plot([r.dram_bytes / 1024 for r in run], [r.accuracy for r in run], marker="o", markersize=3,
                label=policy)  # fmt: skip
    ax.plot([start_bytes / 1024], [start_accuracy], marker="*", markersize=14, color="black", linestyle="",
            label="start")  # fmt: skip
    ax.set_xlabel("DRAM traffic of the optimal mapping (KiB)")
    ax.set_ylabel("test accuracy (%)")
    low = max(min(r.accuracy for r in rows), start_accuracy - 10 * max(max_drop, 0.5))  # a collapse is cut off
    ax.set_ylim(low - 0.5, start_accuracy + 0.5)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_widths(rows: Sequence[Row], final: dict[str, int], title: str, path: Path) -> None:
    """Output channels of every convolution and matmul layer before and after, per policy
    (``final``: the iteration each policy ends with, by policy)."""
    plt = pyplot()
    runs = by_policy(rows)
    layers = list(rows[0].widths)
    bars = len(runs) + 1
    fig, ax = plt.subplots(figsize=(min(16, max(7, 0.15 * len(layers) * bars)), 4.5))
    width = 0.8 / bars
    positions = range(len(layers))
    ax.bar([p - 0.4 + width / 2 for p in positions], [rows[0].widths[n] for n in layers], width, color="lightgrey",
           label="start")  # fmt: skip
    for i, (policy, run) in enumerate(runs.items(), start=1):
        end = next(r for r in run if r.iteration == final[policy])
        ax.bar([p - 0.4 + width * (i + 0.5) for p in positions], [end.widths.get(n, 0) for n in layers], width,
               label=f"{policy} (iteration {end.iteration})")  # fmt: skip
    ax.set_xticks(list(positions))
    ax.set_xticklabels(layers, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("output channels")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def final_iterations(rows: Sequence[Row], start_accuracy: float, max_drop: float) -> dict[str, int]:
    """The iteration each policy ends with: its last within ``max_drop`` of the start."""
    return {
        policy: max(r.iteration for r in run if r.accuracy >= start_accuracy - max_drop)
        for policy, run in by_policy(rows).items()
    }


COLUMNS = {"policy": 9, "iter": 4, "accuracy": 8, "drop": 6, "params": 9, "MACs": 11, "DRAM": 10, "ratio": 5,
           "predicted": 10, "actual": 10, "stop": 30}  # fmt: skip
"""The columns of the iteration table and their widths (fixed, so that rows printed one by one align)."""


def iteration_table(rows: Sequence[Row], start_accuracy: float, header: bool = True) -> Table:
    """One line per iteration: accuracy, size, traffic, and the predicted against the actual saving."""
    table = Table(show_header=header, box=None, pad_edge=False)
    for column, width in COLUMNS.items():
        justify = "left" if column in ("policy", "stop") else "right"
        table.add_column(column, justify=justify, min_width=width, max_width=None if column == "stop" else width)
    for r in rows:
        table.add_row(
            r.policy, str(r.iteration), f"{r.accuracy:.2f}%", f"{start_accuracy - r.accuracy:+.2f}",
            f"{r.parameters:,}", f"{r.macs:,}", human_bytes(r.dram_bytes), f"{r.ratio:.3f}",
            "-" if r.predicted_saved is None else human_bytes(r.predicted_saved),
            "-" if r.actual_saved is None else human_bytes(r.actual_saved), r.stop or "",
        )  # fmt: skip
    return table


def best_reductions(rows: Sequence[Row], max_drop: float) -> dict[str, Row]:
    """Each policy's iteration of least DRAM traffic within ``max_drop`` of the start."""
    start = rows[0].accuracy
    return {
        policy: min((r for r in run if r.accuracy >= start - max_drop), key=lambda r: (r.dram_bytes, r.iteration))
        for policy, run in by_policy(rows).items()
    }


def band_edge(run: Sequence[Row], start_accuracy: float, max_drop: float) -> float:
    """The traffic ratio where a policy's accuracy curve leaves the band ``max_drop`` below the
    start: interpolated between its last iteration within the band and the first below it (its
    last ratio within the band, if none is below). Less quantised by the step size than the best
    iteration within the band."""
    limit = start_accuracy - max_drop
    for inside, outside in itertools.pairwise(run):
        if inside.accuracy >= limit > outside.accuracy:
            share = (inside.accuracy - limit) / (inside.accuracy - outside.accuracy)
            return inside.ratio + share * (outside.ratio - inside.ratio)
    return min(r.ratio for r in run if r.accuracy >= limit)


class RichReporter:
    """Progress bars for the long steps and one table line per iteration, on a rich console."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = progress_bar(console)
        self.task: TaskID | None = None
        self.start_accuracy = 0.0

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def begin(self, what: str, total: int) -> Callable[[], None]:
        task = self.task = self.progress.add_task(what, total=total)
        return lambda: self.progress.advance(task)

    def end(self) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None

    def row(self, row: Row) -> None:
        if row.iteration == 0:
            self.start_accuracy = row.accuracy
        self.progress.console.print(iteration_table([row], self.start_accuracy, header=row.iteration == 0))

    def summary(self, rows: Sequence[Row], max_drop: float) -> None:
        """Each policy's least traffic within ``max_drop`` of the start."""
        runs = by_policy(rows)
        for policy, row in best_reductions(rows, max_drop).items():
            edge = band_edge(runs[policy], rows[0].accuracy, max_drop)
            self.console.print(
                f"{policy}: {100 * (1 - row.ratio):.1f}% less DRAM traffic ({human_bytes(row.dram_bytes)}) "
                f"at {row.accuracy:.2f}% accuracy (iteration {row.iteration}, {row.parameters:,} parameters, "
                f"{row.macs:,} MACs); the curve leaves the {max_drop:g}-point band at {100 * (1 - edge):.1f}% less"
            )
