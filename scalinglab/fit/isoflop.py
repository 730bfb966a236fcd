"""Chinchilla's Approach 2: IsoFLOP profiles.

For each compute budget, locate the minimum of loss against log N over the
runs trained with that budget -- N_opt -- and read D_opt off the runs' own D
at N_opt (log D is interpolated linearly in log N within the budget; C/(6N)
only when the table has no D). Then fit N_opt ∝ C^a and D_opt ∝ C^b across
budgets by least squares in log space (Hoffmann et al. 2022, sec. 3.2,
Fig. 3). b is fitted, not 1 - a: when the FLOPs per token are not 6N the
two differ.

Three ways to locate a budget's minimum (``method``):

* ``parabola``: one parabola in log N over the whole sweep (Hoffmann et al.).
  Loss is not a parabola in log N far from the optimum, so on wide sweeps its
  minimum is biased.
* ``window``: a parabola over the sizes within ``window_decades`` of the
  lowest sampled loss (at least the 3 nearest sizes).
* ``akima``: the minimum of an Akima spline through the mean loss per size
  (Porian et al. 2024, "Resolving Discrepancies in Compute-Optimal Scaling
  of Language Models", locate IsoFLOP minima this way); it cannot leave the
  sampled range, so a minimum at the smallest or largest size is flagged.

A minimum outside the sampled sizes (or at their edge) is an extrapolation:
it is flagged, and by default left out of the exponent fit. Each budget
reports how its sizes sit around its minimum (decades below and above, and
their asymmetry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.interpolate import Akima1DInterpolator
from scipy.optimize import minimize_scalar

from scalinglab.errors import FitError
from scalinglab.fit.frontier import _loglog
from scalinglab.fit.result import round_like

METHODS = ("parabola", "window", "akima")
LN10 = math.log(10.0)


def group_budgets(flops: np.ndarray, *, tolerance: float = 0.05) -> np.ndarray:
    """Label runs by compute budget: sorted log10 FLOPs split wherever a gap exceeds ``tolerance`` decades."""
    lc = np.log10(np.asarray(flops, dtype=float))
    order = np.argsort(lc)
    labels = np.empty(lc.size, dtype=int)
    labels[order] = np.concatenate([[0], np.cumsum(np.diff(lc[order]) > tolerance)])
    return labels


def budget_of_runs(flops: np.ndarray, *, tolerance: float = 0.05) -> np.ndarray:
    """Each run's budget: the geometric mean of its group's FLOPs, rounded to the digits the FLOPs were given with."""
    flops = np.asarray(flops, dtype=float)
    labels = group_budgets(flops, tolerance=tolerance)
    out = np.empty(flops.size)
    for k in np.unique(labels):
        sel = labels == k
        out[sel] = round_like(float(np.exp(np.log(flops[sel]).mean())), flops[sel])
    return out


@dataclass(frozen=True, slots=True)
class IsoFlopResult:
    """Per-budget minima (``profiles``) and the exponents fitted across budgets."""

    profiles: pd.DataFrame        # one row per budget, see isoflop_profiles
    a: float                      # N_opt ∝ C^a
    b: float                      # D_opt ∝ C^b
    a_se: float                   # regression standard errors of the log-log fits
    b_se: float
    N_coef: float                 # N_opt = N_coef C^a
    D_coef: float
    n_used: int                   # budgets that entered the exponent fit
    run_profile: np.ndarray       # for each run, the row of ``profiles`` (its budget)
    warnings: list[str] = field(default_factory=list)
    method: str = "parabola"

    def n_opt(self, flops) -> np.ndarray:
        return self.N_coef * np.asarray(flops, dtype=float) ** self.a

    def d_opt(self, flops) -> np.ndarray:
        return self.D_coef * np.asarray(flops, dtype=float) ** self.b

    def to_dict(self) -> dict[str, Any]:
        prof = self.profiles.replace({np.nan: None})
        return {"law": "isoflop", "a": self.a, "b": self.b, "a_se": self.a_se, "b_se": self.b_se,
                "N_coef": self.N_coef, "D_coef": self.D_coef, "n_budgets_used": self.n_used,
                "method": self.method, "profiles": prof.to_dict(orient="records"), "warnings": list(self.warnings)}


def _parabola_min(ln: np.ndarray, loss: np.ndarray) -> tuple[float, float, float, str]:
    """(log N_opt, loss there, curvature, note) of the least-squares parabola in log N."""
    p2, p1, p0 = np.polyfit(ln, loss, 2)
    if p2 <= 0:
        return math.nan, math.nan, float(p2), ("no minimum: loss vs log N is not convex at this budget; "
                                               "sample wider model sizes")
    x_star = -p1 / (2 * p2)
    if not np.isfinite(np.exp(x_star)) or np.exp(x_star) == 0:
        return math.nan, math.nan, float(p2), ("no usable minimum: the parabola is almost flat at this budget; "
                                               "sample wider model sizes")
    return float(x_star), float(p0 - p1 * p1 / (4 * p2)), float(p2), ""


def _akima_min(ln: np.ndarray, loss: np.ndarray) -> tuple[float, float]:
    """(log N, loss) at the minimum of the Akima spline through the points (x sorted, distinct)."""
    spline = Akima1DInterpolator(ln, loss, method="akima")
    grid = np.linspace(ln[0], ln[-1], 64 * ln.size + 1)
    k = int(np.argmin(spline(grid)))
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    res = minimize_scalar(lambda v: float(spline(v)), bounds=(lo, hi), method="bounded", options={"xatol": 1e-9})
    x = float(res.x) if res.fun <= spline(grid[k]) else float(grid[k])
    return x, float(spline(x))


def _profile(ln: np.ndarray, loss: np.ndarray, budget: float, log_d: np.ndarray | None = None, *,
             method: str = "parabola", window_decades: float = 0.5) -> dict[str, Any]:
    """The minimum of one budget's runs: ``ln`` = log N, ``loss``, ``log_d`` = log D of each run (or None)."""
    sizes = np.unique(ln)
    row: dict[str, Any] = {"C": budget, "n_runs": int(len(ln)), "N_min_sampled": float(np.exp(ln.min())),
                           "N_max_sampled": float(np.exp(ln.max())), "n_sizes_used": 0, "curvature": np.nan,
                           "N_opt": np.nan, "D_opt": np.nan, "loss_opt": np.nan, "inside": False,
                           "decades_below": np.nan, "decades_above": np.nan, "asymmetry": np.nan, "note": ""}
    if sizes.size < 3:
        row["note"] = f"only {sizes.size} distinct model size(s); a minimum needs 3"
        return row
    mean_loss = np.array([loss[ln == s].mean() for s in sizes])
    if method == "akima":
        x_star, l_star = _akima_min(sizes, mean_loss)
        row["n_sizes_used"] = int(sizes.size)
        edge = min(x_star - sizes[0], sizes[-1] - x_star) < 1e-6 * max(1.0, np.ptp(sizes))
        note = ""
        if edge:
            side = "smallest" if x_star - sizes[0] < sizes[-1] - x_star else "largest"
            note = f"minimum at the {side} model size sampled (extrapolated); sample further that way"
    else:
        use = np.ones(ln.size, dtype=bool)
        if method == "window":
            centre = sizes[int(np.argmin(mean_loss))]
            dist = np.abs(sizes - centre)
            near = sizes[dist <= window_decades * LN10 + 1e-12]
            if near.size < 3:
                near = sizes[np.argsort(dist, kind="stable")[:3]]
            use = np.isin(ln, near)
        row["n_sizes_used"] = int(np.unique(ln[use]).size)
        x_star, l_star, row["curvature"], note = _parabola_min(ln[use], loss[use])
        if not np.isfinite(x_star):
            row["note"] = note
            return row
        edge = not (ln.min() <= x_star <= ln.max())
        if edge:
            side = "below the smallest" if x_star < ln.min() else "above the largest"
            note = f"minimum lies {side} model size sampled (extrapolated); sample further that way"
    row["N_opt"] = float(np.exp(x_star))
    row["loss_opt"] = float(l_star)
    row["inside"] = not edge
    row["note"] = note
    if log_d is None:
        row["D_opt"] = float(budget / (6.0 * row["N_opt"]))
    else:                                   # log D is (close to) linear in log N within a budget
        slope, icpt = np.polyfit(ln, log_d, 1)
        row["D_opt"] = float(np.exp(icpt + slope * x_star))
    below, above = (x_star - ln.min()) / LN10, (ln.max() - x_star) / LN10
    row["decades_below"], row["decades_above"] = float(below), float(above)
    row["asymmetry"] = float((above - below) / (above + below)) if above + below > 0 else np.nan
    return row


