"""The compute-efficient frontier and Chinchilla's Approach 1.

The frontier of a set of runs is the lowest loss reached at or below each
compute level: sort runs by compute and keep each run that beats every run
before it (a running minimum). Its power-law fit L = E + A C^-alpha is the
loss-vs-compute law. Approach 1 of Hoffmann et al. 2022 (sec. 3.1) reads off
the N and D of the runs on that frontier and fits N_opt ∝ C^a, D_opt ∝ C^b.
Hoffmann et al. take the envelope over intermediate checkpoints; with one
final loss per run the frontier runs play that role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import FitError
from scalinglab.fit.parametric import PowerLawFit


def compute_frontier(runs: pd.DataFrame, *, compute: str = "C", loss: str = "loss") -> pd.DataFrame:
    """Rows of ``runs`` on the compute-efficient frontier, sorted by compute."""
    for col in (compute, loss):
        if col not in runs.columns:
            raise FitError(f"the frontier needs a {col!r} column; columns are: {', '.join(map(str, runs.columns))}")
    if len(runs) == 0:
        raise FitError("no runs: the frontier of an empty table is empty")
    c, l = runs[compute].to_numpy(float), runs[loss].to_numpy(float)
    order = np.lexsort((l, c))                       # by compute, ties by loss
    keep = frontier_mask(c[order], l[order])
    return runs.iloc[order[keep]].reset_index(drop=True)


def frontier_mask(c_sorted: np.ndarray, l_sorted: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """Which points (sorted by compute) lie on the frontier; batched over rows of ``present`` (R, n).

    A point is on the frontier when it is present and its loss is below the
    running minimum of all present points before it.
    """
    if present is None:
        present = np.ones((1, l_sorted.size), dtype=bool)
        squeeze = True
    else:
        squeeze = False
    masked = np.where(present, l_sorted, np.inf)
    best_before = np.minimum.accumulate(np.concatenate([np.full((masked.shape[0], 1), np.inf), masked[:, :-1]], 1), 1)
    keep = present & (masked < best_before)
    return keep[0] if squeeze else keep


def _loglog(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """OLS of log y on log x: (slope, intercept, standard error of the slope)."""
    lx, ly = np.log(x), np.log(y)
    slope, icpt = np.polyfit(lx, ly, 1)
    if lx.size > 2:
        resid = ly - (slope * lx + icpt)
        se = float(np.sqrt(resid @ resid / (lx.size - 2) / np.sum((lx - lx.mean()) ** 2)))
    else:
        se = float("nan")
    return float(slope), float(icpt), se


@dataclass(frozen=True, slots=True)
class Approach1Result:
    """N_opt = N_coef C^a and D_opt = D_coef C^b fitted to the runs that are compute-optimal."""

    points: pd.DataFrame   # C, N_opt, D_opt, loss, run: the runs used
    a: float
    b: float
    a_se: float
    b_se: float
    N_coef: float
    D_coef: float

    def n_opt(self, flops) -> np.ndarray:
        return self.N_coef * np.asarray(flops, dtype=float) ** self.a

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "a_se": self.a_se, "b_se": self.b_se,
                "N_coef": self.N_coef, "D_coef": self.D_coef, "n_points": int(len(self.points))}


def approach1(runs: pd.DataFrame, *, bins: int | None = None) -> Approach1Result:
    """Hoffmann et al.'s Approach 1: exponents of N_opt(C) and D_opt(C) from the best run per compute level.

    ``bins=None`` uses the frontier runs; ``bins=k`` splits log-compute into k
    equal bins and takes the lowest-loss run in each.
    """
    for col in ("N", "D", "C", "loss"):
        if col not in runs.columns:
            raise FitError(f"Approach 1 needs column {col!r} (parameters, tokens, FLOPs, loss)")
    if bins is None:
        best = compute_frontier(runs)
    else:
        lc = np.log(runs["C"].to_numpy(float))
        edges = np.linspace(lc.min(), lc.max(), bins + 1)
        which = np.clip(np.searchsorted(edges, lc, side="right") - 1, 0, bins - 1)
        best = runs.assign(_bin=which).sort_values("loss").groupby("_bin").head(1).sort_values("C")
        best = best.drop(columns="_bin").reset_index(drop=True)
    if len(best) < 2 or np.ptp(np.log(best["C"].to_numpy(float))) == 0:
        raise FitError(f"Approach 1 found {len(best)} compute-optimal run(s) at distinct budgets; it needs at "
                       "least 2 (3 for standard errors): add runs at more compute budgets")
    a, ia, a_se = _loglog(best["C"].to_numpy(float), best["N"].to_numpy(float))
    b, ib, b_se = _loglog(best["C"].to_numpy(float), best["D"].to_numpy(float))
    points = pd.DataFrame({"C": best["C"], "N_opt": best["N"], "D_opt": best["D"],
                           "loss": best["loss"], "run": best.get("run", best.index.astype(str))})
    return Approach1Result(points=points, a=a, b=b, a_se=a_se, b_se=b_se, N_coef=float(np.exp(ia)),
                           D_coef=float(np.exp(ib)))


class FrontierFit(PowerLawFit):
    """L = E + A C^-alpha fitted to the compute-efficient frontier of a set of runs.

    Fitted attributes: those of :class:`PowerLawFit`, plus ``frontier_`` (the
    frontier runs) and ``approach1_`` (an :class:`Approach1Result` when the
    runs carry N and D, else None).
    """

    law = "frontier"

    def __init__(self, **settings):
        settings.pop("x", None)                  # always C: the frontier is loss against compute
        super().__init__(x="C", **settings)

    def fit(self, X, y=None):
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame({"C": np.asarray(X, dtype=float), "loss": np.asarray(y, dtype=float)})
        elif y is not None:
            X = X.assign(loss=np.asarray(y, dtype=float))
        frontier = compute_frontier(X)
        if len(frontier) < 3:
            raise FitError(f"only {len(frontier)} run(s) lie on the compute frontier; L = E + A C^-alpha has "
                           "3 parameters: add runs at more compute budgets")
        super().fit(frontier)
        self.frontier_ = frontier
        self.n_runs_ = int(len(X))
        has_nd = {"N", "D"} <= set(X.columns)
        self.approach1_ = approach1(X) if has_nd and len(frontier) >= 2 else None
        return self

    def resample_weights(self, counts: np.ndarray, runs: pd.DataFrame) -> np.ndarray:
        """Per-resample weights over ``runs``: 1 for runs on that resample's frontier, else 0."""
        c, l = runs["C"].to_numpy(float), runs["loss"].to_numpy(float)
        order = np.lexsort((l, c))
        keep_sorted = frontier_mask(c[order], l[order], counts[:, order] > 0)
        w = np.zeros(counts.shape, dtype=float)
        w[:, order] = keep_sorted
        return w

    def to_dict(self):
        out = super().to_dict()
        if getattr(self, "approach1_", None) is not None:
            out["approach1"] = self.approach1_.to_dict()
        if hasattr(self, "frontier_"):
            out["frontier"] = {"C": self.frontier_["C"].tolist(), "loss": self.frontier_["loss"].tolist()}
        return out

    @classmethod
    def from_dict(cls, d):
        est = super().from_dict(d)
        a1 = d.get("approach1")
        est.approach1_ = None if a1 is None else Approach1Result(
            points=pd.DataFrame(), a=a1["a"], b=a1["b"], a_se=a1.get("a_se", float("nan")),
            b_se=a1.get("b_se", float("nan")), N_coef=a1["N_coef"], D_coef=a1["D_coef"])
        return est

    @classmethod
    def _settings_from_dict(cls, d):
        settings = super()._settings_from_dict(d)
        settings.pop("x", None)
        return settings


def fit_frontier(runs: pd.DataFrame, **settings) -> FrontierFit:
    """Fit L = E + A C^-alpha to the compute-efficient frontier of ``runs``."""
    return FrontierFit(**settings).fit(runs)
