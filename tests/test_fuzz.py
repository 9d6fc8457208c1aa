"""Fuzz the command line against its contract (tests/fuzz.py): exit 0/2/3/4, no traceback, one
``error:`` line per problem on exit 2, and a bounded time per case.

The first test runs a fixed batch (seed 0) on every test run; the ``fuzz`` ones run thousands of
cases and the one ``bench --quick`` case, and are skipped unless selected with ``-m fuzz``.
A failing case is reproduced by ``python bench/fuzz.py --seed S --case I`` (printed with it).
"""

from __future__ import annotations

import re
import time

import pytest

from tests import fuzz

CI_SEED = 0
CI_CASES = 300
CI_SUBPROCESSES = 5
JOBS = 2  # worker processes

LONG_SEEDS = (1, 2, 3, 4, 5)
LONG_CASES = 600  # per seed
LONG_SUBPROCESSES = 10  # per seed


@pytest.fixture(autouse=True)
def _only_when_selected(request):
    """``fuzz`` tests run only when ``-m`` names the marker (they take minutes)."""
    if request.node.get_closest_marker("fuzz") and not re.search(r"\bfuzz\b", request.config.getoption("markexpr")):
        pytest.skip("long fuzz run: select with -m fuzz")


def assert_no_failures(outcomes: list[fuzz.Outcome]) -> None:
    failures = fuzz.failing(outcomes)
    if failures:
        pytest.fail(f"{fuzz.class_table(failures)}\n\n{fuzz.report(outcomes)}", pytrace=False)


def test_generation_is_deterministic():
    first = fuzz.batch(CI_SEED, 50)
    assert first == fuzz.batch(CI_SEED, 50)
    assert [fuzz.generate(CI_SEED, i) for i in (49, 7, 0)] == [first[49], first[7], first[0]]
    assert fuzz.batch(CI_SEED + 1, 50) != first
    assert {case.family for case in fuzz.batch(CI_SEED, CI_CASES)} == set(fuzz.FAMILIES)


def test_the_harness_sees_each_kind_of_failure(tmp_path):
    """A contract check that never fires is worthless: feed the checks outcomes that break each clause."""
    case = fuzz.Case(seed=0, index=0, family="valid", argv=("solve",), expect=frozenset({0}), timeout=5.0)

    def problems(code: int | None, out: str = "", err: str = "", seconds: float = 0.1) -> set[str]:
        outcome = fuzz.Outcome(case, "in-process", str(tmp_path), code, out, err, seconds)
        return {p.kind for p in fuzz.check(outcome) if p.failure}

    assert problems(0, out="ok") == set()
    assert problems(1, err="error: boom") == {"exit-code"}
    assert problems(2, err="error: a\nusage: x") == {"stderr-format"}
    assert problems(2) == {"stderr-format"}
    assert "traceback" in problems(0, out="ok", err='Traceback (most recent call last):\n  File "x"\nValueError: v')
    assert problems(0, out="ok", seconds=6.0) == {"hang"}
    assert problems(3, err="infeasible: layer 'a' fits no mapping") == {"unexpected-exit"}


def test_cli_fuzz_batch(tmp_path):
    """About 300 cases in-process in two workers, five of them also as real processes (well under 90 s)."""
    started = time.perf_counter()
    outcomes = fuzz.run_cases(fuzz.batch(CI_SEED, CI_CASES), tmp_path, jobs=JOBS, subprocesses=CI_SUBPROCESSES)
    print(f"\n{len(outcomes)} runs in {time.perf_counter() - started:.1f} s\n{fuzz.outcome_table(outcomes)}")
    assert len(outcomes) == CI_CASES + CI_SUBPROCESSES
    assert_no_failures(outcomes)


@pytest.mark.fuzz
@pytest.mark.parametrize("seed", LONG_SEEDS)
def test_cli_fuzz_long(tmp_path, seed):
    outcomes = fuzz.run_cases(fuzz.batch(seed, LONG_CASES), tmp_path, jobs=JOBS, subprocesses=LONG_SUBPROCESSES)
    print(f"\n{fuzz.outcome_table(outcomes)}")
    assert_no_failures(outcomes)


@pytest.mark.fuzz
def test_bench_quick(tmp_path):
    """The one ``bench --quick`` case (tens of seconds), in-process and as a real process."""
    case = fuzz.special_cases()["bench-quick"]
    outcomes = fuzz.run_tasks([fuzz.Task(case), fuzz.Task(case, "subprocess")], tmp_path, jobs=JOBS)
    assert_no_failures(outcomes)
