"""Learning-curve forecasting: predict a run's final loss from its first part.

Kaplan et al. (2020, Sec. 5 and Fig. 4) observe that training curves follow
a power law in steps after a transient, so the early part of a run predicts
its late part. We fit

    L(t) = L_inf + A t^(-alpha)

to the points of a loss curve up to ``fit_fraction`` of its length (t is the
curve's x: steps, examples or tokens), extrapolate to the last point, and,
once the run has ended, compare. The fit starts, lmfit-style, from straight
lines in log-log space: for a grid of offsets L_inf below the smallest
observed loss, log(L - L_inf) is regressed on log t; the best grid point
seeds a bounded least-squares refinement in (L_inf, log A, alpha).

A caution: a run whose LR decays to a floor (cosine) drops faster near its
end than its early power law says, so a forecast from the first half of
such a run tends to be too pessimistic (docs/lm-scaling.md measures by how
much).

Generic: it works on any ``[[x, loss], ...]`` curve (MNIST runs too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from scalinglab.errors import FitError


@dataclass(frozen=True, slots=True)
class CurveFit:
    """L(t) = L_inf + A t^-alpha, fitted to ``n_points`` points with t <= ``t_max``."""

    L_inf: float
    A: float
    alpha: float
    n_points: int
    t_max: float
    rms: float  # root-mean-square residual of the fit (loss units)

    def __call__(self, t) -> np.ndarray:
        return self.L_inf + self.A * np.asarray(t, dtype=float) ** (-self.alpha)


@dataclass(frozen=True, slots=True)
class Forecast:
    """A fit on the first part of a curve and what it says about the end."""

    fit: CurveFit
    t_final: float  # where the forecast is evaluated (the curve's last x)
    predicted: float  # forecast loss at t_final
    actual: float | None  # the curve's last loss, when known
    fit_fraction: float

    @property
    def error(self) -> float | None:
        """predicted - actual (positive: the forecast was too pessimistic)."""
        return None if self.actual is None else self.predicted - self.actual

    @property
    def relative_error(self) -> float | None:
        return None if self.actual is None else (self.predicted - self.actual) / self.actual


def fit_power_law_offset(t, loss, *, grid: int = 64) -> CurveFit:
    """Least-squares fit of L_inf + A t^-alpha, with L_inf in [0, min(loss)) and alpha in (0, 10]."""
    t = np.asarray(t, dtype=float)
    y = np.asarray(loss, dtype=float)
    ok = np.isfinite(t) & np.isfinite(y) & (t > 0)
    t, y = t[ok], y[ok]
    if len(t) < 4:
        raise FitError(f"need at least 4 finite points with t > 0 to fit a power law with offset, got {len(t)}")
    if np.ptp(np.log(t)) <= 0:
        raise FitError("all points share one t; a learning curve needs a range of steps")
    y_min = float(y.min())
    log_t = np.log(t)

    def loglog_start(L_inf: float) -> tuple[float, np.ndarray]:
        z = np.log(np.maximum(y - L_inf, 1e-12))
        slope, intercept = np.polyfit(log_t, z, 1)
        theta = np.array([L_inf, intercept, max(-slope, 1e-4)])
        return float(np.sum((_model(theta, t) - y) ** 2)), theta

    # Offsets from 0 up to just below the smallest loss; keep the best straight-line start.
    candidates = [loglog_start(q * y_min) for q in np.linspace(0.0, 0.995, grid)]
    _, theta0 = min(candidates, key=lambda c: c[0] if math.isfinite(c[0]) else math.inf)
    upper_L = np.nextafter(y_min, -np.inf) if y_min > 0 else 1e-12
    theta0 = np.clip(theta0, [0.0, -50.0, 1e-4], [upper_L, 50.0, 10.0])
    res = least_squares(lambda th: _model(th, t) - y, theta0, x_scale="jac",
                        bounds=([0.0, -50.0, 1e-4], [max(upper_L, 1e-12), 50.0, 10.0]))
    L_inf, log_A, alpha = res.x
    rms = float(np.sqrt(np.mean(res.fun ** 2)))
    return CurveFit(L_inf=float(L_inf), A=float(np.exp(log_A)), alpha=float(alpha), n_points=len(t),
                    t_max=float(t.max()), rms=rms)


def _model(theta: np.ndarray, t: np.ndarray) -> np.ndarray:
    L_inf, log_A, alpha = theta
    return L_inf + np.exp(log_A - alpha * np.log(t))


def forecast_final_loss(curve, *, fit_fraction: float = 0.5, skip_fraction: float = 0.05,
                        t_final: float | None = None) -> Forecast:
    """Fit the curve's points with x in (skip_fraction, fit_fraction] of its last x; forecast the end.

    ``curve`` is ``[[x, loss], ...]`` in increasing x. ``skip_fraction`` drops the
    warmup transient, which no power law describes. ``t_final`` defaults to the
    curve's last x, and ``actual`` is then its last loss.
    """
    if not 0.0 < fit_fraction <= 1.0:
        raise FitError(f"fit_fraction must be in (0, 1], got {fit_fraction!r}")
    if not 0.0 <= skip_fraction < fit_fraction:
        raise FitError(f"skip_fraction must be in [0, fit_fraction), got {skip_fraction!r}")
    arr = np.asarray(curve, dtype=float)
    if arr.ndim != 2 or arr.shape[1] < 2 or len(arr) < 4:
        raise FitError("a learning curve is a list of at least 4 [x, loss] pairs")
    t, y = arr[:, 0], arr[:, 1]
    end = float(t[-1])
    mask = (t > skip_fraction * end) & (t <= fit_fraction * end * (1 + 1e-12))
    fit = fit_power_law_offset(t[mask], y[mask])
    horizon = end if t_final is None else float(t_final)
    actual = float(y[-1]) if t_final is None or horizon == end else None
    return Forecast(fit=fit, t_final=horizon, predicted=float(fit(horizon)), actual=actual,
                    fit_fraction=fit_fraction)
