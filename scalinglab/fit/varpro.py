"""Variable projection: search only the exponents; the coefficients follow from each.

Chinchilla ``E + A N^-alpha + B D^-beta`` is linear in (E, A, B) once the
exponents are given; so is Kaplan's law after raising it to 1/alpha_D
(``L^(1/alpha_D) = N_c^r N^-r + D_c D^-1``, r = alpha_N/alpha_D), and a power
law ``E + A x^-alpha`` in (E, A). For each point of a grid of exponents the
coefficients are solved exactly (Golub & Pereyra 1973), and only the
exponents are searched.

Which inner problem. The fit's objective is the summed Huber loss (delta
1e-3) of *log* residuals, which is not linear in the coefficients. The inner
solve is therefore iteratively reweighted least squares on that objective:
weighted least squares on the relative residuals (to first order the log
residuals), non-negative coefficients by trying every active set (at most
seven for three coefficients), reweighted by the Huber weights min(1,
delta/|r|) of the true log residuals. A plain least-squares projection on the
loss scale would be faster but has a different optimum (it weighs large
losses more and squares outliers), so it would not agree with the multistart.
The few lowest local minima of this profile over the grid are then polished
in all parameters by the estimator's own L-BFGS on the exact objective, so the
result is the same optimum the multistart Huber fit reaches, found from a
handful of starts instead of 4,500.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.core.losses import HUBER_DELTA, huber_objective
from scalinglab.errors import FitError
from scalinglab.fit.parametric import ESTIMATORS, _LawFit

# Exponent axes searched by default (the Hoffmann grid spans 0..2 for both Chinchilla exponents).
DEFAULT_AXES = {
    "power": {"alpha": np.linspace(0.01, 2.5, 80)},
    "chinchilla": {"alpha": np.linspace(0.02, 2.0, 34), "beta": np.linspace(0.02, 2.0, 34)},
    "kaplan": {"alpha_N": np.geomspace(0.01, 1.5, 30), "alpha_D": np.geomspace(0.01, 1.5, 30)},
}
EXPONENTS = {"power": ("alpha",), "chinchilla": ("alpha", "beta"), "kaplan": ("alpha_N", "alpha_D")}
_ROWS = 256          # exponent points per vectorised block ...
_BLOCK = 1 << 17     # ... and at most this many (exponent points x runs): bounded memory
_TINY = 1e-12        # floor for a coefficient the non-negative solve set to zero (its log must exist)


def _design(law: str, exps: np.ndarray, log_inputs, log_y):
    """Basis (S, n, K), target (S, n) and log-residual scale (S,) for exponent rows ``exps``.

    Inputs are centred (log x - median) so the columns are O(1) at the median run.
    """
    if law == "power":
        (lx,) = log_inputs
        cols = [np.ones((exps.shape[0], lx.size)), np.exp(-exps[:, :1] * lx)]
        return np.stack(cols, axis=2), np.broadcast_to(np.exp(log_y), cols[0].shape), np.ones(exps.shape[0])
    if law == "chinchilla":
        ln, ld = log_inputs
        cols = [np.ones((exps.shape[0], ln.size)), np.exp(-exps[:, :1] * ln), np.exp(-exps[:, 1:2] * ld)]
        return np.stack(cols, axis=2), np.broadcast_to(np.exp(log_y), cols[0].shape), np.ones(exps.shape[0])
    if law == "kaplan":
        ln, ld = log_inputs
        a_n, a_d = exps[:, :1], exps[:, 1:2]
        cols = [np.exp(-(a_n / a_d) * ln), np.broadcast_to(np.exp(-ld), (exps.shape[0], ld.size))]
        target = np.exp((log_y - np.median(log_y)) / a_d)     # L^(1/alpha_D), rescaled per row (cancels below)
        return np.stack(cols, axis=2), target, exps[:, 1]
    raise FitError(f"variable projection covers the power, chinchilla and kaplan laws, not {law!r}")


def _theta(law: str, exps: np.ndarray, coefs: np.ndarray, shifts, log_y) -> np.ndarray:
    """Uncentred log-space theta rows from exponents and the centred-basis coefficients."""
    c = np.log(np.maximum(coefs, _TINY))
    if law == "power":
        return np.column_stack([c[:, 0], c[:, 1] + exps[:, 0] * shifts[0], exps[:, 0]])
    if law == "chinchilla":
        return np.column_stack([c[:, 0], c[:, 1] + exps[:, 0] * shifts[0], c[:, 2] + exps[:, 1] * shifts[1],
                                exps[:, 0], exps[:, 1]])
    a_n, a_d = exps[:, 0], exps[:, 1]
    r, m = a_n / a_d, np.median(log_y) / a_d                # undo the target's rescaling by exp(m)
    return np.column_stack([(c[:, 0] + m) / r + shifts[0], c[:, 1] + m + shifts[1], a_n, a_d])


def _nonneg_lstsq(G: np.ndarray, h: np.ndarray) -> np.ndarray:
    """min ||W(Phi c - t)||^2 over c >= 0 from the normal equations G c = h, (S, K, K) and (S, K).

    Tries every active set (2^K - 1 of them; K <= 3) and keeps the feasible one with the lowest
    residual, which is the exact non-negative solution for a convex quadratic.
    """
    S, K = h.shape
    best_c, best_q = np.zeros((S, K)), np.full(S, np.inf)
    scale = np.sqrt(np.maximum(np.einsum("skk->sk", G), 1e-300))  # column scaling keeps the solve conditioned
    Gs, hs = G / scale[:, :, None] / scale[:, None, :], h / scale
    for size in range(1, K + 1):
        for subset in itertools.combinations(range(K), size):
            idx = list(subset)
            sub = Gs[:, idx][:, :, idx] + 1e-14 * np.eye(size)
            with np.errstate(all="ignore"):
                x = np.linalg.solve(sub, hs[:, idx][:, :, None])[:, :, 0]
            ok = np.isfinite(x).all(1) & (x >= 0).all(1)
            q = -np.einsum("sk,sk->s", x, hs[:, idx])          # the quadratic's value, up to a constant
            better = ok & (q < best_q)
            c = np.zeros((S, K))
            c[:, idx] = x
            best_c[better], best_q[better] = c[better], q[better]
    return best_c / scale


def profile(law: str, exps: np.ndarray, log_inputs, log_y, *, weights=None, delta: float = HUBER_DELTA,
            irls_steps: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Huber objective (S,) and log-space theta (S, P) with the coefficients projected out, per exponent row."""
    shifts = [float(np.median(v)) for v in log_inputs]
    centred = [v - m for v, m in zip(log_inputs, shifts)]
    out_f, out_t = [], []
    rows = max(1, min(_ROWS, _BLOCK // max(log_y.size, 1)))
    for s in range(0, exps.shape[0], rows):
        e = exps[s:s + rows]
        Phi, target, res_scale = _design(law, e, centred, log_y)
        X = Phi / target[:, :, None]                           # relative residual: X c - 1
        w = np.ones(target.shape) if weights is None else np.broadcast_to(weights, target.shape).astype(float)
        with np.errstate(all="ignore"):
            for _ in range(irls_steps + 1):
                Xw = X * w[:, :, None]
                coefs = _nonneg_lstsq(Xw.transpose(0, 2, 1) @ X, Xw.sum(1))
                fit = np.einsum("snk,sk->sn", Phi, coefs)
                r = res_scale[:, None] * (np.log(np.maximum(fit, 1e-300)) - np.log(target))
                hub = np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300))
                w = hub if weights is None else hub * weights
        theta = _theta(law, e, coefs, shifts, log_y)
        log_l, _ = ESTIMATORS[law]._log_law(theta, *log_inputs)
        f, _ = huber_objective(log_l, log_y, delta, weights)
        out_f.append(np.where(np.isfinite(f), f, np.inf))
        out_t.append(theta)
    return np.concatenate(out_f), np.concatenate(out_t)


