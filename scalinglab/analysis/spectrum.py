"""Singular-value spectra of data matrices, and whether they follow a power law.

A data matrix ``X`` has one sample per row (an MNIST image flattened to 784
pixels, a row of a table). Its singular values ``s_1 >= s_2 >= ...`` often fall
off like ``s_r ~ A r^-beta``; the lecture draws ``5e5 r^-0.8`` through MNIST's.
:func:`analyse_spectrum` computes the spectrum, fits the power law over a rank
range chosen by the data (the rule of :mod:`scalinglab.analysis.powerlaw_fit`),
puts a bootstrap interval on ``beta``, and does the same for a Gaussian random
matrix of the same shape, whose spectrum follows the Marchenko-Pastur law
(Marchenko & Pastur 1967) and is *not* a power law.

How the singular values are computed (stated in every result):

* ``lapack-svd``: the matrix, as float64, fits in ``max_memory``: it is loaded
  and its singular values come from LAPACK (``numpy.linalg.svd``), exactly.
* ``randomized-svd``: it does not fit. The matrix is streamed in row blocks
  (``.npy`` files through ``np.load(mmap_mode="r")``, CSV files chunk by chunk)
  and the top ``rank`` singular values come from randomized subspace iteration
  on ``X^T X`` with a Rayleigh-Ritz step (Halko, Martinsson & Tropp 2011,
  Alg. 4.4 and 5.1): ``2 rank + 10`` probe vectors, ``power_iterations`` passes,
  one more pass for the Ritz values. Memory is ``O(columns x probes)``.

Centring: by default the raw matrix is analysed, as in the lecture; then ``s_1``
mostly measures the mean row. ``center=True`` subtracts the column means first
(the spectrum of the covariance, PCA).

The interval on ``beta`` is a row bootstrap: rows are the samples, so resampling
them and recomputing the spectrum asks how much ``beta`` would move with a
different draw of images; the rank range is chosen afresh in every replicate,
so its uncertainty is included. A residual bootstrap was not used: residuals of
a spectrum around its line are smooth and strongly correlated from rank to rank,
so resampling them as independent draws would understate the uncertainty.
To keep each replicate cheap, rows are dealt at random into ``blocks`` groups
and the replicate resamples whole groups (multinomial counts) and adds their
Gram matrices; for independent rows this has the same variance as resampling
single rows. On the randomized path the replicates are computed inside the
subspace found for the full data (Ritz values of ``Q^T X_b^T X_b Q``), which
ignores the subspace's own sampling noise and so narrows the interval a little.
The row bootstrap needs many more rows than the fitted ranks
(each replicate holds only ~63% distinct rows); a warning in ``notes`` says so
when it does not have them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scalinglab.analysis.powerlaw_fit import (PER_DECADE, RankFit, fit_rank_power_law, local_exponents,
                                              percentile_interval)
from scalinglab.errors import ConfigError, DataError, FitError

DEFAULT_MAX_MEMORY = 1 << 30  # bytes: matrices up to 1 GiB (as float64) are decomposed in memory
DEFAULT_RANDOMIZED_RANK = 200  # singular values the randomized path computes unless told otherwise
BLOCK_ROWS = 4096  # rows per streamed block
BOOTSTRAP_BLOCKS = 40  # groups of rows the bootstrap resamples
MIN_BOOTSTRAP_BLOCKS = 10
POWER_ITERATIONS = 4
MATRIX_SUFFIXES = (".npy", ".npz", ".csv", ".tsv", ".txt")


# ---------------------------------------------------------------- matrix sources

class MatrixSource:
    """A matrix that can be read (again and again) as float64 row blocks."""

    name: str
    description: str
    n_rows: int
    n_cols: int

    @property
    def nbytes(self) -> int:
        """Size of the whole matrix as float64."""
        return self.n_rows * self.n_cols * 8

    def blocks(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def to_array(self) -> np.ndarray:
        out = np.empty((self.n_rows, self.n_cols))
        at = 0
        for b in self.blocks():
            out[at:at + len(b)] = b
            at += len(b)
        return out


class ArraySource(MatrixSource):
    """An in-memory or memory-mapped array of any real dtype; arrays of 3+ dims are flattened per row."""

    def __init__(self, array, name: str, description: str = ""):
        a = array
        if a.ndim < 2:
            raise DataError(f"{name} is a {a.ndim}-D array of shape {a.shape}; a spectrum needs a 2-D "
                            "matrix with one sample per row (reshape it, e.g. to (n_samples, n_features))")
        if a.dtype.kind not in "biuf":
            raise DataError(f"{name} has dtype {a.dtype}, not a real number type; save the matrix as "
                            "float or integer values")
        if a.ndim > 2:
            description = (description + " " if description else "") + \
                f"(shape {a.shape} flattened to {(a.shape[0], int(np.prod(a.shape[1:])))})"
            a = a.reshape(a.shape[0], -1)
        if a.shape[0] == 0 or a.shape[1] == 0:
            raise DataError(f"{name} is empty (shape {a.shape}); it needs at least one row and one column")
        self._a, self.name = a, name
        self.description = description or f"{name}"
        self.n_rows, self.n_cols = a.shape

    def blocks(self) -> Iterator[np.ndarray]:
        for start in range(0, self.n_rows, BLOCK_ROWS):
            b = np.asarray(self._a[start:start + BLOCK_ROWS], dtype=np.float64)
            _check_finite(b, self.name, start)
            yield b

    def to_array(self) -> np.ndarray:
        out = np.array(self._a, dtype=np.float64)
        _check_finite(out, self.name, 0)
        return out


class CSVSource(MatrixSource):
    """A delimited text file of numbers, read in chunks of rows (a header row is allowed)."""

    def __init__(self, path: Path, sep: str):
        import pandas as pd

        self.path, self.sep, self.name = path, sep, str(path)
        try:
            first = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, engine="python")
        except pd.errors.EmptyDataError:
            raise DataError(f"{path} is empty; a matrix file needs at least one row of numbers") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{path} is not a readable delimited text file ({exc})") from exc
        self.header = 0 if not all(_is_number(c) for c in first.iloc[0].tolist()) else None
        rows, cols = 0, None
        for chunk in self._chunks():
            rows += len(chunk)
            cols = chunk.shape[1]
        if not rows:
            raise DataError(f"{path} has a header but no rows of numbers")
        self.n_rows, self.n_cols = rows, cols
        self.description = f"{path.name} ({'with' if self.header == 0 else 'no'} header row)"

    def _chunks(self) -> Iterator[np.ndarray]:
        import pandas as pd

        start = 1 if self.header == 0 else 0  # line number of the first data row, 0-based
        try:
            reader = pd.read_csv(self.path, sep=self.sep, header=self.header, chunksize=BLOCK_ROWS,
                                 dtype=str, engine="python" if self.sep == r"\s+" else "c",
                                 keep_default_na=False)
            for chunk in reader:
                values = chunk.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
                bad = ~np.isfinite(values)
                if bad.any():
                    r, c = map(int, np.argwhere(bad)[0])
                    cell = chunk.iat[r, c]
                    what = "an empty cell" if str(cell).strip() == "" else f"{cell!r}, which is not a finite number"
                    raise DataError(f"{self.path} line {start + r + 1}, column {c + 1} holds {what}; "
                                    "a matrix file must hold only numbers (one header row is allowed)")
                start += len(chunk)
                yield values
        except pd.errors.ParserError as exc:
            raise DataError(f"{self.path} has rows of different lengths ({exc}); "
                            "every row of a matrix needs the same number of columns") from exc

    def blocks(self) -> Iterator[np.ndarray]:
        return self._chunks()


class GaussianSource(MatrixSource):
    """An i.i.d. N(0, 1) matrix generated block by block (the same blocks on every pass)."""

    def __init__(self, n_rows: int, n_cols: int, seed: int = 0):
        if n_rows < 1 or n_cols < 1:
            raise ConfigError(f"a Gaussian matrix needs positive dimensions, got {n_rows} x {n_cols}")
        self.n_rows, self.n_cols, self.seed = n_rows, n_cols, seed
        self.name = f"gaussian:{n_rows}x{n_cols}"
        self.description = f"Gaussian random matrix, i.i.d. N(0, 1) entries, {n_rows} x {n_cols} (seed {seed})"

    def blocks(self) -> Iterator[np.ndarray]:
        for k, start in enumerate(range(0, self.n_rows, BLOCK_ROWS)):
            rng = np.random.default_rng([self.seed, k])
            yield rng.standard_normal((min(BLOCK_ROWS, self.n_rows - start), self.n_cols))


def load_matrix(dataset, key: str | None = None) -> MatrixSource:
    """A matrix source for ``"mnist"``, ``"gaussian:ROWSxCOLS"``, an array, or a file.

    Files: ``.npy`` (memory-mapped, never read whole unless it fits in memory),
    ``.npz`` (the array named ``key``, or its only array), and delimited text:
    ``.csv`` (commas), ``.tsv`` (tabs), ``.txt`` (whitespace), with an optional
    header row.
    """
    if isinstance(dataset, np.ndarray):
        return ArraySource(dataset, "array")
    text = str(dataset)
    if text == "mnist":
        from scalinglab.data.mnist import load_mnist

        images = load_mnist().train_images
        return ArraySource(images.reshape(len(images), -1), "mnist",
                           "MNIST training images, raw pixel values 0-255 (as in the lecture)")
    if text.startswith("gaussian:"):
        m = re.fullmatch(r"gaussian:(\d+)[x,](\d+)", text)
        if not m:
            raise ConfigError(f"write a Gaussian matrix as gaussian:ROWSxCOLS (e.g. gaussian:1024x1024), "
                              f"got {text!r}")
        return GaussianSource(int(m[1]), int(m[2]))
    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(f"no such file: {text}; give 'mnist', 'gaussian:ROWSxCOLS', or a "
                        f"{'/'.join(MATRIX_SUFFIXES)} matrix file")
    if path.is_dir():
        raise DataError(f"{path} is a folder; give a single matrix file ({'/'.join(MATRIX_SUFFIXES)})")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; it needs a matrix with at least one row")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{path} is not a readable .npy array ({exc}); save it with numpy.save") from exc
        return ArraySource(array, str(path), f"{path.name} (memory-mapped .npy)")
    if suffix == ".npz":
        try:
            archive = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{path} is not a readable .npz archive ({exc}); save it with numpy.savez") from exc
        names = list(archive.files)
        if key is None and len(names) != 1:
            raise DataError(f"{path} holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                            "choose one with --key NAME")
        name = key if key is not None else names[0]
        if name not in names:
            raise DataError(f"{path} has no array {name!r}; it holds: {', '.join(names)}")
        try:
            array = archive[name]
        except ValueError as exc:
            raise DataError(f"array {name!r} in {path} cannot be read without pickle ({exc})") from exc
        return ArraySource(array, f"{path}[{name}]", f"{path.name}, array {name!r} (.npz is read whole)")
    if suffix in (".csv", ".tsv", ".txt"):
        return CSVSource(path, {".csv": ",", ".tsv": "\t", ".txt": r"\s+"}[suffix])
    raise DataError(f"{path} has an unknown suffix {path.suffix!r}; matrix files must be "
                    f"{', '.join(MATRIX_SUFFIXES)}")


# ---------------------------------------------------------------- singular values

@dataclass
class BlockGrams:
    """Per-group Gram matrices ``F_g^T F_g``, column sums and row counts of a feature matrix ``F``.

    ``F`` has the same singular values as the data (``X`` itself, ``U S`` for a
    wide ``X``, or ``X Q`` on the randomized path), so a bootstrap replicate is a
    weighted sum of groups followed by one small symmetric eigenproblem.
    """

    grams: np.ndarray  # (groups, k, k)
    sums: np.ndarray  # (groups, k)
    counts: np.ndarray  # (groups,) rows per group

    @classmethod
    def empty(cls, groups: int, k: int) -> "BlockGrams":
        return cls(np.zeros((groups, k, k)), np.zeros((groups, k)), np.zeros(groups, dtype=np.int64))

    def add(self, rows: np.ndarray, group_of_row: np.ndarray) -> None:
        for g in np.unique(group_of_row):
            part = rows[group_of_row == g]
            self.grams[g] += part.T @ part
            self.sums[g] += part.sum(axis=0)
            self.counts[g] += len(part)

    def singular_values(self, weights: np.ndarray, center: bool) -> np.ndarray:
        gram = np.tensordot(weights, self.grams, axes=1)
        if center:
            s = weights @ self.sums
            gram -= np.outer(s, s) / (weights @ self.counts)
        eig = np.linalg.eigvalsh(gram)[::-1]
        return np.sqrt(np.clip(eig, 0.0, None))


@dataclass
class Spectrum:
    """Singular values of one matrix and how they were computed."""

    values: np.ndarray  # descending; only the numerically non-zero ones (and only the top `rank` if randomized)
    method: str  # "lapack-svd" | "randomized-svd"
    detail: str  # one sentence for people
    frobenius_sq: float  # ||X||_F^2 of the analysed (centred or not) matrix
    n_computed: int  # singular values computed before dropping numerical zeros
    grams: BlockGrams | None = None  # for the row bootstrap


def compute_spectrum(source: MatrixSource, *, center: bool = False, max_memory: int = DEFAULT_MAX_MEMORY,
                     rank: int | None = None, power_iterations: int = POWER_ITERATIONS,
                     bootstrap_groups: int = BOOTSTRAP_BLOCKS, seed: int = 0) -> Spectrum:
    """Singular values by LAPACK if the matrix fits in ``max_memory`` bytes, else by randomized SVD.

    ``rank`` is how many singular values the randomized path estimates (default
    ``DEFAULT_RANDOMIZED_RANK``); the exact path computes them all.
    ``bootstrap_groups=0`` skips the per-group Gram matrices the bootstrap needs.
    """
    rng = np.random.default_rng(seed)
    k_full = min(source.n_rows, source.n_cols)
    if source.nbytes <= max_memory:
        return _lapack_spectrum(source, center, bootstrap_groups, max_memory, rng)
    rank = min(rank or DEFAULT_RANDOMIZED_RANK, k_full)
    return _randomized_spectrum(source, center, rank, power_iterations, bootstrap_groups, max_memory, rng)


def _groups_that_fit(k: int, wanted: int, max_memory: int) -> int:
    """How many k x k float64 Gram matrices fit in half the memory budget (0 if fewer than the minimum)."""
    fit = (max_memory // 2) // (8 * k * k) if k else 0
    groups = min(wanted, fit)
    return groups if groups >= MIN_BOOTSTRAP_BLOCKS else 0


def _lapack_spectrum(source, center, groups, max_memory, rng) -> Spectrum:
    x = source.to_array()
    n, d = x.shape
    if d <= n:
        features = x  # tall: the rows themselves
    else:  # wide: coordinates of the rows in their own span (n x n); same spectra, centred or not
        u, s, _ = np.linalg.svd(x, full_matrices=False)
        features = u * s
    analysed = features - features.mean(axis=0) if center else features
    values = np.linalg.svd(analysed, compute_uv=False)
    frob = float(np.sum(values ** 2))
    n_computed = values.size
    tol = values[0] * max(n, d) * np.finfo(float).eps if values.size else 0.0
    values = values[values > tol]
    k = features.shape[1]
    groups = _groups_that_fit(k, groups, max_memory) if groups else 0
    grams = None
    if groups:
        grams = BlockGrams.empty(groups, k)
        grams.add(features, rng.permutation(n) % groups)
    shape = "" if d <= n else f" of the {n} x {n} row-space coordinates"
    detail = (f"exact: the whole {n} x {d} matrix ({source.nbytes / 2**20:.0f} MiB as float64) fits in "
              f"the {max_memory / 2**20:.0f} MiB budget, so LAPACK computes all {n_computed} singular values"
              f"{shape}; {values.size} are above the numerical-rank tolerance")
    return Spectrum(values, "lapack-svd", detail, frob, n_computed, grams)


def _randomized_spectrum(source, center, rank, power_iterations, groups, max_memory, rng) -> Spectrum:
    n, d = source.n_rows, source.n_cols
    probes = min(2 * rank + 10, min(n, d))
    mean = np.zeros(d)
    if center:
        for b in source.blocks():
            mean += b.sum(axis=0)
        mean /= n
    q, _ = np.linalg.qr(rng.standard_normal((d, probes)))
    for _ in range(power_iterations):
        z = np.zeros((d, probes))
        for b in source.blocks():
            z += b.T @ (b @ q)
        if center:
            z -= n * np.outer(mean, mean @ q)
        q, _ = np.linalg.qr(z)
    groups = _groups_that_fit(probes, groups, max_memory) if groups else 0
    grams = BlockGrams.empty(max(groups, 1), probes)
    frob = 0.0
    for b in source.blocks():
        frob += float(np.sum(b * b))
        grams.add(b @ q, rng.integers(0, max(groups, 1), size=len(b)))
    if center:
        frob -= n * float(mean @ mean)
    all_groups = np.ones(len(grams.counts))
    ritz = grams.singular_values(all_groups, center)
    values = ritz[:rank]
    tol = values[0] * math.sqrt(probes * np.finfo(float).eps) if values.size else 0.0
    values = values[values > tol]
    detail = (f"randomized: the {n} x {d} matrix ({source.nbytes / 2**20:.0f} MiB as float64) exceeds the "
              f"{max_memory / 2**20:.0f} MiB budget, so it was streamed in row blocks "
              f"and the top {rank} singular values estimated by randomized subspace iteration "
              f"({probes} probe vectors, {power_iterations} power iterations, Rayleigh-Ritz, "
              f"{power_iterations + 1 + int(center)} passes over the data; Halko, Martinsson & Tropp 2011)")
    return Spectrum(values, "randomized-svd", detail, max(frob, 0.0), rank, grams if groups else None)


# ---------------------------------------------------------------- Marchenko-Pastur

def marchenko_pastur_edges(n_rows: int, n_cols: int, variance: float = 1.0) -> tuple[float, float]:
    """Smallest and largest singular value of a large n x d matrix with i.i.d. entries of this variance."""
    big, small = max(n_rows, n_cols), min(n_rows, n_cols)
    lam = small / big
    return (math.sqrt(variance * big) * (1 - math.sqrt(lam)),
            math.sqrt(variance * big) * (1 + math.sqrt(lam)))


def marchenko_pastur_singular_values(n_rows: int, n_cols: int, variance: float = 1.0) -> np.ndarray:
    """The ``min(n, d)`` singular values the Marchenko-Pastur law predicts, in descending rank order.

    Eigenvalues of ``Z^T Z / max(n, d)`` for i.i.d. entries of variance ``v`` have
    (for ratio ``lam = min/max <= 1``) the density
    ``sqrt((b - x)(x - a)) / (2 pi v lam x)`` on ``[a, b] = v (1 -+ sqrt(lam))^2``
    (Marchenko & Pastur 1967). Rank ``r`` gets the ``1 - (r - 1/2)/k`` quantile.
    """
    big, k = max(n_rows, n_cols), min(n_rows, n_cols)
    lam = k / big
    a, b = variance * (1 - math.sqrt(lam)) ** 2, variance * (1 + math.sqrt(lam)) ** 2
    theta = np.linspace(0.0, math.pi, 20001)
    x = a + (b - a) * (1 - np.cos(theta)) / 2  # dense near both square-root edges
    with np.errstate(divide="ignore", invalid="ignore"):
        # density * dx/dtheta, written so that the a = 0 (square) case stays finite
        integrand = ((b - a) / 2) ** 2 * np.sin(theta) ** 2 / (2 * math.pi * variance * lam * x)
    integrand[0] = integrand[1] if a == 0 else integrand[0]
    cdf = np.concatenate([[0.0], np.cumsum((integrand[1:] + integrand[:-1]) / 2 * np.diff(theta))])
    cdf /= cdf[-1]
    probs = 1.0 - (np.arange(1, k + 1) - 0.5) / k
    eig = np.interp(probs, cdf, x)
    return np.sqrt(eig * big)


# ---------------------------------------------------------------- analysis

@dataclass
class ReferenceSpectrum:
    """The Gaussian matrix of the data's shape and Frobenius norm, and its power-law fit."""

    shape: tuple[int, int]
    variance: float  # entry variance: ||X||_F^2 / (n d) of the analysed matrix
    method: str
    values: np.ndarray
    marchenko_pastur: np.ndarray  # predicted singular values, rank order
    edges: tuple[float, float]
    fit: RankFit | None
    plausible: bool
    reason: str

    def to_dict(self) -> dict:
        return {
            "kind": "gaussian", "shape": list(self.shape), "entry_variance": self.variance,
            "method": self.method, "marchenko_pastur_edges": list(self.edges),
            "exponent": self.fit.exponent if self.fit else None,
            "rank_min": self.fit.rank_min if self.fit else None,
            "rank_max": self.fit.rank_max if self.fit else None,
            "fit": self.fit.to_dict() if self.fit else None,
            "power_law_plausible": self.plausible, "reason": self.reason,
        }


