"""Whole `python -m dse_milp solve` commands in fresh processes: wall time and peak memory,
with one process and with the worker processes of ``--jobs`` (default: every core).

    python bench/end_to_end.py [--repeat 3]

Each command runs ``--repeat`` times, with ``--jobs 1`` and with the cores available; the
table shows the median wall time (interpreter start-up, imports, candidates, program,
shadow prices, tile coarsening, report and JSON all included) and the largest peak
resident memory of the command's processes. The answer does not depend on ``--jobs``: the
script checks that both runs write the same JSON, timings aside.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NET, ACC = ROOT / "instances" / "networks", ROOT / "instances" / "accelerators"
CASES: tuple[tuple[str, list[str]], ...] = (
    ("resnet50, free-split 128 KiB, --fusion 6, bytes",
     [str(NET / "resnet50.yaml"), str(ACC / "npu_128k_split.yaml"), "--fusion", "6", "--burst", "1"]),
    ("resnet50, free-split 128 KiB, --fusion 6, 128 B bursts",
     [str(NET / "resnet50.yaml"), str(ACC / "npu_128k_split.yaml"), "--fusion", "6"]),
    ("resnet50@npu-128k (README)", ["resnet50@npu-128k"]),
    ("mobilenet_v2@npu-128k", ["mobilenet_v2@npu-128k"]),
    *((f"{name}, 256 KiB, --fusion all", [str(NET / f"{name}.yaml"), str(ACC / "npu_256k.yaml"), "--fusion", "all"])
      for name in ("tiny_resnet8", "tiny_dscnn", "tiny_mobilenet_v1_025", "tiny_fc_autoencoder")),
)  # fmt: skip


def _run(args: list[str], jobs: int, out: Path) -> tuple[float, float]:
    """(wall seconds, peak MiB of the command's largest process)."""
    command = [sys.executable, "-m", "dse_milp", "solve", *args, "--quiet", "--jobs", str(jobs), "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: exit {proc.returncode}: {proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def _answer(path: Path) -> dict:
    record = json.loads(path.read_text())
    record.pop("seconds"), record.pop("solve_seconds")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", metavar="TEXT", help="the commands whose name holds TEXT")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores, Python {platform.python_version()}, "
          f"median of {args.repeat}\n")  # fmt: skip
    print(f"| command | s, --jobs 1 | s, --jobs {cores} | peak MiB, --jobs 1 | peak MiB, --jobs {cores} |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for name, case in (c for c in CASES if args.only in c[0]):
            figures, answers = {}, {}
            for jobs in (1, cores):
                out = Path(folder) / f"{jobs}.json"
                runs = [_run(case, jobs, out) for _ in range(args.repeat)]
                figures[jobs] = (statistics.median(w for w, _ in runs), max(m for _, m in runs))
                answers[jobs] = _answer(out)
            if answers[1] != answers[cores]:
                raise SystemExit(f"{name}: the answer differs with --jobs {cores}")
            print(f"| {name} | {figures[1][0]:.2f} | {figures[cores][0]:.2f} | {figures[1][1]:.0f} "
                  f"| {figures[cores][1]:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
