"""Fixtures for the data-power-law tests."""

import ctypes
import re
import sys

import pytest


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private scalinglab cache folder (trained tokenizers land here)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SCALINGLAB_CACHE", str(folder))
    return folder


@pytest.fixture(scope="module", autouse=True)
def single_threaded_blas():
    """Run these tests with one OpenBLAS thread, and restore the setting after each module.

    They make thousands of small LAPACK calls (bootstrap replicates of 100 x 100
    spectra). On a shared 2-core machine OpenBLAS threads then contend with other
    jobs and the suite ran 4x slower (the coverage test 35x). Linux only; elsewhere
    this does nothing.
    """
    restore = _set_openblas_threads(1)
    yield
    restore()


def _set_openblas_threads(n: int):
    if not sys.platform.startswith("linux"):
        return lambda: None
    import numpy.linalg  # noqa: F401  (load the OpenBLAS copies numpy and scipy ship)
    import scipy.linalg  # noqa: F401

    with open("/proc/self/maps") as f:
        paths = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", f.read())))
    undo = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"),
                               ("openblas", "")):
            setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            if setter is not None and getter is not None:
                old = getter()
                setter(n)
                undo.append((setter, old))
                break
    return lambda: [setter(old) for setter, old in undo]