@dataclass
class SpectrumResult:
    """Everything :func:`analyse_spectrum` measured; ``to_dict`` is the CLI's JSON."""

    dataset: str
    description: str
    shape: tuple[int, int]
    centred: bool
    spectrum: Spectrum
    fit: RankFit
    ci: tuple[float, float]
    level: float
    bootstrap_exponents: np.ndarray
    bootstrap_detail: str
    plausible: bool
    reason: str
    reference: ReferenceSpectrum | None
    notes: list[str] = field(default_factory=list)

    @property
    def exponent(self) -> float:
        return self.fit.exponent

    def to_dict(self) -> dict:
        from scalinglab.analysis.powerlaw_fit import _json_float

        return {
            "dataset": self.dataset, "description": self.description, "shape": list(self.shape),
            "centering": "centred" if self.centred else "uncentred",
            "method": self.spectrum.method, "method_detail": self.spectrum.detail,
            "n_singular_values": int(self.spectrum.values.size),
            "exponent": self.fit.exponent, "ci": [_json_float(c) for c in self.ci], "ci_level": self.level,
            "prefactor": self.fit.prefactor,
            "rank_min": self.fit.rank_min, "rank_max": self.fit.rank_max,
            "fit": self.fit.to_dict(),
            "bootstrap": {"method": "row bootstrap (groups of rows resampled with replacement)",
                          "replicates": int(np.isfinite(self.bootstrap_exponents).sum()),
                          "detail": self.bootstrap_detail},
            "power_law_plausible": self.plausible, "reason": self.reason,
            "reference": self.reference.to_dict() if self.reference else None,
            "singular_values": self.spectrum.values.tolist(),
            "notes": self.notes,
        }

    def to_frame(self):
        """One row per rank: singular value, fitted line (inside the range), reference, Marchenko-Pastur."""
        import pandas as pd

        k = self.spectrum.values.size
        ranks = np.arange(1, k + 1)
        inside = (ranks >= self.fit.rank_min) & (ranks <= self.fit.rank_max)
        frame = pd.DataFrame({"rank": ranks, "singular_value": self.spectrum.values,
                              "fitted": np.where(inside, self.fit.predict(ranks), np.nan)})
        if self.reference is not None:
            ref = np.full(k, np.nan)
            m = min(k, self.reference.values.size)
            ref[:m] = self.reference.values[:m]
            mp = np.full(k, np.nan)
            m = min(k, self.reference.marchenko_pastur.size)
            mp[:m] = self.reference.marchenko_pastur[:m]
            frame["gaussian"] = ref
            frame["marchenko_pastur"] = mp
        return frame


