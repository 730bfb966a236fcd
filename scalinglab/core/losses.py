"""Robust losses on residuals, each with its derivative.

The fit objective is ``sum_i w_i huber(log L_hat_i - log L_i, delta)`` with
delta = 1e-3, as in Hoffmann et al. 2022 (App. D.2) and Besiroglu et al. 2024.
It is a *sum* over points, not a mean: a mean shrinks the objective by 1/n and
L-BFGS's relative-decrease test (ftol) then stops it early.
"""

from __future__ import annotations

import numpy as np

HUBER_DELTA = 1e-3


def huber(r, delta: float = HUBER_DELTA):
    """Elementwise Huber loss: r^2/2 for |r| <= delta, delta (|r| - delta/2) beyond."""
    r = np.asarray(r, dtype=float)
    abs_r = np.abs(r)
    return np.where(abs_r <= delta, 0.5 * r * r, delta * (abs_r - 0.5 * delta))


def huber_grad(r, delta: float = HUBER_DELTA):
    """d huber / d r: the residual clipped to [-delta, delta]."""
    return np.clip(np.asarray(r, dtype=float), -delta, delta)


def huber_objective(log_pred, log_obs, delta: float = HUBER_DELTA, weights=None):
    """Summed Huber loss of log residuals and its derivative w.r.t. log_pred.

    log_pred is (S, n) (one row per parameter vector); log_obs is (n,);
    weights, if given, is (S, n) or (n,) (bootstrap counts). Returns
    (value (S,), d value / d log_pred (S, n)).

    With c = clip(r, -delta, delta), huber(r) = c (r - c/2) exactly, so the sum
    is two fused dot products and c is the derivative: no branches, few passes.
    """
    r = log_pred - log_obs
    c = np.clip(r, -delta, delta)
    if weights is not None:
        cw = c * weights
        return np.einsum("...j,...j->...", cw, r) - 0.5 * np.einsum("...j,...j->...", cw, c), cw
    return np.einsum("...j,...j->...", c, r) - 0.5 * np.einsum("...j,...j->...", c, c), c