def isoflop_profiles(runs: pd.DataFrame, *, budget: str | None = None, tolerance: float = 0.05,
                     include_outside: bool = False, method: str = "parabola",
                     window_decades: float = 0.5) -> IsoFlopResult:
    """Approach 2 on a runs frame with columns N, C, loss (and D, and optionally a budget column).

    ``budget`` names a column holding each run's nominal budget; otherwise runs
    are grouped by FLOPs with :func:`budget_of_runs`. ``method`` is one of
    ``METHODS`` (see the module docstring). ``include_outside`` keeps
    extrapolated minima in the exponent fit. Without a D column, D_opt is
    C / (6 N_opt).
    """
    if method not in METHODS:
        raise FitError(f"unknown IsoFLOP method {method!r}; use one of {', '.join(METHODS)}")
    if not (window_decades > 0 and math.isfinite(window_decades)):
        raise FitError(f"the IsoFLOP window must be a positive number of decades, got {window_decades}")
    for col in ("N", "C", "loss"):
        if col not in runs.columns:
            raise FitError(f"IsoFLOP profiles need column {col!r}; columns are: {', '.join(map(str, runs.columns))}")
    if budget is not None:
        if budget not in runs.columns:
            raise FitError(f"budget column {budget!r} is not in the runs table")
        keys = runs[budget].to_numpy(float)
    else:
        keys = budget_of_runs(runs["C"].to_numpy(float), tolerance=tolerance)
    order = np.unique(keys)
    ln, loss = np.log(runs["N"].to_numpy(float)), runs["loss"].to_numpy(float)
    log_d = np.log(runs["D"].to_numpy(float)) if "D" in runs.columns else None
    profiles = pd.DataFrame([_profile(ln[keys == k], loss[keys == k], float(k),
                                      None if log_d is None else log_d[keys == k],
                                      method=method, window_decades=window_decades) for k in order])
    run_profile = np.searchsorted(order, keys)

    warnings: list[str] = []
    for _, r in profiles[profiles["N_opt"].notna() & ~profiles["inside"]].iterrows():
        warnings.append(f"budget {r['C']:.4g} FLOPs: {r['note']}")
    for _, r in profiles[profiles["N_opt"].isna()].iterrows():
        warnings.append(f"budget {r['C']:.4g} FLOPs ({r['n_runs']} runs): {r['note']}")
    use = profiles["N_opt"].notna() & (profiles["inside"] | include_outside)
    if profiles["N_opt"].notna().sum() == 0:
        raise FitError(f"no IsoFLOP profile has a minimum ({len(profiles)} budget(s) found); each budget needs "
                       ">= 3 model sizes that bracket the optimum. Check the grouping (--budget COLUMN)")
    if use.sum() < 2:
        warnings.append(f"only {int(use.sum())} budget(s) have a minimum inside the sampled range; "
                        "exponents need at least 2 (pass include_outside=True to use extrapolated minima)")
        nan = float("nan")
        return IsoFlopResult(profiles, nan, nan, nan, nan, nan, nan, int(use.sum()), run_profile, warnings,
                             method)
    used = profiles[use]
    a, ia, a_se = _loglog(used["C"].to_numpy(float), used["N_opt"].to_numpy(float))
    b, ib, b_se = _loglog(used["C"].to_numpy(float), used["D_opt"].to_numpy(float))
    return IsoFlopResult(profiles, a, b, a_se, b_se, float(np.exp(ia)), float(np.exp(ib)), int(use.sum()),
                         run_profile, warnings, method)
