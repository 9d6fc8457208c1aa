"""Data sets for the compression loop: Fashion-MNIST from its IDX files, or a synthetic set.

Fashion-MNIST (Xiao et al., 2017; 60,000 training and 10,000 test images of
28x28 grey pixels, 10 classes) is read from the four IDX files (gzipped or
not) that Debian's package ``dataset-fashion-mnist`` installs in
``/usr/share/datasets/fashion-mnist``, or from any folder that holds them.
Pixels are scaled to [0, 1] and standardised with the training set's mean and
standard deviation.

``synthetic`` is a small generated set of the same shape for smoke runs and
tests: ten fixed random templates, each sample one of them shifted by up to two
pixels, scaled and with Gaussian noise; it is learnable in a few epochs.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dse_milp.errors import InputError

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
INSTALL = "apt-get update && apt-get install -y dataset-fashion-mnist"
FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
IDX_TYPES = {0x08: np.uint8}
MAX_BYTES = 1 << 30
"""IDX files larger than this (uncompressed) are refused."""


@dataclass(frozen=True)
class DataSet:
    name: str
    train_x: torch.Tensor
    """float32, (samples, channels, height, width), standardised."""
    train_y: torch.Tensor
    """int64 class labels."""
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: int

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)

    def fingerprint(self) -> str:
        """A short hash of the data, for caching what was trained on it."""
        digest = hashlib.sha256()
        for tensor in (self.train_x, self.train_y, self.test_x, self.test_y):
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.numpy().tobytes())
        return digest.hexdigest()[:16]


def _read_idx(path: Path) -> np.ndarray:
    """One IDX file (big-endian header: two zero bytes, a type code, the number of
    dimensions, then each dimension as a 32-bit integer), gzipped or not."""
    try:
        with path.open("rb") as raw:
            head = raw.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:  # unreadable, truncated or damaged gzip
        raise InputError([f"{path}: cannot read IDX file ({getattr(exc, 'strerror', None) or exc})"]) from None
    if len(data) > MAX_BYTES:
        raise InputError([f"{path}: larger than {MAX_BYTES} bytes"])
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in IDX_TYPES:
        raise InputError([f"{path}: not an IDX file of unsigned bytes (header {data[:4].hex()!r})"])
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if len(data) != header + int(np.prod(dims)):
        raise InputError([f"{path}: IDX header says {dims} ({int(np.prod(dims))} bytes) but the file holds "
                          f"{len(data) - header}"])  # fmt: skip
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find(directory: Path, stem: str) -> Path | None:
    return next((p for p in (directory / f"{stem}.gz", directory / stem) if p.is_file()), None)


def fashion_mnist(directory: Path = FASHION_MNIST) -> DataSet:
    """Fashion-MNIST from the IDX files in ``directory``; a missing file is an InputError that
    says how to install the data."""
    paths = {key: _find(directory, stem) for key, stem in FILES.items()}
    missing = [FILES[key] for key, path in paths.items() if path is None]
    if missing:
        raise InputError([
            f"--data: Fashion-MNIST not found in {str(directory)!r} (missing {', '.join(missing)}); install it with "
            f"'{INSTALL}', or give --data DIR holding the four IDX files, or --data synthetic"
        ])  # fmt: skip
    arrays = {key: _read_idx(path) for key, path in paths.items()}  # type: ignore[arg-type]
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise InputError([f"{paths[f'{split}_x']}: {x.shape} images do not match {y.shape} labels"])
    pixels = arrays["train_x"].astype(np.float32) / 255
    mean, std = float(pixels.mean()), float(pixels.std())

    def images(key: str) -> torch.Tensor:
        return torch.from_numpy((arrays[key].astype(np.float32) / 255 - mean) / std).unsqueeze(1)

    def labels(key: str) -> torch.Tensor:
        return torch.from_numpy(arrays[key].astype(np.int64))

    classes = int(max(arrays["train_y"].max(), arrays["test_y"].max())) + 1
    return DataSet("fashion-mnist", images("train_x"), labels("train_y"), images("test_x"), labels("test_y"), classes)


def synthetic(seed: int = 0, train: int = 1024, test: int = 256, classes: int = 10,
              shape: tuple[int, int, int] = (1, 28, 28)) -> DataSet:  # fmt: skip
    """A small learnable set (see the module docstring), the same for the same arguments."""
    rng = np.random.default_rng(seed)
    templates = rng.normal(size=(classes, *shape)).astype(np.float32)
    kernel = np.ones(5, dtype=np.float32) / 5  # smooth each template into blobs
    for axis in (-1, -2):
        templates = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, templates)
    templates /= templates.std(axis=(1, 2, 3), keepdims=True)

    def draw(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = rng.integers(classes, size=count)
        shifts = rng.integers(-2, 3, size=(count, 2))
        x = np.stack([np.roll(templates[k], tuple(s), axis=(-2, -1)) for k, s in zip(labels, shifts, strict=True)])
        x = x * rng.uniform(0.6, 1.4, size=(count, 1, 1, 1)) + rng.normal(scale=0.7, size=x.shape)
        return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(labels.astype(np.int64))

    train_x, train_y = draw(train)
    test_x, test_y = draw(test)
    return DataSet("synthetic", train_x, train_y, test_x, test_y, classes)


def load_data(spec: str | None) -> DataSet:
    """``None``: Fashion-MNIST where Debian installs it; ``synthetic``; or a folder of IDX files."""
    if spec == "synthetic":
        return synthetic()
    directory = FASHION_MNIST if spec is None else Path(spec)
    if spec is not None and not directory.is_dir():
        raise InputError([f"--data: {spec!r} is not a folder (give a folder of IDX files, or synthetic)"])
    return fashion_mnist(directory)
