"""Buffer-partition co-design against fixed splits of the same 128 KiB.

    python bench/partition.py [--banks 16] [--bank 8192] [--fusion 6]

For every network of the bundled suite, on the tinyML NPU whose 128 KiB are
16 banks of 8 KiB: the program's co-designed split (one split for the whole
network, HiGHS), every fixed split enumerated (each layer then takes its least
traffic among the candidates that fit, which the program's candidates contain),
and the unified buffer (which is a free split for every layer separately, so a
lower bound). Co-design equals the best fixed split by construction, and the
enumeration checks it; the table shows what it gains over an even split and
over the median fixed split, the guesses a designer would otherwise make.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
from pathlib import Path

import numpy as np

from dse_milp.accelerator import Accelerator, Energy, free_split, unified_buffer
from dse_milp.candidates import bank_counts, generate
from dse_milp.loader import load_network
from dse_milp.solution import solve

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = [
    "alexnet", "vgg16", "resnet18", "resnet50", "resnet56_cifar", "mobilenet_v1", "mobilenet_v2",
    "tiny_resnet8", "tiny_mobilenet_v1_025", "tiny_dscnn", "tiny_fc_autoencoder", "bert_base_block",
]  # fmt: skip


def fixed_splits(network, accelerator: Accelerator) -> dict[tuple[int, int, int], float]:
    """Least traffic (bytes) of every complete fixed split (input, weight, output banks)."""
    split = accelerator.split
    per_layer = []
    for layer in network.layers:
        cands = generate(layer, accelerator)  # the front over (traffic, banks of each buffer)
        per_layer.append((bank_counts(cands.footprint, split), cands.total_bits / 8))
    result = {}
    for i, w in itertools.product(range(split.banks + 1), repeat=2):
        o = split.banks - i - w
        if o < 0:
            continue
        total = 0.0
        for banks, traffic in per_layer:
            fits = np.all(banks <= (i, w, o), axis=1)
            if not fits.any():
                break
            total += traffic[fits].min()
        else:
            result[i, w, o] = total
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--banks", type=int, default=16)
    parser.add_argument("--bank", type=int, default=8 * 1024)
    parser.add_argument("--fusion", type=int, default=6)
    args = parser.parse_args()
    total = args.banks * args.bank
    energy = Energy(20.0, 0.6, 0.2)
    buffers, split = free_split(total, args.bank)
    free = Accelerator(f"npu-{total // 1024}k-split", buffers, False, 8.0, 500.0, 256, energy, split)
    unified = Accelerator(f"npu-{total // 1024}k", unified_buffer(total), False, 8.0, 500.0, 256, energy)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{args.banks} banks of {args.bank // 1024} KiB; HiGHS\n")  # fmt: skip
    print("| network | co-designed split (in/w/out KiB) | DRAM bytes | best fixed | even split | gain | median "
          "fixed | gain | unified | co-design s | fused co-design | split | s |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    even = (args.banks // 3, args.banks // 3, args.banks - 2 * (args.banks // 3))
    for name in NETWORKS:
        network = load_network(ROOT / "instances" / "networks" / f"{name}.yaml")
        start = time.perf_counter()
        codesign = solve(network, free, prices=False)
        seconds = time.perf_counter() - start
        fixed = fixed_splits(network, free)
        best = min(fixed.values())
        assert abs(best - codesign.dram_bytes) <= 1e-6 * best, (name, best, codesign.dram_bytes)
        median = float(np.median(list(fixed.values())))
        even_value = fixed.get(even, float("inf"))
        start = time.perf_counter()
        fused = solve(network, free, prices=False, fusion=args.fusion)
        fused_seconds = time.perf_counter() - start
        sizes = "/".join(str(codesign.buffer_sizes[b] // 1024) for b in ("input", "weight", "output"))
        fused_sizes = "/".join(str(fused.buffer_sizes[b] // 1024) for b in ("input", "weight", "output"))
        print(
            f"| {name} | {sizes} | {codesign.dram_bytes:,.0f} | {best:,.0f} | {even_value:,.0f} "
            f"| {even_value / codesign.dram_bytes:.3f}x | {median:,.0f} | {median / codesign.dram_bytes:.3f}x "
            f"| {solve(network, unified, prices=False).dram_bytes:,.0f} | {seconds:.2f} | {fused.dram_bytes:,.0f} "
            f"| {fused_sizes} | {fused_seconds:.2f} |"
        )


if __name__ == "__main__":
    main()
