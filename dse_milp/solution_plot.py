"""A solution as a picture (``solve --plot FILE.png``): each layer's DRAM bytes, stacked by
kind of transfer, the fused groups marked, and each layer's compulsory traffic as a tick.

A layer's compulsory traffic is its weights and its output, each moved once, and the
network input for the layers that read it: the ticks add up to the network's compulsory
traffic (``Solution.compulsory_bytes``). Inside a fused group a layer's bar is the group's
transfers charged to it (its weights, the group's outside inputs at their first reader, the
group's output at the last layer), so an intermediate map kept on chip shows as a tick
above an empty bar.
"""

from __future__ import annotations

from pathlib import Path

from dse_milp.report import plot_text, pyplot
from dse_milp.solution import Solution
from dse_milp.workload import NETWORK_INPUT

KINDS = (
    ("input_read", "input reads"),
    ("weight_read", "weight reads"),
    ("output_write", "output writes"),
    ("psum_read", "partial-sum reads"),
    ("psum_write", "partial-sum writes"),
)


def compulsory_by_layer(solution: Solution) -> list[float]:
    """Bytes each layer must move at least: its weights, its output, and the network input
    if it reads it (charged to its first reader)."""
    network = solution.network
    first = next(layer for layer in network.layers if NETWORK_INPUT in layer.inputs)
    input_bytes = network.input_shape.elements * first.precision.input / 8
    return [
        (layer.parameter_elements * layer.precision.weight + layer.output_elements * layer.precision.output) / 8
        + (input_bytes if layer is first else 0.0)
        for layer in network.layers
    ]


def plot_solution(solution: Solution, path: Path) -> None:
    """Draw ``solution`` (module docstring) into ``path`` (any format matplotlib writes)."""
    plt = pyplot()
    layers = solution.layers
    n = len(layers)
    fig, ax = plt.subplots(figsize=(max(8.5, min(26.0, 0.22 * n + 5)), 4.8), dpi=110)
    x = list(range(n))
    bottom = [0.0] * n
    for field, label in KINDS:
        heights = [getattr(r.traffic, field) / 8 for r in layers]
        if any(heights):
            ax.bar(x, heights, bottom=bottom, width=0.8, label=label)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.scatter(x, compulsory_by_layer(solution), marker="_", s=120, color="black", zorder=3,
               label="compulsory (weights and output once)")  # fmt: skip
    position = {r.layer.name: i for i, r in enumerate(layers)}
    for k, group in enumerate(solution.groups):  # alternate shades, so that neighbouring groups stay apart
        start, stop = position[group.segment.layers[0].name], position[group.segment.last.name]
        ax.axvspan(start - 0.48, stop + 0.48, color="tab:purple", alpha=0.08 if k % 2 else 0.18, zorder=0,
                   label="fused groups" if k == 0 else None)  # fmt: skip
        ax.text((start + stop) / 2, 0.98, f"G{k + 1}", transform=ax.get_xaxis_transform(), ha="center",
                va="top", fontsize=7, color="tab:purple")  # fmt: skip
    ax.set_xticks(x)
    ax.set_xticklabels([plot_text(r.layer.name) for r in layers], rotation=90, fontsize=6 if n > 40 else 8)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylabel("DRAM bytes")
    status = solution.result.status.value
    ax.set_title(plot_text(f"{solution.network.name} on {solution.accelerator.name}: "
                           f"{solution.dram_bytes:,.0f} DRAM bytes ({status})"))  # fmt: skip
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
