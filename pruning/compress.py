"""A whole compression run: the trained start, every policy asked for, the logs and the plots.

This is what ``python -m dse_milp compress`` does, callable from Python.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dse_milp.accelerator import Accelerator
from dse_milp.errors import InputError
from dse_milp.executors import LOCAL, Executor
from dse_milp.solution import solve
from dse_milp.workload import Network
from pruning.bridge import trace
from pruning.channels import rebuild
from pruning.data import DataSet
from pruning.loop import Reporter, Row, Settings, Silent, Start, run_policy
from pruning.models import InputShape, load_model
from pruning.policies import POLICIES
from pruning.record import final_iterations, plot_pareto, plot_widths, write_log
from pruning.train import TRAIN, Recipe, accuracy, trained


def default_cache() -> Path:
    """Where trained models are kept between runs: ``dse_milp/trained`` under ``$XDG_CACHE_HOME``
    (``~/.cache`` if unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dse_milp" / "trained"


@dataclass(frozen=True)
class Training:
    epochs: float = 8.0
    """Epochs from scratch (``pruning.train``)."""
    cache: Path | None = None
    """Where trained models are kept; None trains every time."""
    checkpoint: Path | None = None
    """Weights to start from instead of training: a state dict, or a ``model.pt`` this command wrote."""


def fit_data(data: DataSet, shape: tuple[int, int, int], classes: int, model: str) -> DataSet:
    """``data`` for a model taking samples of ``shape``: the same shape, or padded around the centre
    with the background value (the data's least) when the model takes larger images of as many
    channels; a model of other classes or channels is an InputError."""
    have = data.sample_shape
    if classes != data.classes:
        raise InputError([f"MODEL: {model} gives {classes} classes but the data have {data.classes}"])
    if have == shape:
        return data
    if have[0] != shape[0] or shape[1] < have[1] or shape[2] < have[2]:
        raise InputError([f"MODEL: {model} takes samples of {list(shape)} but the data are {list(have)}"])
    rows, cols = shape[1] - have[1], shape[2] - have[2]
    pad = (cols // 2, cols - cols // 2, rows // 2, rows - rows // 2)
    fill = float(data.train_x.min())

    def grow(x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, pad, value=fill)

    return DataSet(data.name, grow(data.train_x), data.train_y, grow(data.test_x), data.test_y, data.classes)


def load_checkpoint(model: nn.Module, shape: tuple[int, int, int], outputs: list[str], path: Path) -> None:
    """Load ``path`` into ``model``: a plain state dict, or a ``model.pt`` of this command (its widths
    prune the model to the saved shapes first). Anything unreadable is an InputError."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds of errors for files it cannot read
        raise InputError([f"--checkpoint: {path}: cannot load ({type(exc).__name__}: {exc})".splitlines()[0]]) from None
    if isinstance(saved, dict) and "state_dict" in saved:
        if isinstance(saved.get("widths"), dict):
            rebuild(model, shape, outputs, saved["widths"], f"--checkpoint: {path}")
        saved = saved["state_dict"]
    if not isinstance(saved, dict):
        raise InputError([f"--checkpoint: {path}: not a state dict (got {type(saved).__name__})"])
    try:
        model.load_state_dict(saved)
    except Exception as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:2])
        raise InputError([f"--checkpoint: {path}: does not fit the model ({detail})"]) from None


ModelSpec = str | tuple[nn.Module, InputShape]
"""A bundled model's name, ``package.module:function``, or a module and its input shape."""


def prepare(
    model_spec: ModelSpec,
    data: DataSet,
    training: Training,
    seed: int,
    reporter: Reporter | None = None,
    before_training: Callable[[Network], object] | None = None,
) -> tuple[Start, DataSet]:
    """The trained model every policy starts from (loaded from the checkpoint, or trained from
    scratch, seeded and cached in ``training.cache``), and the data as the model takes them.
    A module passed in is trained in place. ``before_training`` sees the model's network first
    (a check that should fail before minutes of training rather than after)."""
    reporter = reporter or Silent()
    torch.manual_seed(seed)  # initial weights
    if isinstance(model_spec, str):
        model, shape = load_model(model_spec)
        name = model_spec.rpartition(":")[2]
    else:
        model, shape = model_spec
        name = type(model).__name__.lower()
    traced = trace(model, shape, name)
    network = traced.network()
    data = fit_data(data, shape, network.output_shapes[traced.outputs[0]].channels, name)
    if before_training is not None:
        before_training(network)
    if training.checkpoint is not None:
        clock = time.perf_counter()
        load_checkpoint(model, shape, traced.outputs, training.checkpoint)
        score, seconds = accuracy(model, data), time.perf_counter() - clock
    else:
        recipe = Recipe(training.epochs, TRAIN, seed=seed)
        advance = reporter.begin(f"training {name} from scratch", recipe.batches(len(data.train_x)))
        score, _, seconds = trained(model, data, recipe, training.cache, name, advance)
        reporter.end()
    return Start(model, shape, name, score, seconds), data


def compress(
    model_spec: ModelSpec,
    data: DataSet,
    accelerator: Accelerator,
    policies: list[str],
    settings: Settings,
    out: Path,
    training: Training | None = None,
    reporter: Reporter | None = None,
    executor: Executor | None = None,
) -> list[Row]:
    """Train (or load) the model, run every policy of ``policies`` from it, and write
    ``log.csv``, ``log.json``, ``pareto.png``, ``widths.png`` and each policy's models under ``out``.
    With a Dask ``executor`` the policies run on its workers, each from the same start with
    this process's thread count (the same rows as here; ``out`` must be storage every
    worker sees), and the log is written when they are done."""
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise InputError([f"--policy: unknown policy {unknown[0]!r} (choose from {', '.join(POLICIES)}, all)"])
    training = training or Training()
    out.mkdir(parents=True, exist_ok=True)

    def feasible(network: Network) -> None:  # raises InfeasibleError naming each layer that fits nowhere
        solve(network, accelerator, prices=False, **settings.solve_settings)

    start, data = prepare(model_spec, data, training, settings.seed, reporter, feasible)
    about: dict[str, Any] = {
        "model": model_spec if isinstance(model_spec, str) else start.name,
        "data": data.name,
        "accelerator": accelerator.name,
        "settings": asdict(settings) | {"objective": [o.value for o in settings.objective]},
        "training": {
            "epochs": training.epochs,
            "checkpoint": None if training.checkpoint is None else str(training.checkpoint),
        },
        "start_accuracy": start.accuracy,
        "training_seconds": None if math.isnan(start.seconds) else start.seconds,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    done: list[Row] = []

    def log(rows: list[Row]) -> None:
        write_log([*done, *rows], start.accuracy, out, about)

    if executor is None or executor.kind == LOCAL:
        for policy in policies:
            done += run_policy(policy, start, data, accelerator, settings, out, reporter, on_rows=log)
    else:  # each policy on a worker, the rows back in the policies' order
        job = functools.partial(_policy_job, start=start, data=data, accelerator=accelerator, settings=settings,
                                out=out, threads=torch.get_num_threads(), ends=settings.options.ends())  # fmt: skip
        for rows in executor.run(job, policies):
            done += rows
        log([])
    title = f"{start.name} on {accelerator.name}" + (f", fusion {settings.fusion}" if settings.fusion > 1 else "")
    plot_pareto(done, start.accuracy, settings.max_drop, title, out / "pareto.png")
    final = final_iterations(done, start.accuracy, settings.max_drop)
    plot_widths(done, final, title, out / "widths.png")
    return done


def _policy_job(policy: str, start: Start, data: DataSet, accelerator: Accelerator, settings: Settings, out: Path,
                threads: int, ends: float | None) -> list[Row]:  # fmt: skip
    """One policy on a worker (``compress`` with a Dask executor)."""
    torch.set_num_threads(threads)
    settings = replace(settings, options=settings.options.ending(ends))
    return run_policy(policy, start, data, accelerator, settings, out)