def analyse_spectrum(dataset, *, center: bool = False, n_bootstrap: int = 200, level: float = 0.95,
                     max_memory: int = DEFAULT_MAX_MEMORY, rank: int | None = None,
                     power_iterations: int = POWER_ITERATIONS, reference: bool = True, seed: int = 0,
                     key: str | None = None) -> SpectrumResult:
    """Spectrum, power-law fit, row-bootstrap interval and Gaussian reference of a data matrix.

    ``dataset`` is anything :func:`load_matrix` accepts, or a :class:`MatrixSource`.
    """
    if n_bootstrap < 0:
        raise ConfigError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}")
    if rank is not None and rank < 11:
        raise ConfigError(f"rank must be at least 11 (a decade of ranks to fit), got {rank}")
    if max_memory <= 0:
        raise ConfigError(f"max_memory must be a positive number of bytes, got {max_memory}")
    source = dataset if isinstance(dataset, MatrixSource) else load_matrix(dataset, key)
    spectrum = compute_spectrum(source, center=center, max_memory=max_memory, rank=rank,
                                power_iterations=power_iterations,
                                bootstrap_groups=BOOTSTRAP_BLOCKS if n_bootstrap else 0, seed=seed)
    if spectrum.values.size < 11:
        raise FitError(f"{source.name} has only {spectrum.values.size} non-zero singular values; a power "
                       "law over a decade of ranks needs at least 11 (use a matrix with more rows and columns)")
    fit = fit_rank_power_law(spectrum.values)
    plausible, reason = fit.verdict()
    notes: list[str] = []

    rng = np.random.default_rng([seed, 1])
    boot = np.full(n_bootstrap, np.nan)
    if n_bootstrap and spectrum.grams is not None:
        g = spectrum.grams
        groups = len(g.counts)
        for b in range(n_bootstrap):
            weights = rng.multinomial(groups, np.full(groups, 1.0 / groups)).astype(float)
            s = g.singular_values(weights, center)[:spectrum.values.size]
            s = s[s > s[0] * math.sqrt(s.size * np.finfo(float).eps)]
            try:
                boot[b] = fit_rank_power_law(s).exponent
            except FitError:
                pass
        detail = (f"{n_bootstrap} replicates; rows dealt at random into {groups} groups, groups resampled "
                  f"with replacement, rank range re-chosen in each replicate")
        if source.n_rows < 10 * fit.rank_max:
            notes.append(f"only {source.n_rows} rows for a fit reaching rank {fit.rank_max}: a row bootstrap "
                         "needs many more rows than fitted ranks, so read the interval as rough")
    elif n_bootstrap:
        detail = "skipped: the per-group Gram matrices do not fit in the memory budget (raise --max-memory)"
        notes.append(detail)
    else:
        detail = "skipped (n_bootstrap = 0)"
    ci = percentile_interval(boot, level)

    ref = _reference(source, spectrum, max_memory, rank, power_iterations, seed) if reference else None
    return SpectrumResult(
        dataset=source.name, description=source.description, shape=(source.n_rows, source.n_cols),
        centred=center, spectrum=spectrum, fit=fit, ci=ci, level=level, bootstrap_exponents=boot,
        bootstrap_detail=detail, plausible=plausible, reason=reason, reference=ref, notes=notes)


