"""Choose a scaling law by how well it extrapolates: a rolling back-test over compute levels.

``compare_laws(runs)`` fits every law the table's columns allow, and for each
k fits it on the runs of the k smallest compute levels and predicts the runs
of the larger ones. A law's score is its mean error over those splits (RMS of
log(predicted / measured), i.e. roughly the relative error); the lowest score
wins, and a law with fewer parameters wins when its score is within a
margin of the best: ``tolerance`` of it, or half the runs' scatter (the
lowest in-sample RMS log error) if that is larger -- smaller differences
cannot be resolved by a few held-out levels. In-sample fit quality is reported beside it but
never used: a law with more parameters always fits the runs it has seen at
least as well, which says nothing about the run not yet trained.

Candidate laws (name: law, columns needed):
  power_C, power_N, power_D   L = E + A x^-alpha            C, N or D
  broken_power_C              one break, Caballero et al. 2022   C
  chinchilla                  Hoffmann et al. 2022, eq. 2   N, D
  kaplan                      Kaplan et al. 2020, eq. 1.5   N, D
  data-constrained            Muennighoff et al. 2023       N, D, U
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from scalinglab.errors import FitError
from scalinglab.fit.isoflop import group_budgets
from scalinglab.fit.parametric import BrokenPowerLawFit, ChinchillaFit, KaplanFit, PowerLawFit, _LawFit
from scalinglab.fit.varpro import fit_varpro


def _data_constrained(**settings) -> _LawFit:
    from scalinglab.fit.data_constrained import DataConstrainedFit
    return DataConstrainedFit(**settings)


# name -> (columns the law needs, estimator factory, variable-projection law or None)
CANDIDATES: dict[str, tuple[tuple[str, ...], Callable[..., _LawFit], str | None]] = {
    "power_C": (("C",), lambda **s: PowerLawFit(x="C", **s), "power"),
    "power_N": (("N",), lambda **s: PowerLawFit(x="N", **s), "power"),
    "power_D": (("D",), lambda **s: PowerLawFit(x="D", **s), "power"),
    "broken_power_C": (("C",), lambda **s: BrokenPowerLawFit(x="C", **s), None),
    "chinchilla": (("N", "D"), ChinchillaFit, "chinchilla"),
    "kaplan": (("N", "D"), KaplanFit, "kaplan"),
    "data-constrained": (("N", "D", "U"), _data_constrained, None),
}


def fit_candidate(name: str, runs: pd.DataFrame, **settings) -> _LawFit:
    """Fit candidate law ``name`` to ``runs`` (by variable projection where it applies: same optimum, faster).

    Polishing is capped at 300 iterations (``max_iter``): a law that does not
    describe the runs often drifts towards a degenerate limit (Kaplan's
    alpha_D -> infinity, a break of zero width) and would otherwise run on to
    1,000 iterations for a fit that scores badly either way.
    """
    if name not in CANDIDATES:
        raise FitError(f"unknown law {name!r}; choose from {', '.join(CANDIDATES)}")
    _, make, vp_law = CANDIDATES[name]
    settings = {"max_iter": 300, **settings}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if vp_law is not None:
            x = {"x": make().x} if vp_law == "power" else {}
            return fit_varpro(runs, vp_law, **{"n_candidates": 3, **x, **settings})
        return make(**settings).fit(runs)


def applicable_laws(runs: pd.DataFrame) -> list[str]:
    """Candidate laws whose input columns the runs table has."""
    return [name for name, (cols, _, _) in CANDIDATES.items() if set(cols) <= set(runs.columns)]


def compute_levels(runs: pd.DataFrame, *, max_levels: int = 10) -> np.ndarray:
    """Compute level (0, 1, ...) of each run: its budget group (``budget`` column, or FLOPs within
    0.05 decades), merged into at most ``max_levels`` equal-width bins in log C when there are more."""
    if "budget" in runs.columns:
        labels = np.unique(runs["budget"].to_numpy(float), return_inverse=True)[1]
        centre = runs["budget"].to_numpy(float)
    else:
        labels, centre = group_budgets(runs["C"].to_numpy(float)), runs["C"].to_numpy(float)
    if labels.max() + 1 <= max_levels:
        return labels
    lc = np.log(centre)
    edges = np.linspace(lc.min(), lc.max(), max_levels + 1)
    return np.unique(np.clip(np.searchsorted(edges, lc, side="right") - 1, 0, max_levels - 1),
                     return_inverse=True)[1]


def _errors(pred: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    log_err = np.log(pred) - np.log(measured)
    return {"rmse_log": float(np.sqrt(np.mean(log_err ** 2))),
            "mean_abs_rel_error": float(np.mean(np.abs(pred / measured - 1))),
            "mean_rel_error": float(np.mean(pred / measured - 1))}


@dataclass(frozen=True, slots=True)
class LawComparison:
    """Per-law back-test scores, the per-split errors behind them, the chosen law and why."""

    table: pd.DataFrame           # one row per law (index): n_params, n_splits, scores, in-sample error, note
    errors: pd.DataFrame          # one row per (law, split): train levels, n_train, n_test, errors, status
    chosen: str
    reason: str
    fits: dict[str, _LawFit]      # every law fitted on all runs
    metric: str

    @property
    def fit(self) -> _LawFit:
        """The chosen law fitted on all runs."""
        return self.fits[self.chosen]

    def to_dict(self) -> dict[str, Any]:
        table = self.table.reset_index().replace({np.nan: None})
        return {"chosen": self.chosen, "reason": self.reason, "metric": self.metric,
                "laws": table.to_dict(orient="records"),
                "splits": self.errors.replace({np.nan: None}).to_dict(orient="records"),
                "fit": self.fit.to_dict()}


def compare_laws(runs: pd.DataFrame, laws: list[str] | None = None, *, min_train_levels: int = 3,
                 horizon: int | None = None, max_levels: int = 10, metric: str = "rmse_log",
                 tolerance: float = 0.05) -> LawComparison:
    """Score candidate laws by a rolling back-test over compute levels and choose one.

    For k = ``min_train_levels`` .. (levels - 1), each law is fitted on the
    runs of the k smallest compute levels and predicts the runs of the next
    ``horizon`` levels (all larger ones when None). A law must fit on at
    least half of the splits to be chosen; scores are means over the splits
    where every such law fitted, so all are judged on the same predictions.
    """
    if metric not in ("rmse_log", "mean_abs_rel_error"):
        raise FitError(f"metric must be 'rmse_log' or 'mean_abs_rel_error', got {metric!r}")
    runs = runs.reset_index(drop=True)
    if "C" not in runs.columns and {"N", "D"} <= set(runs.columns):
        runs = runs.assign(C=6.0 * runs["N"] * runs["D"])
    if "C" not in runs.columns and "budget" not in runs.columns:
        raise FitError("a back-test over compute levels needs C (or N and D, or a budget column)")
    names = applicable_laws(runs) if laws is None else list(laws)
    for name in names:
        if name not in CANDIDATES:
            raise FitError(f"unknown law {name!r}; choose from {', '.join(CANDIDATES)}")
        missing = [c for c in CANDIDATES[name][0] if c not in runs.columns]
        if missing:
            raise FitError(f"law {name} needs columns {missing}, which the runs table lacks")
    if not names:
        raise FitError("no candidate law applies: the table needs a C, N or D column besides loss")
    levels = compute_levels(runs, max_levels=max_levels)
    n_levels = int(levels.max()) + 1
    if n_levels <= min_train_levels:
        raise FitError(f"only {n_levels} compute level(s); a rolling back-test needs more than "
                       f"{min_train_levels} (lower min_train_levels, or add runs at larger budgets)")

    rows = []
    for k in range(min_train_levels, n_levels):
        train = runs[levels < k]
        hi = n_levels if horizon is None else min(n_levels, k + horizon)
        test = runs[(levels >= k) & (levels < hi)]
        for name in names:
            row = {"law": name, "train_levels": k, "max_train_C": float(train["C"].max()) if "C" in train else np.nan,
                   "n_train": len(train), "n_test": len(test)}
            try:
                fit = fit_candidate(name, train)
                pred = fit.predict(test)
                if not np.all(np.isfinite(pred) & (pred > 0)):
                    raise FitError("non-finite prediction")
                row.update(_errors(pred, test["loss"].to_numpy(float)), status="ok")
            except (FitError, np.linalg.LinAlgError, ValueError) as exc:
                row.update(rmse_log=np.nan, mean_abs_rel_error=np.nan, mean_rel_error=np.nan,
                           status=f"failed: {exc}")
            rows.append(row)
    errors = pd.DataFrame(rows)

    ok = errors.pivot(index="train_levels", columns="law", values="status").eq("ok")
    n_splits = ok.shape[0]
    eligible = [n for n in names if ok[n].sum() >= max(1, (n_splits + 1) // 2)]
    if not eligible:
        raise FitError("no law could be fitted on at least half of the back-test splits; add runs or "
                       "lower min_train_levels")
    common = ok[eligible].all(axis=1)
    if not common.any():
        raise FitError("no back-test split on which every eligible law fitted; add runs")
    scores = errors[errors["train_levels"].isin(ok.index[common])].groupby("law")[
        ["rmse_log", "mean_abs_rel_error", "mean_rel_error"]].mean()
    last = errors[errors["train_levels"] == ok.index[common].max()].set_index("law")[metric]

    fits, in_sample, n_params, notes = {}, {}, {}, {}
    for name in names:
        try:
            fits[name] = fit_candidate(name, runs)
            in_sample[name] = _errors(fits[name].predict(runs), runs["loss"].to_numpy(float))["rmse_log"]
            n_params[name] = fits[name].n_free_params
        except (FitError, np.linalg.LinAlgError, ValueError) as exc:
            in_sample[name], n_params[name], notes[name] = np.nan, len(CANDIDATES[name][1]().param_names), str(exc)
    for name in names:
        if name not in eligible:
            notes[name] = f"fitted on only {int(ok[name].sum())} of {n_splits} splits; not eligible"
    table = pd.DataFrame({
        "n_params": pd.Series(n_params),
        "n_splits": ok.sum().astype(int),
        "score": scores[metric].reindex(names) if metric in scores else np.nan,
        "mean_rmse_log": scores["rmse_log"].reindex(names),
        "mean_abs_rel_error": scores["mean_abs_rel_error"].reindex(names),
        "mean_rel_error": scores["mean_rel_error"].reindex(names),
        "last_split_error": last.reindex(names),
        "in_sample_rmse_log": pd.Series(in_sample),
        "eligible": pd.Series({n: n in eligible and n in fits for n in names}),
        "note": pd.Series({n: notes.get(n, "") for n in names}),
    }).loc[names]
    table.index.name = "law"

    cand = table[table["eligible"]]
    if cand.empty:
        raise FitError("every eligible law failed to fit on all runs; check the table")
    best = cand["score"].idxmin()
    # Differences below half the runs' own scatter (estimated by the best in-sample RMS log error)
    # are not resolvable by a few held-out levels: the simpler law wins them.
    noise = float(np.nanmin(cand["in_sample_rmse_log"]))
    margin = max(tolerance * cand.loc[best, "score"], 0.5 * noise)
    near = cand[cand["score"] <= cand.loc[best, "score"] + margin]
    chosen = near.sort_values(["n_params", "score"]).index[0]
    others = cand.drop(index=chosen).sort_values("score")
    label = "RMS log error" if metric == "rmse_log" else "mean |relative error|"
    reason = (f"{chosen} has {'the lowest' if chosen == best else 'fewer parameters and a near-lowest'} mean "
              f"back-test {label} ({cand.loc[chosen, 'score']:.3g}) over {int(common.sum())} rolling split(s) "
              f"(fit on the k smallest of {n_levels} compute levels, predict the larger ones)")
    if chosen != best:
        reason += (f"; {best} scored {cand.loc[best, 'score']:.3g}, closer than the margin {margin:.2g} "
                   f"(max of {tolerance:.0%} and half the in-sample scatter {noise:.2g})")
    if len(others):
        runner = others.index[0]
        reason += f"; next: {runner} ({others.loc[runner, 'score']:.3g})"
    in_best = table["in_sample_rmse_log"].idxmin() if table["in_sample_rmse_log"].notna().any() else chosen
    if in_best != chosen:
        reason += (f". In-sample, {in_best} fits best ({table.loc[in_best, 'in_sample_rmse_log']:.3g} vs "
                   f"{table.loc[chosen, 'in_sample_rmse_log']:.3g}), which is not used to choose")
    return LawComparison(table=table, errors=errors, chosen=chosen, reason=reason, fits=fits, metric=metric)


# ------------------------------------------------------------- IsoFLOP bias

def isoflop_bias(iso, runs: pd.DataFrame, fit: _LawFit | None = None, *, level: float = 0.95) -> pd.DataFrame:
    """Per IsoFLOP budget: how far the parabola's minimum is pushed by where the sizes were sampled.

    A budget's loss against log N is not a parabola: away from the minimum it
    rises faster on one side (the D^-beta term at small N, N^-alpha at large
    N), so a parabola through sizes that sit off-centre, or spread wide, puts
    its minimum off the true one. The bias is estimated on a smooth model of
    the surface -- ``fit``, a Chinchilla law (by default fitted to ``runs`` by
    variable projection): the parabola is fitted to the model's losses at the
    budget's own sampled sizes, and its minimum compared with the model's
    (Hoffmann et al. 2022, eq. 4). A budget is flagged where |bias| exceeds the
    half-width of the ``level`` interval of its own minimum (delta method on
    the parabola's coefficients, with the runs' scatter about the smooth model
    as the noise -- the parabola's own residuals would count its misfit as
    noise -- and a t quantile with n - 3 degrees of freedom).

    ``iso`` is the :class:`~scalinglab.fit.isoflop.IsoFlopResult` of ``runs``
    (its ``profiles`` give width and asymmetry, ``run_profile`` each run's budget).
    Bias and half-width are in decades of N.
    """
    from scipy import stats

    runs = runs.reset_index(drop=True)
    if "D" not in runs.columns:
        runs = runs.assign(D=runs["C"] / (6.0 * runs["N"]))
    if fit is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_varpro(runs, "chinchilla")
    profiles = iso.profiles
    ln_all, loss_all = np.log(runs["N"].to_numpy(float)), runs["loss"].to_numpy(float)
    sigma2 = float(np.sum((loss_all - fit.predict(runs)) ** 2) / max(len(runs) - fit.n_free_params, 1))
    out = []
    for i, prof in profiles.iterrows():
        sel = np.asarray(iso.run_profile) == i
        ln, loss, C = ln_all[sel], loss_all[sel], float(prof["C"])
        row = {"C": C, "width_decades": prof["decades_below"] + prof["decades_above"],
               "asymmetry": prof["asymmetry"], "bias_decades": np.nan, "half_width_decades": np.nan,
               "flag": False, "note": ""}
        if not np.isfinite(prof["N_opt"]) or np.unique(ln).size < 4:
            row["note"] = "no minimum, or fewer than 4 sizes: no interval to compare with"
            out.append(row)
            continue
        model = fit.predict(np.column_stack([np.exp(ln), C / (6.0 * np.exp(ln))]))
        p2, p1, _ = np.polyfit(ln, model, 2)
        n_opt_model = float(fit.compute_optimal([C])["N_opt"].iloc[0])
        bias = (-p1 / (2 * p2) - np.log(n_opt_model)) / np.log(10.0)
        coef, cov = np.polyfit(ln, loss, 2, cov="unscaled")
        cov = cov * sigma2                      # the runs' scatter about the smooth surface, not the parabola's
        q2, q1 = coef[0], coef[1]
        grad = np.array([q1 / (2 * q2 ** 2), -1.0 / (2 * q2)])          # d vertex / d (p2, p1)
        se = float(np.sqrt(grad @ cov[:2, :2] @ grad))
        half = stats.t.ppf(0.5 + level / 2, ln.size - 3) * se / np.log(10.0)
        row.update(bias_decades=float(bias), half_width_decades=float(half), flag=bool(abs(bias) > half))
        if row["flag"]:
            direction = "above" if bias > 0 else "below"
            row["note"] = (f"the sampled sizes (width {row['width_decades']:.2g} decades, asymmetry "
                           f"{prof['asymmetry']:+.2f}) put the parabola's minimum {abs(bias):.2g} decades "
                           f"{direction} the surface's, more than the {level:.0%} interval ({half:.2g}); "
                           "centre the sizes on the minimum or narrow them")
        out.append(row)
    return pd.DataFrame(out)
