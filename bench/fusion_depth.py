"""Fusion at any depth: time, memory and traffic as the group length limit grows.

    python bench/fusion_depth.py [--burst 1] [--depths 2 4 8 16 all]

First table: every MLPerf Tiny model on the 256 KiB NPU with groups of any length
(``--fusion all``), against its floor (every weight, the network input and the final
output, each moved once). Second table: how the time grows with the group length limit,
on MobileNetV1-0.25 at 256 KiB and ResNet-50 on the free-split 128 KiB NPU. Third
table: groups of any length with every slot held for the whole tile (sum, the default)
and with liveness (``fused_footprint: liveness``), where buffers are tight. Fourth
table: the same with the halo recomputed (the default) and with every halo mode allowed
(``halo: any``: the program chooses, per group, what it caches). Fifth table: tensors kept
on chip between units (``keep_tensors: true``), layer by layer and with groups of up to 6
layers, against keeping none. Every solve
runs in its own process (HiGHS, one thread), so that its peak memory is its own; the
time is the solve's, in-process (candidates, build, solve, prices), without interpreter
start-up. ``--burst 1`` (the default) counts bytes; ``--burst 0`` keeps each
accelerator's declared burst.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ("tiny_resnet8", "tiny_dscnn", "tiny_mobilenet_v1_025", "tiny_fc_autoencoder")
GROWTH = (("tiny_mobilenet_v1_025", "npu_256k"), ("resnet50", "npu_128k_split"))
KEPT = (
    ("tiny_dscnn", "npu_32k"),
    ("tiny_mobilenet_v1_025", "npu_32k"),
    ("tiny_resnet8", "npu_32k"),
    ("tiny_fc_autoencoder", "npu_32k"),
    ("mobilenet_v2", "npu_128k"),
    ("resnet50", "npu_128k"),
)
LIVENESS = (
    ("tiny_mobilenet_v1_025", "npu_32k"),
    ("tiny_mobilenet_v1_025", "npu_64k"),
    ("tiny_resnet8", "npu_32k"),
    ("tiny_dscnn", "npu_32k"),
    ("mobilenet_v2", "npu_128k"),
    ("resnet50", "npu_128k"),
)


def _run(network_name: str, accelerator_name: str, depth: int | None, burst: int, liveness: bool = False,
         halo: bool = False, keep: bool = False) -> dict:  # fmt: skip
    from dse_milp.halo import Halo
    from dse_milp.loader import load_accelerator, load_network
    from dse_milp.solution import solve

    network = load_network(ROOT / "instances" / "networks" / f"{network_name}.yaml")
    accelerator = load_accelerator(ROOT / "instances" / "accelerators" / f"{accelerator_name}.yaml")
    if burst:
        accelerator = replace(accelerator, burst_bytes=burst)
    accelerator = replace(accelerator, fused_liveness=liveness, halo=tuple(Halo) if halo else (Halo.RECOMPUTE,),
                          keep_tensors=keep)  # fmt: skip
    start = time.perf_counter()
    s = solve(network, accelerator, fusion=len(network.layers) if depth is None else depth)
    seconds = time.perf_counter() - start
    weights = sum(layer.weight_elements * layer.precision.weight for layer in network.layers) // 8
    shape, last = network.input_shape, network.layers[-1]
    floor = weights + shape.channels * shape.height * shape.width + last.output_elements * last.precision.output // 8
    return {
        "layers": len(network.layers),
        "groups": len(s.groups),
        "longest": max((len(g.segment.layers) for g in s.groups), default=1),
        "dram": s.dram_bytes,
        "moved": s.moved_bytes,
        "floor": floor,
        "status": s.result.status.value,
        "latency": s.latency_cycles,
        "extra_macs": sum(sum(g.cost.extra_macs.values()) for g in s.groups),
        "modes": dict(Counter(str(g.mapping.halo) for g in s.groups)),
        "kept": len(s.kept_tensors),
        "seconds": seconds,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(network: str, accelerator: str, depth: int | None, burst: int, liveness: bool = False,
            halo: bool = False, keep: bool = False) -> dict:  # fmt: skip
    """``_run`` in a fresh process of its own (its peak memory is then the solve's)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_run, network, accelerator, depth, burst, liveness, halo, keep).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=1, help="DRAM burst in bytes; 0: as each accelerator declares")
    parser.add_argument("--depths", nargs="*", default=["2", "4", "8", "16", "all"])
    args = parser.parse_args()
    counted = "bytes" if args.burst == 1 else ("declared bursts" if args.burst == 0 else f"{args.burst} B bursts")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"HiGHS, one thread; counted in {counted}\n")  # fmt: skip

    print("| network @ npu-256k, --fusion all | layers | groups | longest | DRAM bytes | floor | / floor "
          "| moved bytes | status | s | peak MiB |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for name in TINY:
        r = measure(name, "npu_256k", None, args.burst)
        moved = "-" if r["moved"] is None else f"{r['moved']:,.0f}"
        print(f"| {name} | {r['layers']} | {r['groups']} | {r['longest']} | {r['dram']:,.0f} | {r['floor']:,} "
              f"| {r['dram'] / r['floor']:.3f} | {moved} | {r['status']} | {r['seconds']:.2f} "
              f"| {r['peak_mib']:.0f} |")  # fmt: skip

    print("\n| instance | --fusion | groups | longest | DRAM bytes | moved bytes | status | s | peak MiB |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|")
    for network, accelerator in GROWTH:
        for depth in args.depths:
            r = measure(network, accelerator, None if depth == "all" else int(depth), args.burst)
            moved = "-" if r["moved"] is None else f"{r['moved']:,.0f}"
            print(f"| {network}@{accelerator} | {depth} | {r['groups']} | {r['longest']} | {r['dram']:,.0f} "
                  f"| {moved} | {r['status']} | {r['seconds']:.2f} | {r['peak_mib']:.0f} |")  # fmt: skip

    print("\n| instance, --fusion all | DRAM bytes, sum | DRAM bytes, liveness | liveness / sum "
          "| groups (sum, liveness) | s (sum, liveness) |")  # fmt: skip
    print("|---|---:|---:|---:|---|---|")
    for network, accelerator in LIVENESS:
        held, live = (measure(network, accelerator, None, args.burst, flag) for flag in (False, True))
        ratio = live["dram"] / held["dram"]
        print(f"| {network}@{accelerator} | {held['dram']:,.0f} | {live['dram']:,.0f} | {ratio:.3f} "
              f"| {held['groups']}, {live['groups']} | {held['seconds']:.1f}, {live['seconds']:.1f} |")  # fmt: skip

    print("\n| instance, --fusion all | DRAM bytes, recompute | DRAM bytes, any | any / recompute "
          "| extra MACs (recompute, any) | groups by mode, any | s (recompute, any) |")  # fmt: skip
    print("|---|---:|---:|---:|---|---|---|")
    for network, accelerator in LIVENESS:
        plain, cached = (measure(network, accelerator, None, args.burst, False, flag) for flag in (False, True))
        modes = ", ".join(f"{n} {mode}" for mode, n in sorted(cached["modes"].items()))
        print(f"| {network}@{accelerator} | {plain['dram']:,.0f} | {cached['dram']:,.0f} "
              f"| {cached['dram'] / plain['dram']:.3f} | {plain['extra_macs']:,}, {cached['extra_macs']:,} "
              f"| {modes} | {plain['seconds']:.1f}, {cached['seconds']:.1f} |")  # fmt: skip

    print("\n| instance | --fusion | DRAM bytes, none kept | DRAM bytes, kept | kept / none | tensors kept "
          "| floor | s (none, kept) |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for network, accelerator in KEPT:
        for depth in (1, 6):
            plain, kept = (measure(network, accelerator, depth, args.burst, keep=flag) for flag in (False, True))
            print(f"| {network}@{accelerator} | {depth} | {plain['dram']:,.0f} | {kept['dram']:,.0f} "
                  f"| {kept['dram'] / plain['dram']:.3f} | {kept['kept']} | {kept['floor']:,} "
                  f"| {plain['seconds']:.1f}, {kept['seconds']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