def _reference(source, spectrum, max_memory, rank, power_iterations, seed) -> ReferenceSpectrum:
    n, d = source.n_rows, source.n_cols
    variance = spectrum.frobenius_sq / (n * d)
    big, small = max(n, d), min(n, d)
    gauss = GaussianSource(big, small, seed=seed + 1)  # a wide Gaussian has the spectrum of its transpose
    if spectrum.method == "lapack-svd" and small * small * 8 <= max_memory:
        gram = np.zeros((small, small))
        for b in gauss.blocks():
            gram += b.T @ b
        values = np.sqrt(np.clip(np.linalg.eigvalsh(gram)[::-1], 0.0, None))
        method = "gram-eigh (eigenvalues of Z^T Z, accumulated over row blocks)"
    else:
        values = _randomized_spectrum(gauss, False, min(rank or DEFAULT_RANDOMIZED_RANK, small),
                                      power_iterations, 0, max_memory, np.random.default_rng(seed)).values
        method = "randomized-svd (same settings as the data)"
    values = values * math.sqrt(variance)
    mp = marchenko_pastur_singular_values(n, d, variance)
    values = values[values > 0]
    try:
        fit = fit_rank_power_law(values)
        plausible, reason = fit.verdict()
    except FitError as exc:
        fit, plausible, reason = None, False, str(exc)
    return ReferenceSpectrum(shape=(n, d), variance=variance, method=method, values=values,
                             marchenko_pastur=mp, edges=marchenko_pastur_edges(n, d, variance),
                             fit=fit, plausible=plausible, reason=reason)


