"""Training, fine-tuning and evaluation, seeded; training from scratch is cached.

One recipe for every model, from scratch and after each pruning step: Adam,
batches of 128, the learning rate decayed to zero along a cosine over the run
(fractions of an epoch allowed), cross-entropy, no augmentation. Shuffling and
dropout draw from generators seeded by the caller, so the same seed, data and
thread count give the same weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from pruning.data import DataSet

BATCH = 128


@dataclass(frozen=True)
class Recipe:
    epochs: float
    """Passes over the training set; a fraction runs that share of the batches."""
    lr: float
    """Peak learning rate of Adam."""
    seed: int = 0

    def batches(self, samples: int) -> int:
        return math.ceil(self.epochs * math.ceil(samples / BATCH))


TRAIN = 2e-3
"""Learning rate from scratch."""
FINETUNE = 5e-4
"""Learning rate after a pruning step: a quarter of the one from scratch."""


def fit(model: nn.Module, data: DataSet, recipe: Recipe, on_batch: Callable[[], None] | None = None) -> None:
    """Train ``model`` in place by ``recipe``; ``on_batch`` is called after every batch."""
    total = recipe.batches(len(data.train_x))
    if total == 0:
        return
    torch.manual_seed(recipe.seed)  # dropout masks
    order = torch.Generator().manual_seed(recipe.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    model.train()
    done = 0
    while done < total:
        permutation = torch.randperm(len(data.train_x), generator=order)
        for start in range(0, len(permutation), BATCH):
            if done == total:
                break
            batch = permutation[start : start + BATCH]
            optimizer.zero_grad()
            F.cross_entropy(model(data.train_x[batch]), data.train_y[batch]).backward()
            optimizer.step()
            schedule.step()
            done += 1
            if on_batch is not None:
                on_batch()
    model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, data: DataSet) -> float:
    """Top-1 accuracy on the test set, in percent."""
    model.eval()
    correct = sum(
        int((model(data.test_x[i : i + 1000]).argmax(1) == data.test_y[i : i + 1000]).sum())
        for i in range(0, len(data.test_x), 1000)
    )
    return 100.0 * correct / len(data.test_x)


def cache_key(model: nn.Module, data: DataSet, recipe: Recipe) -> str:
    """What a trained model depends on: the module's structure and initial weights, the data,
    the recipe, the thread count and the torch version."""
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().numpy().tobytes())
    about = {
        "module": repr(model),
        "weights": digest.hexdigest(),
        "data": data.fingerprint(),
        "recipe": [recipe.epochs, recipe.lr, recipe.seed, BATCH],
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    return hashlib.sha256(json.dumps(about, sort_keys=True).encode()).hexdigest()[:20]


class Trained(NamedTuple):
    accuracy: float
    """On the test set."""
    cached: bool
    """Whether the weights came from the cache."""
    seconds: float
    """The time training took, when it was done (nan for a cache entry older than this field)."""


def trained(
    model: nn.Module,
    data: DataSet,
    recipe: Recipe,
    cache: Path | None,
    name: str,
    on_batch: Callable[[], None] | None = None,
) -> Trained:
    """Train ``model`` from scratch, or load the weights a run with the same key saved in
    ``cache``. An unreadable cache entry is trained again and replaced."""
    path = None if cache is None else cache / f"{name}-{cache_key(model, data, recipe)}.pt"
    if path is not None and path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(saved["state_dict"])
            return Trained(float(saved["accuracy"]), True, float(saved.get("seconds", math.nan)))
        except Exception:  # a damaged entry is only a cache miss
            pass
    clock = time.perf_counter()
    fit(model, data, recipe, on_batch)
    seconds = time.perf_counter() - clock
    score = accuracy(model, data)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        torch.save({"state_dict": model.state_dict(), "accuracy": score, "seconds": seconds}, partial)
        partial.replace(path)
    return Trained(score, False, seconds)