def _local_minima(values: np.ndarray) -> np.ndarray:
    """Flat indices of grid cells no higher than their neighbours along every axis, lowest first."""
    v = np.where(np.isfinite(values), values, np.inf)
    is_min = np.ones(v.shape, dtype=bool)
    for ax in range(v.ndim):
        pad = np.pad(v, [(1, 1) if a == ax else (0, 0) for a in range(v.ndim)], constant_values=np.inf)
        lo = np.take(pad, np.arange(0, v.shape[ax]), axis=ax)
        hi = np.take(pad, np.arange(2, v.shape[ax] + 2), axis=ax)
        is_min &= (v <= lo) & (v <= hi)
    idx = np.flatnonzero(is_min.ravel() & np.isfinite(v.ravel()))
    return idx[np.argsort(v.ravel()[idx])]


def _separable_law(est: _LawFit) -> str:
    """The variable-projection form of ``est``'s law (a frontier fit is a power law in C)."""
    law = "power" if est.law == "frontier" else est.law
    if law not in EXPONENTS:
        raise FitError(f"variable projection covers {sorted(EXPONENTS)}, not {est.law!r}")
    return law


def exponent_grid(est: _LawFit, axes: dict[str, Any] | None = None) -> tuple[np.ndarray, tuple[int, ...]]:
    """Exponent rows (S, m) over the grid and its shape; fixed exponents take their value, tied ones their target's."""
    law = _separable_law(est)
    names = EXPONENTS[law]
    axes = {**DEFAULT_AXES[law], **(axes or {})}
    fixed, tie = dict(est.fixed or {}), dict(est.tie or {})
    free = [k for k in names if k not in fixed and k not in tie]
    mesh = np.meshgrid(*[np.asarray(axes[k], float) for k in free], indexing="ij")
    shape = mesh[0].shape if mesh else (1,)
    cols = {k: m.ravel() for k, m in zip(free, mesh)}
    size = int(np.prod(shape))
    for k in names:
        if k in fixed:
            cols[k] = np.full(size, float(fixed[k]))
    for k, target in tie.items():
        if k in names:
            cols[k] = cols[target]
    return np.column_stack([cols[k] for k in names]), shape


