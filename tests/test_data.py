"""The data sets: IDX files written by hand, the synthetic set, and data fitted to a model's input."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dse_milp.errors import InputError  # noqa: E402
from pruning.compress import fit_data  # noqa: E402
from pruning.data import FILES, fashion_mnist, load_data, synthetic  # noqa: E402


def idx(array: np.ndarray) -> bytes:
    """The IDX encoding of an array of unsigned bytes: 0, 0, type 0x08, dimensions, then each
    dimension as a big-endian 32-bit integer, then the data."""
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_set(folder: Path, train: int = 6, test: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    arrays = {
        "train_x": rng.integers(0, 256, size=(train, 5, 4), dtype=np.uint8),
        "train_y": rng.integers(0, 3, size=train, dtype=np.uint8),
        "test_x": rng.integers(0, 256, size=(test, 5, 4), dtype=np.uint8),
        "test_y": np.array([0, 1, 2, 1][:test], dtype=np.uint8),
    }
    for key, array in arrays.items():
        data = idx(array)
        if key.startswith("train"):  # the Debian package gzips them; plain files work too
            (folder / f"{FILES[key]}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / FILES[key]).write_bytes(data)
    return arrays


def test_idx_files_read_back_standardised(tmp_path):
    arrays = write_set(tmp_path)
    data = fashion_mnist(tmp_path)
    pixels = arrays["train_x"].astype(np.float32) / 255
    mean, std = pixels.mean(), pixels.std()
    assert data.train_x.shape == (6, 1, 5, 4) and data.test_x.shape == (4, 1, 5, 4)
    assert np.allclose(data.train_x.numpy()[:, 0], (pixels - mean) / std, atol=1e-6)
    assert np.allclose(data.test_x.numpy()[:, 0], (arrays["test_x"] / 255 - mean) / std, atol=1e-6)
    assert data.train_y.tolist() == arrays["train_y"].tolist() and data.classes == 3
    assert load_data(str(tmp_path)).fingerprint() == data.fingerprint()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:-3], "IDX header says [6, 5, 4] (120 bytes) but the file holds 117"),
        (lambda b: b"\x1f\x8b" + b[2:], "cannot read IDX file"),  # a gzip magic on a plain file
        (lambda b: b"\x00\x00\x0d" + b[3:], "not an IDX file of unsigned bytes"),
    ],
)
def test_damaged_idx_files_are_named(tmp_path, damage, message):
    write_set(tmp_path)
    path = tmp_path / f"{FILES['train_x']}.gz"
    path.write_bytes(damage(gzip.decompress(path.read_bytes())))
    path.rename(tmp_path / FILES["train_x"])
    with pytest.raises(InputError) as error:
        fashion_mnist(tmp_path)
    (problem,) = error.value.problems
    assert problem.startswith(str(tmp_path / FILES["train_x"])) and message in problem


def test_missing_data_says_how_to_install_it(tmp_path):
    with pytest.raises(InputError, match="apt-get update && apt-get install -y dataset-fashion-mnist"):
        fashion_mnist(tmp_path)
    with pytest.raises(InputError, match="is not a folder"):
        load_data(str(tmp_path / "nowhere"))


def test_the_synthetic_set_is_fixed_by_its_seed():
    a, b, c = synthetic(train=64, test=16), synthetic(train=64, test=16), synthetic(seed=1, train=64, test=16)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert a.sample_shape == (1, 28, 28) and a.classes == 10


def test_data_are_padded_to_a_larger_input_around_the_centre():
    data = synthetic(train=8, test=4)
    padded = fit_data(data, (1, 32, 31), 10, "model")
    assert padded.sample_shape == (1, 32, 31)
    assert torch.equal(padded.train_x[:, :, 2:30, 1:29], data.train_x)
    assert float(padded.test_x[0, 0, 0, 0]) == float(data.train_x.min())
    with pytest.raises(InputError, match=r"takes samples of \[3, 32, 32\] but the data are \[1, 28, 28\]"):
        fit_data(data, (3, 32, 32), 10, "model")
    with pytest.raises(InputError, match="gives 12 classes but the data have 10"):
        fit_data(data, (1, 28, 28), 12, "model")
