"""Parametric scaling-law estimators: power law, Chinchilla, Kaplan.

Each estimator fits its law in log space by minimising the summed Huber loss
(delta = 1e-3) of log residuals, from a grid of starts run together by the
batched L-BFGS of :mod:`scalinglab.core.optim`, and keeps the best converged
start -- the recipe of Hoffmann et al. 2022 (App. D.2) as replicated by
Besiroglu et al. 2024.

    >>> fit = ChinchillaFit().fit(runs)          # runs: DataFrame with N, D, loss
    >>> fit.alpha_, fit.params_, fit.compute_optimal(1e24)

Stopping: every start is first screened with scipy L-BFGS-B's own rules
(gradient max-norm <= 1e-5, or relative decrease <= 2.2e-9 * max(|f|, 1));
the best ``n_polish`` are then run on until the gradient test alone is met.
For objectives of ~1e-3, as here, scipy's ftol floor is an absolute 2.2e-9
that halts a refit after a few steps (bootstrap standard errors come out 8x
too small), so the polishing pass and bootstrap refits do not use it.

Constraints: ``fixed={"E": 1.7}`` holds parameters at given values (they
leave the optimisation) and ``tie={"beta": "alpha"}`` makes one parameter the
same as another (shared exponents, as Gadre et al. 2024 fit them). A
``weight`` column in the runs frame weights each run's Huber term (and
multiplies the bootstrap's resample counts).

Estimators follow scikit-learn: keyword-only ``__init__`` that only stores
settings, ``fit`` returns ``self``, fitted attributes end in ``_``.
Convergence problems raise a :class:`ConvergenceWarning` and are kept in
``convergence_warnings_``.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import sys
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from scalinglab.core import laws
from scalinglab.core.losses import HUBER_DELTA, huber_objective
from scalinglab.core.optim import STATUS_MESSAGES, BatchResult, lbfgs
from scalinglab.errors import FitError


class ConvergenceWarning(UserWarning):
    """The optimiser did not converge; the fit may not be at the optimum."""


# Hoffmann et al. 2022 / Besiroglu et al. 2024 initialisation grid (log-space
# Chinchilla parameters): 5 * 5 * 5 * 6 * 6 = 4,500 starts.
HOFFMANN_GRID = {
    "e": np.arange(-1.0, 1.5, 0.5),
    "a": np.arange(0.0, 30.0, 5.0),
    "b": np.arange(0.0, 30.0, 5.0),
    "alpha": np.arange(0.0, 2.5, 0.5),
    "beta": np.arange(0.0, 2.5, 0.5),
}
# A 3^5 = 243-start subset for quick fits and tests.
COARSE_GRID = {
    "e": np.array([-1.0, 0.0, 1.0]),
    "a": np.array([0.0, 10.0, 20.0]),
    "b": np.array([0.0, 10.0, 20.0]),
    "alpha": np.array([0.0, 0.5, 1.0]),
    "beta": np.array([0.0, 0.5, 1.0]),
}

_CHUNK = 128  # rows per vectorised evaluation: (128, n) temporaries stay in cache
_BLOCK = 1 << 18      # at most this many (rows x points) values per block: bounded memory for large tables
_MIN_POINTS = 2048    # ... but never fewer points per block than this
SCREEN_POINTS = 2048  # tables larger than this screen their starts on a subsample of this many runs
N_FINAL = 3           # subsample optima polished on all runs
PROGRESS_POINTS = 50_000  # fits on at least this many runs show a progress bar (after 3 s)
SCIPY_FTOL = 2.220446049250313e-09  # scipy L-BFGS-B's default relative-reduction test (factr 1e7)
MAX_STEP = 100.0    # longest trial step in log-parameter space (e^100 is no longer a plausible change)


@dataclass(frozen=True, slots=True)
class MultiStart:
    """Best point of each group of starts (one group per fit, one per bootstrap resample)."""

    x: np.ndarray                   # (G, P) log-space parameters
    fun: np.ndarray                 # (G,) objective
    converged: np.ndarray           # (G,) met the gradient test
    status: np.ndarray              # (G,) optimiser status code
    n_iter: np.ndarray              # (G,) screening + polishing iterations
    lowest_unconverged: np.ndarray  # (G,) lowest objective of a polished start that did not converge
    screen: BatchResult | None      # the screening pass over all starts, if there was one
    top_x: np.ndarray | None = None  # the lowest polished points of group 0, best first (when asked for)
    screen_best: float = np.nan     # best polished objective on the data the screen ran on
    n_screen_points: int = 0        # runs the starts were screened on


def grid_product(axes: dict[str, Any], order: tuple[str, ...]) -> np.ndarray:
    """All combinations of the axis values, one row per start, columns in ``order``."""
    missing = [k for k in order if k not in axes]
    if missing:
        raise FitError(f"start grid lacks axes {missing}; give values for each of {list(order)}")
    return np.array(list(itertools.product(*(np.atleast_1d(np.asarray(axes[k], float)) for k in order))))


def batched_objective(log_law, log_inputs, log_y, *, delta=HUBER_DELTA, weights=None, row_group=None,
                      progress=None):
    """The summed-Huber objective as a batched function ``fun(theta (k,P), rows (k,))``.

    ``weights`` (G, n) gives per-problem point weights (bootstrap counts);
    ``row_group[row]`` says which weight row problem ``row`` uses. Points are
    taken in blocks of at most ``_BLOCK`` (rows x points) values, so memory
    stays bounded however many runs there are; ``progress(k)`` is called
    after each evaluation of k rows.
    """
    n = log_y.size

    def fun(theta: np.ndarray, rows: np.ndarray):
        f = np.zeros(theta.shape[0])
        g = np.zeros_like(theta)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for s in range(0, theta.shape[0], _CHUNK):
                sl = slice(s, s + _CHUNK)
                step = max(_MIN_POINTS, _BLOCK // len(theta[sl]))
                w_rows = None if weights is None else weights[row_group[rows[sl]]]
                for p0 in range(0, n, step):
                    pts = slice(p0, p0 + step)
                    log_l, vjp = log_law(theta[sl], *[v[pts] for v in log_inputs])
                    w = None if w_rows is None else w_rows[:, pts]
                    fv, psi = huber_objective(log_l, log_y[pts], delta, w)
                    f[sl] += fv
                    g[sl] += vjp(psi)
        if progress is not None:
            progress(theta.shape[0])
        return f, g
    return fun


def best_per_group(result: BatchResult, row_group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Index of the best converged row of each group (best finite row if none converged), and a converged flag."""
    fun = np.where(np.isfinite(result.fun), result.fun, np.inf)
    conv_fun = np.where(result.converged, fun, np.inf)
    best = np.full(n_groups, -1)
    ok = np.zeros(n_groups, dtype=bool)
    order = np.lexsort((conv_fun, row_group))          # by group, then converged objective
    first = np.r_[True, row_group[order][1:] != row_group[order][:-1]]
    best[row_group[order][first]] = order[first]
    ok[row_group[order][first]] = np.isfinite(conv_fun[order][first])
    if not ok.all():                                   # fall back to the best finite row
        order2 = np.lexsort((fun, row_group))
        first2 = np.r_[True, row_group[order2][1:] != row_group[order2][:-1]]
        fb = np.zeros(n_groups, dtype=int)
        fb[row_group[order2][first2]] = order2[first2]
        best[~ok] = fb[~ok]
    return best, ok