def varpro_starts(est: _LawFit, runs: pd.DataFrame, *, axes: dict[str, Any] | None = None,
                  n_candidates: int = 6, irls_steps: int = 2) -> np.ndarray:
    """Log-space starts at the lowest local minima of the exponent profile, for ``est`` on ``runs``."""
    law = _separable_law(est)
    inputs, y = est._split_xy(runs, None)
    est._validate(inputs, y)
    weights = est._row_weights(runs)
    if est.screen_points and y.size > est.screen_points:    # the profile only places starts: a subsample will do
        idx = np.sort(np.random.default_rng(0).choice(y.size, est.screen_points, replace=False))
        inputs, y = [v[idx] for v in inputs], y[idx]
        weights = None if weights is None else weights[idx]
    log_inputs, log_y = [np.log(v) for v in inputs], np.log(y)
    exps, shape = exponent_grid(est, axes)
    f, theta = profile(law, exps, log_inputs, log_y, weights=weights, delta=est.delta, irls_steps=irls_steps)
    if not np.isfinite(f).any():
        raise FitError(f"variable projection found no finite objective for the {est.law} law on this table; "
                       "check the losses and inputs, or fit with the multistart grid")
    pick = _local_minima(f.reshape(shape))[:n_candidates]
    return est._apply_constraints(theta[pick])


def fit_varpro(runs: pd.DataFrame, law: str = "chinchilla", *, axes: dict[str, Any] | None = None,
               n_candidates: int = 6, irls_steps: int = 2, **settings) -> _LawFit:
    """Fit ``law`` by variable projection: profile the exponents, polish the best few in all parameters.

    Returns the law's usual estimator (``ChinchillaFit`` ...), fitted, with ``starts`` set to the
    polished candidates; ``settings`` go to the estimator (``fixed``, ``tie``, ``x`` ...).
    """
    if law not in EXPONENTS:
        raise FitError(f"variable projection covers {sorted(EXPONENTS)}, not {law!r}")
    est = ESTIMATORS[law](**settings)
    starts = varpro_starts(est, runs, axes=axes, n_candidates=n_candidates, irls_steps=irls_steps)
    est.starts, est.n_polish = starts, max(len(starts), est.n_polish)
    return est.fit(runs)