# ---------------------------------------------------------------- reporting

def format_spectrum(result: SpectrumResult) -> str:
    """The CLI's text output: the numbers with their method and the verdict in words."""
    f = result.fit
    lines = [
        f"{result.description}: {result.shape[0]} x {result.shape[1]}, "
        f"{'centred (column means removed)' if result.centred else 'uncentred (raw values)'}",
        f"method: {result.spectrum.method} - {result.spectrum.detail}",
        f"power law s_r ~ A r^-beta: beta = {f.exponent:.3f}, "
        f"{result.level:.0%} interval [{result.ci[0]:.3f}, {result.ci[1]:.3f}] ({result.bootstrap_detail})",
        f"rank range [{f.rank_min}, {f.rank_max}] chosen by the data (least relative deviation among "
        f"{f.n_candidates} ranges of >= 1 decade); A = {f.prefactor:.4g}",
        f"power law plausible: {'yes' if result.plausible else 'NO'} - {result.reason}",
    ]
    ref = result.reference
    if ref is not None:
        lo, hi = ref.edges
        head = (f"reference: Gaussian matrix of the same shape and Frobenius norm ({ref.method}); "
                f"Marchenko-Pastur edges {lo:.4g} .. {hi:.4g}")
        lines.append(head)
        if ref.fit is not None:
            lines.append(f"  best line beta = {ref.fit.exponent:.3f} on ranks [{ref.fit.rank_min}, "
                         f"{ref.fit.rank_max}]; power law plausible: {'yes' if ref.plausible else 'NO'} - "
                         f"{ref.reason}")
        else:
            lines.append(f"  power law plausible: NO - {ref.reason}")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def plot_spectrum(result: SpectrumResult):
    """Log-log spectrum with the fitted line, the Gaussian reference and Marchenko-Pastur (left),
    and the local exponent -dlog s / dlog r (right)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    s = result.spectrum.values
    ranks = np.arange(1, s.size + 1)
    f = result.fit
    label = "centred" if result.centred else "uncentred"
    ax.loglog(ranks, s, ".", ms=3, color="#1f4e79", label=f"{result.dataset} ({label})")
    span = np.geomspace(f.rank_min, f.rank_max, 50)
    ax.loglog(ranks, f.predict(ranks), color="#c0504d", lw=0.8, ls=":", alpha=0.7)
    ax.loglog(span, f.predict(span), color="#c0504d", lw=2.2,
              label=f"fit: beta = {f.exponent:.3f} [{result.ci[0]:.3f}, {result.ci[1]:.3f}], "
                    f"ranks {f.rank_min}-{f.rank_max}")
    ref = result.reference
    if ref is not None:
        rr = np.arange(1, ref.values.size + 1)
        ax.loglog(rr, ref.values, color="0.55", lw=1.2, label="Gaussian matrix, same shape and norm")
        mp = ref.marchenko_pastur
        ax.loglog(np.arange(1, mp.size + 1), mp, color="k", lw=1, ls="--", label="Marchenko-Pastur law")
    ax.set_xlabel("rank r")
    ax.set_ylabel("singular value s_r")
    shape = f"{result.shape[0]}x{result.shape[1]}"
    ax.set_title(f"Singular values: {result.dataset}" + ("" if shape in result.dataset else f" ({shape})"))
    lo = max(s.min(), s.max() * 1e-6)
    ax.set_ylim(lo / 2, s.max() * 2)
    ax.legend(fontsize=7.5, frameon=False, loc="lower left")

    lr, le = local_exponents(s, PER_DECADE)
    ax2.semilogx(lr, le, "o-", ms=3, lw=1, color="#1f4e79", label=f"{result.dataset}")
    if ref is not None and ref.values.size >= 2:
        gr, ge = local_exponents(ref.values, PER_DECADE)
        ax2.semilogx(gr, ge, "-", color="0.55", lw=1.2, label="Gaussian matrix")
    ax2.hlines(f.exponent, f.rank_min, f.rank_max, color="#c0504d", lw=2.2, label="fitted beta over the range")
    ax2.axvspan(f.rank_min, f.rank_max, color="#c0504d", alpha=0.08)
    finite = le[np.isfinite(le)]
    top = max(2.0, f.exponent * 2) if finite.size == 0 else min(max(2.0, 2 * f.exponent), np.nanmax(finite) * 1.1)
    ax2.set_ylim(min(0.0, np.nanmin(finite) if finite.size else 0.0), top)
    ax2.set_xlabel("rank r")
    ax2.set_ylabel("local exponent  -dlog s / dlog r")
    verdict = "power law plausible" if result.plausible else "power law NOT plausible"
    ax2.set_title(verdict + (f"; Gaussian: {'plausible' if ref.plausible else 'not plausible'}" if ref else ""))
    ax2.legend(fontsize=7.5, frameon=False, loc="upper left")
    for a in (ax, ax2):
        a.grid(True, which="major", alpha=0.25)
        a.spines[["top", "right"]].set_visible(False)
    return fig


def parse_bytes(text: str) -> int:
    """``"512M"``, ``"2GB"``, ``"1.5G"``, ``"4096"`` -> bytes (binary units: 1K = 1024)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)i?b?\s*", str(text).lower())
    if not m:
        raise ConfigError(f"cannot read a memory size from {text!r}; write e.g. 512M, 2G or 1048576")
    value = float(m[1]) * 1024 ** " kmgt".index(m[2] or " ")
    if value < 1:
        raise ConfigError(f"a memory size must be at least 1 byte, got {text!r}")
    return int(value)


def _check_finite(block: np.ndarray, name: str, first_row: int) -> None:
    bad = ~np.isfinite(block)
    if bad.any():
        r, c = map(int, np.argwhere(bad)[0])
        raise DataError(f"{name} holds {block[r, c]} at row {first_row + r}, column {c}; "
                        "a spectrum needs finite numbers everywhere (drop or impute those entries)")


def _is_number(cell) -> bool:
    try:
        return math.isfinite(float(cell))
    except (TypeError, ValueError):
        return False

