"""Chinchilla's Approach 2: IsoFLOP profiles.

For each compute budget, fit a parabola to loss as a function of log N over
the runs trained with that budget, take its minimum as N_opt (D_opt =
C / (6 N_opt)), then fit N_opt ∝ C^a and D_opt ∝ C^b across budgets
(Hoffmann et al. 2022, sec. 3.2, Fig. 3). A minimum outside the sampled range
of N is an extrapolation: it is flagged, and by default left out of the
exponent fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import FitError
from scalinglab.fit.frontier import _loglog


def group_budgets(flops: np.ndarray, *, tolerance: float = 0.05) -> np.ndarray:
    """Label runs by compute budget: sorted log10 FLOPs split wherever a gap exceeds ``tolerance`` decades."""
    lc = np.log10(np.asarray(flops, dtype=float))
    order = np.argsort(lc)
    labels = np.empty(lc.size, dtype=int)
    labels[order] = np.concatenate([[0], np.cumsum(np.diff(lc[order]) > tolerance)])
    return labels


@dataclass(frozen=True, slots=True)
class IsoFlopResult:
    """Per-budget parabola minima (``profiles``) and the exponents fitted across budgets."""

    profiles: pd.DataFrame        # one row per budget, see isoflop_profiles
    a: float                      # N_opt ∝ C^a
    b: float                      # D_opt ∝ C^b
    a_se: float
    b_se: float
    N_coef: float                 # N_opt = N_coef C^a
    D_coef: float
    n_used: int                   # budgets that entered the exponent fit
    run_profile: np.ndarray       # for each run, the row of ``profiles`` (its budget)
    warnings: list[str] = field(default_factory=list)

    def n_opt(self, flops) -> np.ndarray:
        return self.N_coef * np.asarray(flops, dtype=float) ** self.a

    def to_dict(self) -> dict[str, Any]:
        prof = self.profiles.replace({np.nan: None})
        return {"law": "isoflop", "a": self.a, "b": self.b, "a_se": self.a_se, "b_se": self.b_se,
                "N_coef": self.N_coef, "D_coef": self.D_coef, "n_budgets_used": self.n_used,
                "profiles": prof.to_dict(orient="records"), "warnings": list(self.warnings)}


def _profile(ln: np.ndarray, loss: np.ndarray, budget: float) -> dict[str, Any]:
    """The parabola fit of one budget's runs: ``ln`` = log N, ``loss``."""
    row: dict[str, Any] = {"C": budget, "n_runs": int(len(ln)), "N_min_sampled": float(np.exp(ln.min())),
                           "N_max_sampled": float(np.exp(ln.max())), "curvature": np.nan, "N_opt": np.nan,
                           "D_opt": np.nan, "loss_opt": np.nan, "inside": False, "note": ""}
    if len(ln) < 3 or np.unique(ln).size < 3:
        row["note"] = f"only {np.unique(ln).size} distinct model size(s); a parabola needs 3"
        return row
    p2, p1, p0 = np.polyfit(ln, loss, 2)
    row["curvature"] = float(p2)
    if p2 <= 0:
        row["note"] = "no minimum: loss vs log N is not convex at this budget; sample wider model sizes"
        return row
    x_star = -p1 / (2 * p2)
    if not np.isfinite(np.exp(x_star)) or np.exp(x_star) == 0:
        row["note"] = "no usable minimum: the parabola is almost flat at this budget; sample wider model sizes"
        return row
    row["N_opt"] = float(np.exp(x_star))
    row["D_opt"] = float(budget / (6.0 * row["N_opt"]))
    row["loss_opt"] = float(p0 - p1 * p1 / (4 * p2))
    row["inside"] = bool(ln.min() <= x_star <= ln.max())
    if not row["inside"]:
        side = "below the smallest" if x_star < ln.min() else "above the largest"
        row["note"] = f"minimum lies {side} model size sampled (extrapolated); sample further that way"
    return row


def isoflop_profiles(runs: pd.DataFrame, *, budget: str | None = None, tolerance: float = 0.05,
                     include_outside: bool = False) -> IsoFlopResult:
    """Approach 2 on a runs frame with columns N, C, loss (and optionally a budget column).

    ``budget`` names a column holding each run's nominal budget; otherwise runs
    are grouped by FLOPs with :func:`group_budgets`. ``include_outside`` keeps
    extrapolated minima in the exponent fit.
    """
    for col in ("N", "C", "loss"):
        if col not in runs.columns:
            raise FitError(f"IsoFLOP profiles need column {col!r}; columns are: {', '.join(map(str, runs.columns))}")
    if budget is not None:
        if budget not in runs.columns:
            raise FitError(f"budget column {budget!r} is not in the runs table")
        keys = runs[budget].to_numpy(float)
        budgets = {k: float(k) for k in np.unique(keys)}
    else:
        keys = group_budgets(runs["C"].to_numpy(float), tolerance=tolerance)
        lc = np.log(runs["C"].to_numpy(float))
        budgets = {k: float(np.exp(lc[keys == k].mean())) for k in np.unique(keys)}
    order = sorted(budgets, key=budgets.get)
    ln, loss = np.log(runs["N"].to_numpy(float)), runs["loss"].to_numpy(float)
    profiles = pd.DataFrame([_profile(ln[keys == k], loss[keys == k], budgets[k]) for k in order])
    position = {k: i for i, k in enumerate(order)}
    run_profile = np.array([position[k] for k in keys])

    warnings: list[str] = []
    outside = profiles[profiles["N_opt"].notna() & ~profiles["inside"]]
    for _, r in outside.iterrows():
        warnings.append(f"budget {r['C']:.3g} FLOPs: {r['note']}")
    no_min = profiles[profiles["N_opt"].isna()]
    for _, r in no_min.iterrows():
        warnings.append(f"budget {r['C']:.3g} FLOPs ({r['n_runs']} runs): {r['note']}")
    use = profiles["N_opt"].notna() & (profiles["inside"] | include_outside)
    if profiles["N_opt"].notna().sum() == 0:
        raise FitError(f"no IsoFLOP profile has a minimum ({len(profiles)} budget(s) found); each budget needs "
                       ">= 3 model sizes that bracket the optimum. Check the grouping (--budget COLUMN)")
    if use.sum() < 2:
        warnings.append(f"only {int(use.sum())} budget(s) have a minimum inside the sampled range; "
                        "exponents need at least 2 (pass include_outside=True to use extrapolated minima)")
        nan = float("nan")
        return IsoFlopResult(profiles, nan, nan, nan, nan, nan, nan, int(use.sum()), run_profile, warnings)
    used = profiles[use]
    a, ia, a_se = _loglog(used["C"].to_numpy(float), used["N_opt"].to_numpy(float))
    b, ib, b_se = _loglog(used["C"].to_numpy(float), used["D_opt"].to_numpy(float))
    return IsoFlopResult(profiles, a, b, a_se, b_se, float(np.exp(ia)), float(np.exp(ib)), int(use.sum()),
                         run_profile, warnings)
