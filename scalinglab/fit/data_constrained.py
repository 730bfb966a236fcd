"""The data-constrained scaling law of Muennighoff et al. 2023: estimator and allocation.

    fit = DataConstrainedFit().fit(runs)    # runs: DataFrame with N, D, U (unique tokens), loss
    fit.params_                              # E, A, B, alpha, beta, R_D_star, R_N_star

L(N, D, U_D) = E + A/N'^alpha + B/D'^beta with repeated tokens and excess
parameters discounted (the law and its gradient: :func:`scalinglab.core.laws.data_constrained`).
R*_D is the number of repetitions after which repeated data is worth 1 - 1/e
of fresh data (Muennighoff et al. 2023, Sec. 3); R*_N the same for parameters
beyond the compute-optimal size for the unique data. Fitted in log space,
theta = (e, a, b, log R*_D, log R*_N, alpha, beta), with the same Huber
objective, multistart L-BFGS and bootstrap as the other laws
(:mod:`scalinglab.fit.parametric`). R*_D is only identified by runs that
repeat data (D > U), R*_N only by runs larger than N_opt(U_D); the fit warns
when the runs hold neither.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from scalinglab.core import laws
from scalinglab.errors import FitError
from scalinglab.fit.parametric import ChinchillaFit, _LawFit

# The estimator orders its parameters coefficients first (E, A, B, R*_D, R*_N: fitted as logs), then
# exponents, as the base class expects; the core law orders them (E, A, B, alpha, beta, R*_D, R*_N).
# The swap is its own inverse, so it maps theta to the core's order and its gradient back.
_SWAP = [0, 1, 2, 5, 6, 3, 4]

# The released fit (Muennighoff et al. 2023; huggingface/datablations README, "Parametric fit"):
# log-space a, b, e and alpha = beta, with R*_D, R*_N.
MUENNIGHOFF2023 = dict(E=math.exp(0.6254804), A=math.exp(6.255414), B=math.exp(7.3049974),
                       alpha=0.3526596, beta=0.3526596, R_D_star=15.387756, R_N_star=5.309743)


class DataConstrainedFit(_LawFit):
    """L(N, D, U) of Muennighoff et al. 2023 (eqs. 5-7); inputs N, D and ``unique`` (unique tokens U_D).

    ``starts``: None for a data-driven grid (exponents 0.15..0.7, E at fractions
    of the lowest loss, A and B matched to the median run, R*_D in {3, 15, 50},
    R*_N in {2, 5, 20}), a dict of axis values, or an (S, 7) array of log-space starts
    (e, a, b, log R*_D, log R*_N, alpha, beta).
    """

    law = "data-constrained"
    param_names = tuple(laws.DATA_CONSTRAINED_PARAMS[j] for j in _SWAP)
    theta_names = ("e", "a", "b", "log_R_D_star", "log_R_N_star", "alpha", "beta")
    n_log = 5

    def __init__(self, *, unique: str = "U", **settings):
        super().__init__(**settings)
        self.unique = unique

    def _extra_settings(self):
        return ("unique",)

    @property
    def input_names(self):
        return ("N", "D", self.unique)

    def _shift_theta(self, theta, shifts, sign):
        # The base class centres each log input on its median. N and D shifts fold into a and b
        # (as for Chinchilla; N_opt(U_D) moves with them). U must stay in D's units, since
        # only D/U and N_opt(U) enter the law: remember how far its centring differs from D's.
        if sign < 0:
            self._u_offset = shifts[2] - shifts[1]
        out = np.array(theta, dtype=float, copy=True)
        out[:, 1] += sign * out[:, 5] * shifts[0]
        out[:, 2] += sign * out[:, 6] * shifts[1]
        return out

    def _log_law(self, theta, log_n, log_d, log_u):
        log_l, vjp = laws.data_constrained_log(np.atleast_2d(theta)[:, _SWAP], log_n, log_d,
                                               log_u + getattr(self, "_u_offset", 0.0))
        return log_l, lambda g: vjp(g)[:, _SWAP]

    def _default_starts(self, log_inputs, log_y):
        log_n, log_d, _ = log_inputs
        m_n, m_d = np.median(log_n), np.median(log_d)
        y_min, y_med = np.exp(np.min(log_y)), np.exp(np.median(log_y))
        rows = []
        for al, be, frac in itertools.product((0.15, 0.35, 0.7), (0.15, 0.35, 0.7), (0.3, 0.7, 0.95)):
            half = math.log(max(0.5 * (y_med - frac * y_min), 1e-3 * y_med))   # each term: half the excess
            for rd, rn in itertools.product((3.0, 15.0, 50.0), (2.0, 5.0, 20.0)):
                rows.append((math.log(frac * y_min), half + al * m_n, half + be * m_d,
                             math.log(rd), math.log(rn), al, be))
        return np.array(rows)

    def _value(self, inputs, p):
        return laws.data_constrained(*inputs, **p)

    def fit(self, X, y=None):
        super().fit(X, y)
        inputs, _ = self._split_xy(X, y)
        self.n_repeated_ = int((inputs[1] > inputs[2] * (1 + 1e-9)).sum())
        if self.n_repeated_ == 0:
            self._warn("no run repeats data (D <= U everywhere), so R_D_star is not determined by the runs")
        return self

    def derived(self, params, at_flops=()):
        """Chinchilla's allocation exponents a, b and G under these A, B, alpha, beta: the optimum
        while unique data is not the constraint (with it, use :class:`DataConstrainedLaw`)."""
        return ChinchillaFit().derived(params, at_flops)

    @classmethod
    def _settings_from_dict(cls, d):
        s = super()._settings_from_dict(d)
        s["unique"] = (d.get("inputs") or ["N", "D", "U"])[2]
        return s


def fit_data_constrained(runs: pd.DataFrame, **settings) -> DataConstrainedFit:
    """Fit the data-constrained law to a runs frame (columns N, D, U, loss)."""
    return DataConstrainedFit(**settings).fit(runs)


@dataclass(frozen=True, slots=True)
class DataConstrainedLaw:
    """The data-constrained law for allocation: the budget split for ``unique_tokens`` of data.

    With ``unique_tokens`` None the data is unlimited and the optimum is Chinchilla's
    closed form; with it, N minimises L(N, C/(6N), U) (a grid, then Brent's method),
    so past a few epochs compute goes into parameters rather than repetitions
    (Muennighoff et al. 2023, Sec. 4 and Fig. 3).
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    R_D_star: float
    R_N_star: float
    unique_tokens: float | None = None

    def loss(self, N, D, U=None):
        U = self.unique_tokens if U is None else U
        p = {k: getattr(self, k) for k in laws.DATA_CONSTRAINED_PARAMS}
        if U is None:
            return laws.chinchilla(N, D, p["E"], p["A"], p["B"], p["alpha"], p["beta"])
        return laws.data_constrained(np.atleast_1d(N), np.atleast_1d(D), np.atleast_1d(U), **p)

    def loss_at(self, N, D, flops):
        return float(np.asarray(self.loss(N, D)).ravel()[0])

    def with_unique_tokens(self, unique_tokens: float) -> "DataConstrainedLaw":
        if not (unique_tokens > 0 and math.isfinite(unique_tokens)):
            raise FitError(f"unique tokens must be a positive number, got {unique_tokens}")
        return replace(self, unique_tokens=float(unique_tokens))

    def compute_optimal(self, flops):
        s = self.alpha + self.beta
        G = (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / s)
        n_free = G * (flops / 6.0) ** (self.beta / s)
        if self.unique_tokens is None:
            return n_free, flops / (6.0 * n_free)
        grid = np.linspace(math.log(n_free) - 12.0, math.log(n_free) + 12.0, 961)

        def loss_of(log_n):
            N = np.exp(np.atleast_1d(log_n))
            return self.loss(N, flops / (6.0 * N), np.full_like(N, self.unique_tokens))

        k = int(np.argmin(loss_of(grid)))
        res = minimize_scalar(lambda v: float(loss_of(v)[0]), method="bounded",
                              bounds=(grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]),
                              options={"xatol": 1e-10})
        N = float(math.exp(res.x))
        return N, flops / (6.0 * N)

    @classmethod
    def from_fit_dict(cls, d: dict) -> "DataConstrainedLaw":
        """From a saved ``DataConstrainedFit.to_dict()`` (``scalinglab fit --law data-constrained --save``)."""
        try:
            return cls(**{k: float(d[k]) for k in laws.DATA_CONSTRAINED_PARAMS})
        except KeyError as exc:
            raise FitError(f"saved data-constrained fit lacks {exc.args[0]!r}; re-save it with "
                           "`scalinglab fit --save`") from None