class _LawFit:
    """Shared machinery; subclasses describe one law family."""

    law: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]
    theta_names: ClassVar[tuple[str, ...]]
    n_log: ClassVar[int]  # the first n_log parameters are fitted as their logs, the rest (exponents) as is

    def __init__(self, *, delta: float = HUBER_DELTA, starts: Any = None, max_iter: int = 1000,
                 screen_max_iter: int = 200, n_polish: int = 10, memory: int = 10, gtol: float = 1e-5,
                 fixed: dict[str, float] | None = None, tie: dict[str, str] | None = None,
                 screen_points: int | None = SCREEN_POINTS):
        self.delta = delta
        self.starts = starts
        self.max_iter = max_iter
        self.screen_max_iter = screen_max_iter
        self.n_polish = n_polish
        self.memory = memory
        self.gtol = gtol
        self.fixed = fixed
        self.tie = tie
        self.screen_points = screen_points

    # ---- hooks each law provides
    @property
    def input_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    @staticmethod
    def _log_law(theta, *log_inputs):
        raise NotImplementedError

    @classmethod
    def _to_params(cls, theta: np.ndarray) -> np.ndarray:
        """Law parameters (rows) from fitted theta (rows)."""
        return np.column_stack([np.exp(theta[:, :cls.n_log]), theta[:, cls.n_log:]])

    @classmethod
    def _to_theta(cls, params: np.ndarray) -> np.ndarray:
        return np.column_stack([np.log(params[:, :cls.n_log]), params[:, cls.n_log:]])

    @staticmethod
    def _shift_theta(theta: np.ndarray, shifts: list[float], sign: float) -> np.ndarray:
        """theta for inputs divided by exp(shifts) (sign -1), or back (sign +1)."""
        raise NotImplementedError

    def _default_starts(self, log_inputs, log_y) -> np.ndarray:
        raise NotImplementedError

    def _value(self, inputs, params: dict[str, float]) -> np.ndarray:
        raise NotImplementedError

    def derived(self, params: dict[str, np.ndarray], at_flops=()) -> dict[str, np.ndarray]:
        """Quantities computed from the parameters (none by default)."""
        return {}

    def resample_weights(self, counts: np.ndarray, runs: pd.DataFrame) -> np.ndarray:
        """Point weights of each bootstrap resample: its (R, n) run counts times the runs' ``weight`` column."""
        w = self._row_weights(runs)
        return counts.astype(float) if w is None else counts * w

    # ---- fixed and tied parameters
    def _constraints(self) -> tuple[dict[int, float], dict[int, int], list[int]]:
        """Validated constraints as theta indices: {fixed j: theta value}, {tied j: target k}, free indices."""
        names, P = self.param_names, len(self.param_names)
        fixed, tie = dict(self.fixed or {}), dict(self.tie or {})
        for key in (*fixed, *tie, *tie.values()):
            if key not in names:
                raise FitError(f"{self.law} law has no parameter {key!r}; its parameters are {list(names)}")
        fixed_theta = {}
        for key, value in fixed.items():
            j = names.index(key)
            value = float(value)
            if not np.isfinite(value) or (j < self.n_log and value <= 0):
                raise FitError(f"fixed {key} = {value:g} is not allowed: give a finite value"
                               f"{' above 0' if j < self.n_log else ''}")
            fixed_theta[j] = np.log(value) if j < self.n_log else value
        ties = {}
        for key, target in tie.items():
            j, k = names.index(key), names.index(target)
            if j == k or key in fixed or target in fixed or target in tie:
                raise FitError(f"tie {key} -> {target}: the target must be another parameter that is "
                               "neither fixed nor itself tied")
            if (j < self.n_log) != (k < self.n_log):
                raise FitError(f"cannot tie {key} to {target}: one is a coefficient and the other an exponent")
            ties[j] = k
        free = [j for j in range(P) if j not in fixed_theta and j not in ties]
        if not free:
            raise FitError(f"every parameter of the {self.law} law is fixed or tied; leave at least one free")
        return fixed_theta, ties, free

    def _free_map(self, shifts) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Centred theta = psi @ L + l0, where psi are the free columns of centred theta.

        Both the constraints (theta = phi M + c) and the centring shift
        (an affine map with a unit-triangular matrix) are affine, so their
        composition is too; solving for the free centred columns keeps the
        decorrelation that centring buys.
        """
        fixed, ties, free = self._constraints()
        P = len(self.param_names)
        M, c = np.zeros((len(free), P)), np.zeros(P)
        for f, j in enumerate(free):
            M[f, j] = 1.0
        for j, k in ties.items():
            M[free.index(k), j] = 1.0
        for j, v in fixed.items():
            c[j] = v
        t0 = self._shift_theta(np.zeros((1, P)), shifts, -1.0)[0]
        T = self._shift_theta(np.eye(P), shifts, -1.0) - t0
        K, k0 = M @ T, c @ T + t0
        L = np.linalg.solve(K[:, free], K)
        return L, k0 - k0[free] @ L, free

    def _apply_constraints(self, theta: np.ndarray) -> np.ndarray:
        """theta with fixed entries set exactly and tied entries copied from their targets."""
        fixed, ties, _ = self._constraints()
        out = np.array(theta, dtype=float, copy=True)
        for j, v in fixed.items():
            out[:, j] = v
        for j, k in ties.items():
            out[:, j] = out[:, k]
        return out

    @property
    def n_free_params(self) -> int:
        """Parameters the optimiser moves (all minus fixed and tied ones)."""
        return len(self._constraints()[2])

    # ---- input handling
    def _row_weights(self, X) -> np.ndarray | None:
        """The runs table's ``weight`` column, checked, or None."""
        if not isinstance(X, pd.DataFrame) or "weight" not in X.columns:
            return None
        w = pd.to_numeric(X["weight"], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            raise FitError(f"weight has {int(bad.sum())} negative, NaN or non-numeric value(s) (first at row "
                           f"{int(np.flatnonzero(bad)[0])}); weights must be finite and >= 0")
        return w

    def _split_xy(self, X, y) -> tuple[list[np.ndarray], np.ndarray]:
        names = self.input_names
        if isinstance(X, pd.DataFrame):
            missing = [c for c in (*names, *([] if y is not None else ["loss"])) if c not in X.columns]
            if missing:
                raise FitError(f"{self.law} fit needs columns {missing}, which are not in the runs table "
                               f"(columns: {', '.join(map(str, X.columns))})")
            inputs = [X[c].to_numpy(dtype=float) for c in names]
            y = X["loss"].to_numpy(dtype=float) if y is None else np.asarray(y, dtype=float)
        else:
            if y is None:
                raise FitError(f"{self.law} fit: pass the losses as y, or a DataFrame with a 'loss' column")
            X = np.asarray(X, dtype=float)
            X = X.reshape(-1, 1) if X.ndim == 1 else X
            if X.ndim != 2 or X.shape[1] != len(names):
                raise FitError(f"{self.law} fit needs {len(names)} input column(s) {list(names)}; got shape {X.shape}")
            inputs = [X[:, j] for j in range(len(names))]
            y = np.asarray(y, dtype=float)
        return inputs, y

    def _validate(self, inputs, y) -> None:
        n = y.shape[0]
        for name, v in zip((*self.input_names, "loss"), (*inputs, y)):
            if v.shape != (n,):
                raise FitError(f"{name} has {v.shape[0] if v.ndim else 1} values but loss has {n}; give one per run")
            bad = ~np.isfinite(v) | (v <= 0)
            if bad.any():
                raise FitError(f"{name} has {int(bad.sum())} non-positive or NaN value(s) "
                               f"(first at row {int(np.flatnonzero(bad)[0])}); fits take logs, so remove those runs")
        P = self.n_free_params
        if n < P:
            raise FitError(f"{self.law} law has {P} parameters{' left free' if self.fixed or self.tie else ''} "
                           f"but only {n} run(s) were given; "
                           f"add runs (at least {P}, and many more for a trustworthy fit)")
        for name, v in zip((*self.input_names, "loss"), (*inputs, y)):
            if np.ptp(np.log(v)) == 0:
                raise FitError(f"{name} is constant ({v[0]:g} in every run); a {self.law} fit needs runs "
                               f"that vary {name}")

    def _start_array(self, log_inputs, log_y) -> np.ndarray:
        starts = self.starts
        if starts is None:
            return self._default_starts(log_inputs, log_y)
        if isinstance(starts, str):
            return self._named_starts(starts, log_inputs, log_y)
        if isinstance(starts, dict):
            return grid_product(starts, self.theta_names)
        arr = np.atleast_2d(np.asarray(starts, dtype=float))
        if arr.shape[1] != len(self.theta_names):
            raise FitError(f"starts must have {len(self.theta_names)} columns {list(self.theta_names)}, "
                           f"got shape {arr.shape}")
        return arr

    def _named_starts(self, name, log_inputs, log_y) -> np.ndarray:
        if name == "default":
            return self._default_starts(log_inputs, log_y)
        raise FitError(f"unknown start grid {name!r} for the {self.law} law; use 'default', "
                       "a dict of axis values, or an array of log-space starts")

    # ---- fitting
    def _multistart(self, log_inputs, log_y, starts, row_group=None, n_groups=1, weights=None) -> MultiStart:
        """Minimise from every start; return the best point of each group of starts.

        On a table of more than ``screen_points`` runs (one group, several
        starts), the starts are screened and polished on a random subsample
        of that many runs, and only the ``N_FINAL`` best are polished on all
        runs: time grows linearly with the runs, and memory stays bounded
        (the objective takes points in blocks).
        """
        n, m = log_y.size, self.screen_points
        bar = None
        if n >= PROGRESS_POINTS:                    # drawn only once the fit has run for 3 s
            bar = tqdm(desc=f"{self.law} fit on {n:,} runs", unit=" evaluations", delay=3.0, file=sys.stderr,
                       leave=False)
        try:
            if not m or n <= m or n_groups != 1 or len(starts) <= 1:
                return self._multistart_all(log_inputs, log_y, starts, row_group, n_groups, weights, bar=bar)
            idx = np.sort(np.random.default_rng(0).choice(n, m, replace=False))
            sub = self._multistart_all([v[idx] for v in log_inputs], log_y[idx], starts,
                                       weights=None if weights is None else weights[:, idx], top=N_FINAL, bar=bar)
            full = self._multistart_all(log_inputs, log_y, sub.top_x, weights=weights, bar=bar)
        finally:
            if bar is not None:
                bar.close()
        return dataclasses.replace(full, screen=sub.screen, screen_best=float(sub.fun[0]), n_screen_points=m,
                                   n_iter=full.n_iter + sub.n_iter)

    def _multistart_all(self, log_inputs, log_y, starts, row_group=None, n_groups=1, weights=None,
                        top: int = 0, bar=None) -> MultiStart:
        """Minimise from every start on all the given runs; the best point of each group of starts.

        The log inputs are centred on their medians first (theta is shifted to
        match and back), which decorrelates a from alpha and roughly halves
        the iterations. Groups with more than ``n_polish`` starts are screened:
        every start runs with scipy's L-BFGS-B stopping rules (ftol 2.2e-9,
        at most ``screen_max_iter`` iterations); the ``n_polish`` lowest of
        each group are then polished to the gradient test (``gtol``, at most
        ``max_iter`` iterations). The best polished start of each group wins.
        """
        row_group = np.zeros(len(starts), dtype=int) if row_group is None else row_group
        shifts = [float(np.median(v)) for v in log_inputs]
        inputs_c = [v - m for v, m in zip(log_inputs, shifts)]
        theta = self._shift_theta(np.asarray(starts, dtype=float), shifts, -1.0)
        log_law, L, l0 = self._log_law, None, None
        if self.fixed or self.tie:                 # optimise the free centred columns only
            L, l0, free = self._free_map(shifts)
            theta = theta[:, free]
            # starts that differ only in fixed or tied columns are now the same: keep one of each
            _, keep = np.unique(np.column_stack([row_group, theta]), axis=0, return_index=True)
            keep = np.sort(keep)
            theta, row_group = theta[keep], row_group[keep]
            base_law = self._log_law

            def log_law(psi, *inputs):
                log_l, vjp = base_law(psi @ L + l0, *inputs)
                return log_l, lambda g: vjp(g) @ L.T
        screen, iters = None, np.zeros(len(theta), dtype=int)
        progress = None if bar is None else bar.update
        if np.bincount(row_group, minlength=n_groups).max() > self.n_polish:
            fun = batched_objective(log_law, inputs_c, log_y, delta=self.delta,
                                    weights=weights, row_group=row_group, progress=progress)
            screen = lbfgs(fun, theta, memory=self.memory, max_iter=self.screen_max_iter, gtol=self.gtol,
                           ftol=SCIPY_FTOL, max_step=MAX_STEP)
            f = np.where(np.isfinite(screen.fun), screen.fun, np.inf)
            order = np.lexsort((f, row_group))
            first_of_group = np.searchsorted(row_group[order], row_group[order], side="left")
            pick = order[(np.arange(order.size) - first_of_group) < self.n_polish]
            theta, row_group, iters = screen.x[pick], row_group[pick], screen.n_iter[pick]
        fun = batched_objective(log_law, inputs_c, log_y, delta=self.delta, weights=weights,
                                row_group=row_group, progress=progress)
        polish = lbfgs(fun, theta, memory=self.memory, max_iter=self.max_iter, gtol=self.gtol, ftol=0.0,
                       max_step=MAX_STEP)
        best, ok = best_per_group(polish, row_group, n_groups)
        unconverged = np.where(~polish.converged & np.isfinite(polish.fun), polish.fun, np.inf)
        lowest_unconverged = np.full(n_groups, np.inf)
        np.minimum.at(lowest_unconverged, row_group, unconverged)
        def uncentred(rows):
            x = self._shift_theta(polish.x[rows] if L is None else polish.x[rows] @ L + l0, shifts, 1.0)
            return x if L is None else self._apply_constraints(x)   # constraints exactly (no round-off)
        top_x = None
        if top:
            f = np.where(np.isfinite(polish.fun) & (row_group == 0), polish.fun, np.inf)
            order = np.argsort(f, kind="stable")
            top_x = uncentred(order[:top][np.isfinite(f[order[:top]])])
        return MultiStart(x=uncentred(best), fun=polish.fun[best], converged=ok,
                          status=polish.status[best], n_iter=iters[best] + polish.n_iter[best],
                          lowest_unconverged=lowest_unconverged, screen=screen, top_x=top_x)

    def fit(self, X, y=None):
        """Fit to runs: ``X`` a DataFrame with the input columns (and ``loss`` if ``y`` is None), or an array."""
        inputs, y = self._split_xy(X, y)
        self._validate(inputs, y)
        w = self._row_weights(X)
        if w is not None and (w > 0).sum() < self.n_free_params:
            raise FitError(f"only {int((w > 0).sum())} run(s) have a positive weight; the {self.law} law needs "
                           f"at least {self.n_free_params}")
        log_inputs = [np.log(v) for v in inputs]
        log_y = np.log(y)
        starts = self._start_array(log_inputs, log_y)
        res = self._multistart(log_inputs, log_y, starts, weights=None if w is None else w[None])

        self.convergence_warnings_ = []
        if not np.isfinite(res.fun[0]):
            raise FitError(f"{self.law} fit failed: the objective is not finite at any start; "
                           "check that the losses and inputs are on a sensible scale")
        if not res.converged[0]:
            self._warn(f"none of the {len(starts)} starts converged ({STATUS_MESSAGES[int(res.status[0])]}); "
                       f"the lowest objective is reported. Raise max_iter (now {self.max_iter}) or check the "
                       "data for outliers")
        elif res.lowest_unconverged[0] < res.fun[0] - 1e-9 * max(1.0, abs(res.fun[0])):
            self._warn(f"a start that did not converge reached a lower objective ({res.lowest_unconverged[0]:.6g} "
                       f"< {res.fun[0]:.6g}); the fit may not be at the optimum. Raise max_iter "
                       f"(now {self.max_iter})")

        self.theta_ = res.x[0].copy()
        params = self._to_params(self.theta_[None])[0]
        self.params_ = dict(zip(self.param_names, map(float, params)))
        for name, value in self.params_.items():
            setattr(self, name + "_", value)
        self.objective_ = float(res.fun[0])
        self.n_iter_ = int(res.n_iter[0])
        self.converged_ = bool(res.converged[0])
        self.status_ = STATUS_MESSAGES[int(res.status[0])]
        self.n_points_ = int(y.shape[0])
        self.n_starts_ = int(len(starts))
        self.n_screen_points_ = int(res.n_screen_points or y.shape[0])
        if res.screen is not None:
            self.n_converged_starts_ = int(res.screen.converged.sum())
            ref = self.objective_ if not res.n_screen_points else res.screen_best
            near = np.abs(res.screen.fun - ref) <= 1e-6 * max(abs(ref), 1e-12)
            self.n_starts_at_best_ = int(near.sum())
        else:
            self.n_converged_starts_ = int(res.converged.sum())
            self.n_starts_at_best_ = 1
        return self

    def _warn(self, message: str) -> None:
        self.convergence_warnings_.append(message)
        warnings.warn(f"{self.law} fit: {message}", ConvergenceWarning, stacklevel=3)

    # ---- using a fit
    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise FitError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                           "appropriate arguments before using this estimator.")

    def predict(self, X) -> np.ndarray:
        """Predicted loss for runs ``X`` (DataFrame with the input columns, or an array)."""
        self._check_fitted()
        if isinstance(X, pd.DataFrame):
            missing = [c for c in self.input_names if c not in X.columns]
            if missing:
                raise FitError(f"predict needs columns {missing}")
            inputs = [X[c].to_numpy(dtype=float) for c in self.input_names]
        else:
            X = np.asarray(X, dtype=float)
            X = X.reshape(-1, 1) if X.ndim <= 1 else X
            inputs = [X[:, j] for j in range(len(self.input_names))]
        return np.asarray(self._value(inputs, self.params_), dtype=float)

    def params_array(self) -> np.ndarray:
        self._check_fitted()
        return np.array([self.params_[k] for k in self.param_names])

    def get_params(self) -> dict[str, Any]:
        """Constructor settings (as scikit-learn's ``get_params``): the keyword arguments of ``__init__``,
        and of the base classes' ``__init__`` that a ``**settings`` passes on to."""
        keys: list[str] = []
        for klass in type(self).__mro__:
            if "__init__" not in klass.__dict__ or klass is object:
                continue
            params = inspect.signature(klass.__dict__["__init__"]).parameters.values()
            keys += [p.name for p in params if p.kind == p.KEYWORD_ONLY and p.name not in keys]
            if not any(p.kind == p.VAR_KEYWORD for p in params):
                break
        return {k: getattr(self, k) for k in keys}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: ``law``, one key per parameter, derived values and fit diagnostics."""
        self._check_fitted()
        out: dict[str, Any] = {"law": self.law, **self.params_}
        out["inputs"] = list(self.input_names)
        derived = self.derived({k: np.array([v]) for k, v in self.params_.items()})
        if derived:
            out["derived"] = {k: float(v[0]) for k, v in derived.items()}
        fit_info = {"objective": getattr(self, "objective_", None), "n_points": getattr(self, "n_points_", None),
                    "n_starts": getattr(self, "n_starts_", None),
                    "n_converged_starts": getattr(self, "n_converged_starts_", None),
                    "n_iter": getattr(self, "n_iter_", None), "converged": getattr(self, "converged_", None),
                    "status": getattr(self, "status_", None),
                    "warnings": list(getattr(self, "convergence_warnings_", [])),
                    "loss": "huber on log residuals, summed", "delta": self.delta}
        if self.fixed:
            fit_info["fixed"] = {k: float(v) for k, v in self.fixed.items()}
        if self.tie:
            fit_info["tie"] = dict(self.tie)
        out["fit"] = fit_info
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        """Rebuild a fitted estimator from :meth:`to_dict` output (parameters and diagnostics)."""
        if d.get("law") != cls.law:
            raise FitError(f"this is a {d.get('law')!r} fit, not {cls.law!r}")
        missing = [k for k in cls.param_names if k not in d]
        if missing:
            raise FitError(f"saved {cls.law} fit lacks parameters {missing}")
        est = cls(**cls._settings_from_dict(d))
        est.params_ = {k: float(d[k]) for k in cls.param_names}
        for name, value in est.params_.items():
            setattr(est, name + "_", value)
        est.theta_ = cls._to_theta(est.params_array()[None])[0]
        info = d.get("fit", {})
        est.objective_ = info.get("objective")
        est.n_points_ = info.get("n_points")
        est.n_starts_ = info.get("n_starts")
        est.n_converged_starts_ = info.get("n_converged_starts")
        est.n_iter_ = info.get("n_iter")
        est.converged_ = info.get("converged")
        est.status_ = info.get("status")
        est.convergence_warnings_ = list(info.get("warnings", []))
        return est

    @classmethod
    def _settings_from_dict(cls, d: dict[str, Any]) -> dict[str, Any]:
        info = d.get("fit", {})
        out: dict[str, Any] = {"delta": float(info.get("delta", HUBER_DELTA))}
        for key in ("fixed", "tie"):
            if info.get(key):
                out[key] = dict(info[key])
        return out

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            body = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            return f"{type(self).__name__}(fitted: {body})"
        return f"{type(self).__name__}()"


# ------------------------------------------------------------------ power law

class PowerLawFit(_LawFit):
    """L(x) = E + A x^-alpha, fitted as log L = LSE(a - alpha log x, e).

    ``x`` names the input column of a runs DataFrame ("N", "D", "C" or any column).
    """

    law = "power"
    param_names = laws.POWER_PARAMS
    theta_names = ("e", "a", "alpha")
    n_log = 2  # E, A

    def __init__(self, *, x: str = "C", delta: float = HUBER_DELTA, starts: Any = None, max_iter: int = 1000,
                 screen_max_iter: int = 200, n_polish: int = 10, memory: int = 10, gtol: float = 1e-5,
                 fixed: dict[str, float] | None = None, tie: dict[str, str] | None = None,
                 screen_points: int | None = SCREEN_POINTS):
        super().__init__(delta=delta, starts=starts, max_iter=max_iter, screen_max_iter=screen_max_iter,
                         n_polish=n_polish, memory=memory, gtol=gtol, fixed=fixed, tie=tie,
                         screen_points=screen_points)
        self.x = x

    @property
    def input_names(self):
        return (self.x,)

    @staticmethod
    def _log_law(theta, log_x):
        return laws.power_law_log(theta, log_x)

    @staticmethod
    def _shift_theta(theta, shifts, sign):
        out = np.array(theta, dtype=float, copy=True)
        out[:, 1] += sign * out[:, 2] * shifts[0]          # a - alpha log x is unchanged
        return out

    def _default_starts(self, log_inputs, log_y):
        """Data-driven grid: a straight-line fit in log-log space (E ~ 0), then exponents 0.01..2
        crossed with E at fractions of the lowest loss, A set to match the median run."""
        (lx,) = log_inputs
        slope, icpt = np.polyfit(lx, log_y, 1)
        rows = [(np.min(log_y) - 8.0, icpt, -slope)]
        lx_mid, y_mid, y_min = np.median(lx), np.exp(np.median(log_y)), np.exp(np.min(log_y))
        for alpha in (0.01, 0.03, 0.1, 0.3, 1.0, 2.0):
            for frac in (0.05, 0.5, 0.9, 0.99):
                e = np.log(frac * y_min)
                a0 = np.log(max(y_mid - frac * y_min, 1e-3 * y_mid)) + alpha * lx_mid
                rows += [(e, a0 + off, alpha) for off in (-1.0, 0.0, 1.0)]
        return np.array(rows)

    def _value(self, inputs, p):
        return laws.power_law(inputs[0], p["E"], p["A"], p["alpha"])

    @classmethod
    def _settings_from_dict(cls, d):
        s = super()._settings_from_dict(d)
        s["x"] = (d.get("inputs") or ["C"])[0]
        return s


# ----------------------------------------------------------------- Chinchilla

class ChinchillaFit(_LawFit):
    """L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, eq. 2), Approach 3.

    ``starts``: None or "hoffmann" for the 4,500-start grid of Hoffmann et al.
    (alpha, beta in {0, .5, ..., 2}, e in {-1, -.5, ..., 1}, a, b in {0, 5, ..., 25}),
    "coarse" for a 243-start subset, a dict of axis values, or an (S, 5) array of
    log-space starts (e, a, b, alpha, beta).
    """

    law = "chinchilla"
    param_names = laws.CHINCHILLA_PARAMS
    theta_names = ("e", "a", "b", "alpha", "beta")
    n_log = 3  # E, A, B

    @property
    def input_names(self):
        return ("N", "D")

    @staticmethod
    def _log_law(theta, log_n, log_d):
        return laws.chinchilla_log(theta, log_n, log_d)

    @staticmethod
    def _shift_theta(theta, shifts, sign):
        out = np.array(theta, dtype=float, copy=True)
        out[:, 1] += sign * out[:, 3] * shifts[0]          # a - alpha log N is unchanged
        out[:, 2] += sign * out[:, 4] * shifts[1]          # b - beta log D is unchanged
        return out

    def _default_starts(self, log_inputs, log_y):
        return grid_product(HOFFMANN_GRID, self.theta_names)

    def _named_starts(self, name, log_inputs, log_y):
        grids = {"hoffmann": HOFFMANN_GRID, "coarse": COARSE_GRID}
        if name in grids:
            return grid_product(grids[name], self.theta_names)
        return super()._named_starts(name, log_inputs, log_y)

    def _value(self, inputs, p):
        return laws.chinchilla(inputs[0], inputs[1], p["E"], p["A"], p["B"], p["alpha"], p["beta"])

    def derived(self, params, at_flops=()):
        """Approach 3 allocation (Hoffmann et al. 2022, eq. 4): a = beta/(alpha+beta),
        b = alpha/(alpha+beta), G = (alpha A / (beta B))^(1/(alpha+beta));
        N_opt = G (C/6)^a, D_opt = (C/6)^b / G."""
        A, B = np.asarray(params["A"]), np.asarray(params["B"])
        al, be = np.asarray(params["alpha"]), np.asarray(params["beta"])
        with np.errstate(all="ignore"):
            out = {"a": be / (al + be), "b": al / (al + be),
                   "G": (al * A / (be * B)) ** (1.0 / (al + be))}
            for C in np.atleast_1d(at_flops):
                n_opt = out["G"] * (C / 6.0) ** out["a"]
                d_opt = (C / 6.0) ** out["b"] / out["G"]
                out[f"N_opt@{C:.3g}"] = n_opt
                out[f"D_opt@{C:.3g}"] = d_opt
                out[f"tokens_per_param@{C:.3g}"] = d_opt / n_opt
        return out

    @property
    def a_(self) -> float:
        return float(self.derived(self.params_)["a"])

    @property
    def b_(self) -> float:
        return float(self.derived(self.params_)["b"])

    @property
    def G_(self) -> float:
        return float(self.derived(self.params_)["G"])

    def compute_optimal(self, flops) -> pd.DataFrame:
        """Compute-optimal N, D (C = 6 N D), tokens per parameter and predicted loss per budget."""
        self._check_fitted()
        C = np.atleast_1d(np.asarray(flops, dtype=float))
        n_opt = self.G_ * (C / 6.0) ** self.a_
        d_opt = (C / 6.0) ** self.b_ / self.G_
        loss = self.predict(np.column_stack([n_opt, d_opt]))
        return pd.DataFrame({"flops": C, "N_opt": n_opt, "D_opt": d_opt,
                             "tokens_per_param": d_opt / n_opt, "loss": loss})


# --------------------------------------------------------------------- Kaplan

class KaplanFit(_LawFit):
    """L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. 2020, eq. 1.5).

    Fitted in log space with theta = (log N_c, log D_c, alpha_N, alpha_D) from a
    data-driven grid: exponents in {0.03, ..., 0.6} and N_c, D_c placed so each
    bracket term is 0.1x, 1x or 10x half the median loss^(1/alpha_D).
    """

    law = "kaplan"
    param_names = laws.KAPLAN_PARAMS
    theta_names = ("log_N_c", "log_D_c", "alpha_N", "alpha_D")
    n_log = 2  # N_c, D_c

    @property
    def input_names(self):
        return ("N", "D")

    @staticmethod
    def _log_law(theta, log_n, log_d):
        return laws.kaplan_log(theta, log_n, log_d)

    @staticmethod
    def _shift_theta(theta, shifts, sign):
        out = np.array(theta, dtype=float, copy=True)
        out[:, 0] += sign * shifts[0]                      # log N_c - log N is unchanged
        out[:, 1] += sign * shifts[1]
        return out

    def _default_starts(self, log_inputs, log_y):
        log_n, log_d = log_inputs
        m_n, m_d, m_y = np.median(log_n), np.median(log_d), np.median(log_y)
        exps = (0.03, 0.07, 0.15, 0.3, 0.6)
        offs = (-np.log(10.0), 0.0, np.log(10.0))
        rows = []
        for a_n, a_d in itertools.product(exps, exps):
            half = m_y / a_d - np.log(2.0)          # log of each bracket term at the median run
            for o1, o2 in itertools.product(offs, offs):
                rows.append((m_n + (half + o1) * a_d / a_n, m_d + half + o2, a_n, a_d))
        return np.array(rows)

    def _value(self, inputs, p):
        return laws.kaplan(inputs[0], inputs[1], p["N_c"], p["D_c"], p["alpha_N"], p["alpha_D"])


# ---------------------------------------------------------- broken power law

class BrokenPowerLawFit(PowerLawFit):
    """L(x) = E + A x^-alpha (1 + (x/x_b)^(1/f))^(-c f): one break (Caballero et al. 2022, eq. 1).

    The exponent is alpha below the break x_b and alpha + c above it; f sets
    the bend's width in natural-log units of x. Fitted as theta = (e, a,
    log x_b, log f, alpha, c) from a data-driven grid of 36 starts: the break
    at a quarter, half and three quarters of the sampled log-x range, f = 1,
    alpha in {0.05, 0.3}, c in {-0.2, 0.2, 0.6}, E at half or 90% of the
    lowest loss and A matched to the median run.
    """

    law = "broken_power"
    param_names = laws.BROKEN_POWER_PARAMS
    theta_names = ("e", "a", "log_x_b", "log_f", "alpha", "c")
    n_log = 4  # E, A, x_b, f

    @staticmethod
    def _log_law(theta, log_x):
        return laws.broken_power_law_log(theta, log_x)

    @staticmethod
    def _shift_theta(theta, shifts, sign):
        out = np.array(theta, dtype=float, copy=True)
        out[:, 1] += sign * out[:, 4] * shifts[0]          # a - alpha log x is unchanged
        out[:, 2] += sign * shifts[0]                      # log x - log x_b is unchanged
        return out

    def _default_starts(self, log_inputs, log_y):
        (lx,) = log_inputs
        lo, hi = float(lx.min()), float(lx.max())
        lx_mid, y_mid, y_min = np.median(lx), np.exp(np.median(log_y)), np.exp(np.min(log_y))
        rows = []
        for frac_b, f, alpha, c, frac_e in itertools.product((0.25, 0.5, 0.75), (1.0,), (0.05, 0.3),
                                                             (-0.2, 0.2, 0.6), (0.5, 0.9)):
            lxb = lo + frac_b * (hi - lo)
            bend = c * f * np.logaddexp(0.0, (lx_mid - lxb) / f)
            a0 = np.log(max(y_mid - frac_e * y_min, 1e-3 * y_mid)) + alpha * lx_mid + bend
            rows.append((np.log(frac_e * y_min), a0, lxb, np.log(f), alpha, c))
        return np.array(rows)

    def _value(self, inputs, p):
        return laws.broken_power_law(inputs[0], p["E"], p["A"], p["x_b"], p["f"], p["alpha"], p["c"])


def fit_power_law(runs, *, x: str = "C", **settings) -> PowerLawFit:
    """Fit L = E + A x^-alpha to a runs frame; shorthand for ``PowerLawFit(x=x, ...).fit(runs)``."""
    return PowerLawFit(x=x, **settings).fit(runs)


def fit_chinchilla(runs, **settings) -> ChinchillaFit:
    """Fit Chinchilla's L(N, D) to a runs frame (columns N, D, loss); Approach 3."""
    return ChinchillaFit(**settings).fit(runs)


def fit_kaplan(runs, **settings) -> KaplanFit:
    """Fit Kaplan's L(N, D) to a runs frame (columns N, D, loss)."""
    return KaplanFit(**settings).fit(runs)


ESTIMATORS = {cls.law: cls for cls in (PowerLawFit, ChinchillaFit, KaplanFit, BrokenPowerLawFit)}
