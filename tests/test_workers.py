"""Work on worker processes (``dse_milp.workers``): the same answer whatever the number of
workers, in order; Ctrl-C, the deadline and a task's error end it at once, with no worker
left behind; a daemonic process (a bench or sweep worker) runs it in place."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from dse_milp.cli import main
from dse_milp.cost import Objective
from dse_milp.errors import DseError, NoSolutionError
from dse_milp.halo import Halo
from dse_milp.loader import load_accelerator, load_network
from dse_milp.report import solution_record
from dse_milp.solution import solve
from dse_milp.solvers import SolverOptions
from dse_milp.stopping import deadline_after, sigint_requests_stop, stop_reason
from dse_milp.workers import ordered

ROOT = Path(__file__).resolve().parents[1]
NETWORKS, ACCELERATORS = ROOT / "instances" / "networks", ROOT / "instances" / "accelerators"


def square(x: int) -> int:
    return x * x


def slow(x: int) -> int:
    time.sleep(5.0)
    return x


def pid(_: int) -> int:
    return os.getpid()


def fails_at_three(x: int) -> int:
    if x == 3:
        raise DseError("three")
    time.sleep(0.05)
    return x


@pytest.fixture
def no_workers_left() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 5.0
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_results_come_in_the_tasks_order_whatever_the_workers(jobs: int, no_workers_left):
    tasks = list(range(20, 0, -1))
    assert list(ordered(square, tasks, jobs)) == [x * x for x in tasks]


def test_the_work_runs_on_other_processes_and_in_place_with_one_job(no_workers_left):
    assert set(ordered(pid, range(6), 2)) - {os.getpid()}
    assert set(ordered(pid, range(6), 1)) == {os.getpid()}


def _in_a_daemon(queue: multiprocessing.Queue) -> None:
    queue.put((os.getpid(), list(ordered(pid, range(4), 2))))


def test_a_daemonic_process_runs_the_work_in_place():
    """bench and sweep run their instances on daemonic workers, which may not have children."""
    queue = multiprocessing.get_context("fork").Queue()
    daemon = multiprocessing.get_context("fork").Process(target=_in_a_daemon, args=(queue,), daemon=True)
    daemon.start()
    own, pids = queue.get(timeout=30)
    daemon.join(30)
    assert daemon.exitcode == 0 and set(pids) == {own}


def test_the_deadline_ends_the_work_at_once(no_workers_left):
    start = time.monotonic()
    deadline = deadline_after(0.3)
    done = list(ordered(slow, range(8), 2, deadline))
    assert done == [] and stop_reason(deadline) is not None
    assert time.monotonic() - start < 2.0  # a task takes 5 s


def test_ctrl_c_ends_the_work_at_once_and_the_workers_ignore_it(no_workers_left):
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    with sigint_requests_stop():
        timer.start()
        done = list(ordered(slow, range(8), 2))
        assert stop_reason(None) == "interrupted"
    assert done == []
    assert time.monotonic() - start < 2.0


def test_a_task_s_error_reaches_the_caller(no_workers_left):
    with pytest.raises(DseError, match="three"):
        list(ordered(fails_at_three, range(10), 2))


def test_a_consumer_that_stops_early_leaves_no_worker(no_workers_left):
    for x in ordered(square, range(50), 2):
        if x > 10:
            break


def _record(network: str, accelerator: str, jobs: int, **kwargs: object) -> dict:
    net, acc = load_network(NETWORKS / network), load_accelerator(ACCELERATORS / accelerator)
    acc = replace(acc, **kwargs.pop("changes", {}))  # type: ignore[arg-type]
    solution = solve(net, acc, options=SolverOptions(jobs=jobs), **kwargs)  # type: ignore[arg-type]
    record = solution_record(solution)
    record.pop("seconds"), record.pop("solve_seconds")
    return record


@pytest.mark.parametrize(
    ("network", "accelerator", "kwargs"),
    [
        ("tiny_resnet8.yaml", "npu_32k.yaml", {"fusion": 6}),
        ("tiny_mobilenet_v1_025.yaml", "npu_128k_split.yaml", {"fusion": 4}),
        ("tiny_dscnn.yaml", "npu_32k.yaml", {"fusion": 3, "changes": {"keep_tensors": True, "halo": tuple(Halo)}}),
        ("tiny_resnet8.yaml", "fpga.yaml", {"objective": (Objective.LATENCY,), "fusion": 3}),
    ],
)
def test_the_solution_and_its_prices_do_not_depend_on_the_workers(network: str, accelerator: str, kwargs: dict):
    """Candidates, prices and coarsened tiles, with DRAM bursts and layouts to choose, a free
    split, tensors kept on chip, halo modes and the latency objective."""
    one = _record(network, accelerator, 1, **dict(kwargs))
    two = _record(network, accelerator, 2, **dict(kwargs))
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)
    assert all(layer["shadow_price"] for layer in one["layers"])


def test_the_deadline_during_parallel_generation_says_where_it_stopped():
    network = load_network(NETWORKS / "resnet50.yaml")
    accelerator = load_accelerator(ACCELERATORS / "npu_128k_split.yaml")
    start = time.monotonic()
    with pytest.raises(NoSolutionError, match="reached while generating candidates, before any solution"):
        solve(network, accelerator, fusion=6, options=SolverOptions(time_limit=0.3, jobs=2))
    assert time.monotonic() - start < 1.5  # generation takes over 5 s here in bursts


def test_the_command_takes_jobs_and_gives_the_same_json(tmp_path: Path):
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"r{jobs}.json"
        args = ["solve", str(NETWORKS / "tiny_dscnn.yaml"), str(ACCELERATORS / "npu_32k.yaml"), "--fusion", "4"]
        assert main([*args, "--jobs", jobs, "--quiet", "--out", str(out)]) == 0
        record = json.loads(out.read_text())
        record.pop("seconds"), record.pop("solve_seconds")
        outs.append(record)
    assert outs[0] == outs[1]
