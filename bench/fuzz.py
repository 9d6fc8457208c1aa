"""Fuzz the command line: run N generated cases and print their outcomes by family and by failure class.

    python bench/fuzz.py --cases 400                  # seed 0, cases 0-399, two workers
    python bench/fuzz.py --seed 3 --cases 1000 --jobs 4 --subprocess 10 --details
    python bench/fuzz.py --seed 0 --case 17           # one case, in this process, everything printed
    python bench/fuzz.py --seed 0 --case 17 --subprocess 1 --keep /tmp/case17   # as a real process, files kept
    python bench/fuzz.py --special bench-quick        # the one `bench --quick` case

The generator and the contract are in tests/fuzz.py. Exits 1 when any case fails the contract.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import fuzz


def one(case: fuzz.Case, args: argparse.Namespace, root: Path) -> int:
    """Run a single case and print everything about it."""
    folder = fuzz.Task(case).folder(root)
    if args.subprocess:
        outcome = fuzz.run_subprocess(case, folder, args.timeout)
    else:
        outcome = fuzz.run_inprocess(case, folder, args.timeout, fds=True)
    print(fuzz.describe(outcome, full=True))
    print(f"\nshell: {case.command(folder)}")
    return 1 if outcome.failures else 0


def many(cases: list[fuzz.Case], args: argparse.Namespace, root: Path) -> int:
    done = 0
    started = time.perf_counter()

    def progress(outcome: fuzz.Outcome) -> None:
        nonlocal done
        done += 1
        if outcome.failures:
            labels = "; ".join(p.label for p in outcome.failures)
            print(f"FAIL {outcome.case.name} ({outcome.mode}): {labels}", file=sys.stderr, flush=True)
        if done % 50 == 0:
            print(f"... {done} runs, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    outcomes = fuzz.run_cases(
        cases,
        root,
        jobs=args.jobs,
        subprocesses=args.subprocess,
        memory_mb=args.memory_mb,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    slowest = max(outcomes, key=lambda o: o.seconds)
    print(f"{len(outcomes)} runs of {len(cases)} cases in {seconds:.1f} s with {args.jobs} worker(s)")
    print(f"slowest: {slowest.case.name} ({slowest.mode}), {slowest.seconds:.1f} s\n")
    print("## Outcomes by family\n")
    print(fuzz.outcome_table(outcomes))
    print("\n## Failure classes\n")
    print(fuzz.class_table(outcomes) if fuzz.failing(outcomes) else "none")
    print("\n## Warning classes (unclear messages, slow cases)\n")
    warned = [o for o in outcomes if o.warnings]
    print(fuzz.class_table(outcomes, failures=False) if warned else "none")
    if args.details:
        print("\n## First case of each failure class\n")
        for label, members in fuzz.by_problem(outcomes).items():
            print(f"##### {label} ({len(members)} cases)\n{fuzz.describe(members[0])}\n")
        if args.details > 1:
            print("\n## First case of each warning class\n")
            for label, members in fuzz.by_problem(outcomes, failures=False).items():
                print(f"##### {label} ({len(members)} cases)\n{fuzz.describe(members[0])}\n")
    return 1 if fuzz.failing(outcomes) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="one or more seeds (default 0)")
    parser.add_argument("--cases", type=int, default=400, help="cases per seed (default 400)")
    parser.add_argument("--start", type=int, default=0, help="first case index (default 0)")
    parser.add_argument("--case", type=int, help="run only this case of the (first) seed, and print everything")
    parser.add_argument("--special", choices=sorted(fuzz.special_cases()), help="run a case outside the stream")
    parser.add_argument("--with-special", action="store_true", help="add the special cases to a batch")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (0: this process; default 2)")
    parser.add_argument("--subprocess", type=int, default=0, help="cases also run as real processes (default 0)")
    parser.add_argument("--timeout", type=float, help="seconds per case (default: the case's own, 30)")
    parser.add_argument("--memory-mb", type=int, default=fuzz.MEMORY_LIMIT_MB, help="address space per worker")
    parser.add_argument("--keep", type=Path, help="folder for the cases' files (default: a temporary one)")
    parser.add_argument(
        "--details",
        type=int,
        nargs="?",
        const=1,
        default=0,
        help="describe the first case of each failure class (2: and warning class)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dse-milp-fuzz-") as temporary:
        root = (args.keep or Path(temporary)).resolve()
        if args.case is not None or args.special:
            case = fuzz.special_cases()[args.special] if args.special else fuzz.generate(args.seed[0], args.case)
            return one(case, args, root)
        cases = [case for seed in args.seed for case in fuzz.batch(seed, args.cases, args.start)]
        if args.timeout:
            cases = [replace(case, timeout=args.timeout) for case in cases]
        if args.with_special:
            cases += list(fuzz.special_cases().values())
        return many(cases, args, root)


if __name__ == "__main__":
    sys.exit(main())
