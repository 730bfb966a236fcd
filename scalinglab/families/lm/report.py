"""The language-model study's own report figures: Kaplan's non-embedding IsoFLOP view, noise scale, forecasts.

``report_extras(study, analysis)`` is the family's report hook (see
:mod:`scalinglab.report.build`). Besides the generic figures, the LM report shows

* **Approach 2 with non-embedding N**: the same ``fit_law(..., "isoflop")``
  with N = ``params_non_embedding`` (``scalinglab fit --law isoflop --n
  params_non_embedding``), since the choice of count moves the exponent
  (Kaplan et al. 2020 count non-embedding parameters, Hoffmann et al. 2022
  all; Pearce & Song 2024; Porian et al. 2024);
* **critical batch size**: every run's B_simple per curve segment against its
  training loss, with the power law B ∝ L^slope (Kaplan et al. 2020, Sec. 5.1,
  eq. 5.2: B_crit ∝ L^(-1/alpha_B), alpha_B ≈ 0.21);
* **forecasts**: each run's final training loss predicted from the first half
  of its curve (:func:`scalinglab.fit.forecast.forecast_final_loss`);
* a transfer study (:mod:`scalinglab.families.lm.transfer`) adds **transfer**
  (D_T per fine-tune and the fit D_T = k D_F^alpha N^beta beside Hernandez et
  al. 2021) and **two distributions** (each run's loss on the other corpus).

Reads only the runs' stored metrics: no training (the transfer figures import
:mod:`scalinglab.families.lm.transfer`, and with it torch, only for a transfer study).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalinglab.errors import DataError, FitError
from scalinglab.report.build import Missing
from scalinglab.report.chart import D_COLOR, FIT_COLOR, N_COLOR, Chart, Panel, Series, Table, palette, values
from scalinglab.report.figures import compute_grid, isoflop_minima
from scalinglab.studies.analysis import fmt_interval, fmt_num

NON_EMBEDDING = "params_non_embedding"  # the metric the LM family stores with every run
KAPLAN_ALPHA_B = 0.21  # Kaplan et al. 2020, eq. 5.2 / Fig. 10: B_crit ∝ L^(-1/0.21) = L^-4.8


# ===================================================================== Approach 2, non-embedding N

@dataclass(frozen=True)
class CountsFigure:
    """IsoFLOP minima and exponents with total and with non-embedding parameter counts, per group."""

    fits: list[tuple[str, object | None, object | None]]  # label, isoflop fit (total N), fit (non-embedding N)
    notes: tuple[str, ...] = ()
    key: str = "isoflop-counts"
    findings: tuple[str, ...] = field(default=())

    def chart(self) -> Chart:
        panels, rows = [], []
        for label, total, ne in self.fits:
            series = []
            for what, fit, marker, color in (("total N", total, "o", N_COLOR), ("non-embedding N", ne, "s", D_COLOR)):
                if fit is None:
                    continue
                inside = isoflop_minima(fit)
                series.append(Series(f"N_opt, {what}", values(inside["C"]), values(inside["N_opt"]), color=color,
                                     marker=marker, tips=tuple(f"C ≈ {fmt_num(r['C'])}\nN_opt ({what}) = "
                                                               f"{fmt_num(r['N_opt'])}" for _, r in inside.iterrows())))
                if np.isfinite(fit.value("a")) and len(inside):
                    grid = compute_grid(inside["C"], 40)
                    series.append(Series(f"{what}: a = {fmt_interval(fit.intervals['a'])}", values(grid),
                                         values(fit.params["N_coef"] * grid ** fit.value("a")), kind="line",
                                         color=color, size=1.4))
                rows.append((label, what, fmt_interval(fit.intervals["a"]), fmt_interval(fit.intervals["b"]),
                             str(int(len(inside)))))
            panels.append(Panel(f"Optimal size per budget ({label})" if len(self.fits) > 1 else
                                "Optimal size per budget", "training compute C (FLOPs)", "N_opt (parameters)",
                                tuple(series)))
        return Chart(self.key, "Approach 2 with total and non-embedding parameters",
                     "Does counting embeddings change how model size should grow with compute?", tuple(panels),
                     columns=min(len(panels), 2), notes=("The same IsoFLOP fit (`scalinglab fit --law isoflop`), "
                     "once with N = all parameters (Hoffmann et al. 2022) and once with N = non-embedding "
                     "parameters (Kaplan et al. 2020, `--n params_non_embedding`). At small sizes the embeddings "
                     "are a large share of N, so the two exponents differ (Pearce & Song 2024).", *self.notes),
                     tables=(Table("IsoFLOP exponents by parameter count", ("group", "N counts", "a", "b",
                                                                           "budgets used"), tuple(rows)),))


def counts_figure(study, analysis) -> CountsFigure | Missing:
    from scalinglab.fit.fitting import fit_law

    if NON_EMBEDDING not in study.points:
        return Missing("isoflop-counts", f"the runs store no {NON_EMBEDDING} metric")
    s = analysis.settings
    fits, notes, findings = [], [], []
    for g in analysis.groups:
        ne = None
        try:
            ne = fit_law(g.points, "isoflop", columns={"n": NON_EMBEDDING}, n_resamples=s["n_resamples"],
                         level=s["level"], random_state=s["random_state"])
        except (FitError, DataError) as exc:
            notes.append(f"{g.label}: no non-embedding fit ({exc})")
        total = g.fits.get("isoflop")
        fits.append((g.label, total, ne))
        if total is not None and ne is not None:
            findings.append(f"{g.label[0].upper()}{g.label[1:]}: counting non-embedding parameters as Kaplan et al. "
                            f"do, the IsoFLOP exponent is a = {fmt_interval(ne.intervals['a'])} against "
                            f"{fmt_interval(total.intervals['a'])} with every parameter counted.")
    if all(t is None and n is None for _, t, n in fits):
        return Missing("isoflop-counts", "no IsoFLOP fit: " + "; ".join(notes or ["see the IsoFLOP figure"]))
    return CountsFigure(fits, tuple(notes), findings=tuple(findings))


# ===================================================================== critical batch size

def noise_points(runs: pd.DataFrame, *, skip_fraction: float = 0.1) -> pd.DataFrame:
    """B_simple (tokens) per curve segment of every complete run; ``fit`` marks those past the warmup share."""
    rows = []
    for _, r in runs[runs["status"] == "complete"].iterrows():
        m = r["metrics"] if isinstance(r["metrics"], dict) else {}
        curve = m.get("noise_curve") or []
        end = curve[-1][0] if curve else 0
        for tokens, loss, b in curve:
            ok = b is not None and np.isfinite(b) and b > 0 and tokens > skip_fraction * end
            rows.append({"size": r.get("size"), "run": r["key"], "tokens": tokens, "loss": loss, "b_simple": b,
                         "fit": bool(ok)})
    return pd.DataFrame(rows, columns=["size", "run", "tokens", "loss", "b_simple", "fit"])


@dataclass(frozen=True)
class NoiseScaleFigure:
    """B_simple against training loss over all runs' curve segments, with its log-log slope."""

    points: pd.DataFrame  # noise_points
    slope: float  # d log B / d log L
    slope_se: float
    intercept: float
    key: str = "noise-scale"
    findings: tuple[str, ...] = ()

    @property
    def alpha_b(self) -> float:
        """Kaplan's alpha_B from B_crit ∝ L^(-1/alpha_B)."""
        return -1.0 / self.slope if np.isfinite(self.slope) and self.slope < 0 else float("nan")

    def chart(self) -> Chart:
        use = self.points[self.points["fit"]]
        colors = palette(use["size"].astype(str).unique(), "viridis", 0.0, 0.9)
        series = [Series(str(size), values(g["loss"]), values(g["b_simple"]), color=colors[str(size)], size=0.8,
                         tips=tuple(f"{size} at {fmt_num(r['tokens'])} tokens\nloss {r['loss']:.3f}\nB_simple "
                                    f"{fmt_num(r['b_simple'])} tokens" for _, r in g.iterrows()))
                  for size, g in use.groupby("size", sort=False)]
        if np.isfinite(self.slope):
            ls = np.geomspace(use["loss"].min(), use["loss"].max(), 20)
            series.append(Series(f"B ∝ L^{self.slope:.2f} ± {self.slope_se:.2f}", values(ls),
                                 values(np.exp(self.intercept) * ls ** self.slope), kind="line", color=FIT_COLOR,
                                 size=1.5))
        return Chart(self.key, "Gradient noise scale vs loss", "How does the critical batch size grow as the loss "
                     "falls?", (Panel("B_simple per curve segment", "training loss", "B_simple (tokens)",
                                      tuple(series)),), columns=1,
                     notes=("B_simple = tr(Σ)/|G|² measured on every step from small-batch gradients, averaged per "
                            "curve segment (the first 10% of each run, the warmup, is left out). Kaplan et al. "
                            f"(2020) find B_crit ∝ L^(−1/α_B) with α_B ≈ {KAPLAN_ALPHA_B}, a slope of about −4.8.",))


def noise_scale(study, analysis) -> NoiseScaleFigure | Missing:
    from scalinglab.fit.frontier import _loglog

    pts = noise_points(study.runs)
    use = pts[pts["fit"]]
    if len(use) < 3:
        return Missing("noise-scale", "fewer than 3 curve segments with a gradient noise scale (runs trained "
                                      "with noise_splits = 1 measure none)")
    slope, icpt, se = _loglog(use["loss"].to_numpy(float), use["b_simple"].to_numpy(float))
    fig = NoiseScaleFigure(pts, slope, se, icpt)
    words = (f"Gradient noise scale: B_simple ∝ L^{slope:.2f} ± {se:.2f} over {len(use)} curve segments, so "
             f"α_B = {fig.alpha_b:.3f} (Kaplan et al. 2020: B_crit ∝ L^−4.8, α_B ≈ {KAPLAN_ALPHA_B}).")
    return NoiseScaleFigure(pts, slope, se, icpt, findings=(words,))


# ===================================================================== forecasts

@dataclass(frozen=True)
class ForecastFigure:
    """Each run's training curve, the final loss forecast from its first half, and forecast against outcome."""

    curves: pd.DataFrame  # run, size, C, tokens, train_loss
    forecasts: pd.DataFrame  # run, size, C, tokens, predicted, actual, rel_error, L_inf, alpha (or error)
    fit_fraction: float
    key: str = "forecasts"
    findings: tuple[str, ...] = ()

    def chart(self) -> Chart:
        ok = self.forecasts.dropna(subset=["predicted"]) if "predicted" in self.forecasts else self.forecasts[:0]
        colors = palette(self.curves["C"].unique(), "plasma", 0.05, 0.8)
        left = []
        for run, c in self.curves.groupby("run", sort=False):
            left.append(Series(f"C ≈ {fmt_num(c['C'].iloc[0], 2)}", values(c["tokens"]), values(c["train_loss"]),
                               kind="line", color=colors[c["C"].iloc[0]], size=0.9,
                               tips=(f"{c['size'].iloc[0]}, C = {fmt_num(c['C'].iloc[0])}",)))
        left.append(Series("forecast from the first half", values(ok["tokens"]), values(ok["predicted"]),
                           color="#111111", marker="x", size=1.3,
                           tips=tuple(f"{r['size']}: forecast {r['predicted']:.4f}, actual {r['actual']:.4f} "
                                      f"({100 * r['rel_error']:+.1f}%)" for _, r in ok.iterrows())))
        lim = [float(min(ok["actual"].min(), ok["predicted"].min())), float(max(ok["actual"].max(),
                                                                                ok["predicted"].max()))]
        right = (Series("y = x", values(lim), values(lim), kind="line", color="#888888", dash=True, legend=False),
                 Series("runs", values(ok["actual"]), values(ok["predicted"]), color=FIT_COLOR, marker="d",
                        tips=tuple(f"{r['size']} at C = {fmt_num(r['C'])}\n{100 * r['rel_error']:+.1f}%"
                                   for _, r in ok.iterrows())))
        return Chart(self.key, "Forecasting the final loss", "Does the first half of a training curve predict "
                     "where it ends?", (Panel("Training curves", "tokens seen", "training loss", tuple(left)),
                                        Panel("Forecast vs actual final training loss", "actual", "forecast", right)),
                     columns=2, notes=(f"L(t) = L_inf + A·t^−α fitted to each curve up to {self.fit_fraction:.0%} "
                                       "of its tokens and extrapolated to its end. With a cosine schedule the loss "
                                       "drops faster near the end than the early power law says, so forecasts "
                                       "tend to be too high.",))


def forecasts(study, analysis, *, fit_fraction: float = 0.5) -> ForecastFigure | Missing:
    from scalinglab.fit.forecast import forecast_final_loss

    runs = study.runs[study.runs["status"] == "complete"]
    curves, rows = [], []
    for _, r in runs.iterrows():
        curve = np.asarray(r["curve"] or [], dtype=float)
        if curve.ndim != 2 or len(curve) < 4:
            continue
        base = {"run": r["key"], "size": r.get("size"), "C": float(r["flops"]), "tokens": float(curve[-1, 0])}
        curves.append(pd.DataFrame({"run": r["key"], "size": r.get("size"), "C": float(r["flops"]),
                                    "tokens": curve[:, 0], "train_loss": curve[:, 1]}))
        try:
            f = forecast_final_loss(curve, fit_fraction=fit_fraction)
        except FitError as exc:
            rows.append({**base, "error": str(exc)})
            continue
        rows.append({**base, "predicted": f.predicted, "actual": f.actual, "rel_error": f.relative_error,
                     "L_inf": f.fit.L_inf, "alpha": f.fit.alpha})
    table = pd.DataFrame(rows)
    if not curves or "predicted" not in table or table["predicted"].notna().sum() == 0:
        return Missing("forecasts", "no run recorded a training curve of 4 or more points that could be fitted")
    err = table["rel_error"].dropna()
    words = (f"Forecasts from the first half of each curve miss the final training loss by {100 * err.median():+.1f}% "
             f"(median) and {100 * err.abs().max():.1f}% at worst over {len(err)} runs.")
    return ForecastFigure(pd.concat(curves, ignore_index=True), table, fit_fraction, findings=(words,))


# ===================================================================== transfer

@dataclass(frozen=True)
class TransferFigure:
    """D_T against D_F per model size with the fitted D_T = k D_F^alpha N^beta (Hernandez et al. 2021)."""

    effective: pd.DataFrame  # transfer.effective_data
    fit: dict  # transfer.fit_transfer, or {"error": ...}
    key: str = "transfer"
    findings: tuple[str, ...] = ()

    def chart(self) -> Chart:
        from scalinglab.families.lm.transfer import HERNANDEZ2021_TEXT_TO_PYTHON as H

        ok = self.effective[np.isfinite(self.effective["D_T"]) & (self.effective["D_T"] > 0)]
        colors = palette(self.effective["size"].astype(str).unique(), "viridis", 0.0, 0.9)
        series = []
        for size, g in ok.groupby("size", sort=False):
            series.append(Series(str(size), values(g["D_F"]), values(g["D_T"]), color=colors[str(size)],
                                 tips=tuple(f"{size}: D_F = {fmt_num(r['D_F'])}, D_E = {fmt_num(r['D_E'])}, "
                                            f"D_T = {fmt_num(r['D_T'])}" for _, r in g.iterrows())))
            if "alpha" in self.fit:
                grid = np.geomspace(g["D_F"].min(), g["D_F"].max(), 20)
                n = float(g["N"].iloc[0])
                series.append(Series(f"fit, {size}", values(grid), values(self.fit["k"] * grid ** self.fit["alpha"]
                                                                         * n ** self.fit["beta"]),
                                     kind="line", color=colors[str(size)], legend=False, group=str(size)))
        rows = []
        if "alpha" in self.fit:
            ci = self.fit["ci"]
            rows.append((f"this study, {self.fit['n_used']} fine-tunes",
                         *(f"{self.fit[k]:.3g} [{ci[k][0]:.3g}, {ci[k][1]:.3g}]" for k in ("alpha", "beta", "k"))))
        rows.append(("Hernandez et al. 2021, text to Python", f"{H['alpha']:.2f}", f"{H['beta']:.2f}", "—"))
        notes = ["Each fine-tune's D_E is the code data a model of its size trained from scratch needs to reach the "
                 "fine-tuned loss (from that size's from-scratch fit L(D) = E + A·D^−α); D_T = D_E − D_F is the "
                 "effective data transferred from pre-training. N counts non-embedding parameters, as Hernandez "
                 "et al. (2021) do."]
        if "error" in self.fit:
            notes.append(f"No D_T fit: {self.fit['error']}")
        return Chart(self.key, "Effective data transferred from pre-training",
                     "How much code data is pre-training on English worth?",
                     (Panel("D_T per fine-tune", "fine-tuning tokens D_F", "effective data transferred D_T",
                            tuple(series)),), columns=1, notes=tuple(notes),
                     tables=(Table("D_T = k·D_F^α·N^β", ("fit", "α (D_F)", "β (N)", "k"), tuple(rows)),))


@dataclass(frozen=True)
class TwoDistributionFigure:
    """Loss on the second distribution (held-out code) against the training distribution's loss."""

    table: pd.DataFrame  # transfer.runs_table rows with a second loss
    relation: dict  # transfer.two_distribution
    key: str = "two-distributions"
    findings: tuple[str, ...] = ()

    def chart(self) -> Chart:
        series = []
        for role, color, marker in (("pretrain", N_COLOR, "o"), ("scratch", D_COLOR, "s"), ("finetune", FIT_COLOR, "d")):
            g = self.table[(self.table["role"] == role) & self.table["second_loss"].notna()]
            if len(g):
                series.append(Series({"pretrain": "trained on Shakespeare", "scratch": "trained on code",
                                      "finetune": "fine-tuned on code"}[role], values(g["loss"]),
                                     values(g["second_loss"].astype(float)), color=color, marker=marker,
                                     tips=tuple(f"{r['size']}, D = {fmt_num(r['D'])}\nown loss {r['loss']:.3f}, "
                                                f"other {float(r['second_loss']):.3f}" for _, r in g.iterrows())))
        rel = self.relation
        if "slope" in rel:
            pre = self.table[(self.table["role"] == "pretrain") & self.table["second_loss"].notna()]
            xs = np.array([pre["loss"].min(), pre["loss"].max()])
            series.append(Series(f"fit over the Shakespeare runs: slope {rel['slope']:.2f}", values(xs),
                                 values(rel["intercept"] + rel["slope"] * xs), kind="line", color="#111111",
                                 size=1.3))
        return Chart(self.key, "Loss on a second distribution", "Does the loss on another distribution track the "
                     "training loss?", (Panel("Each run on its own validation set and on the other", "loss on the "
                                              "run's own validation set (nats)", "loss on the other distribution "
                                              "(nats)", tuple(series), xlog=False, ylog=False),), columns=1,
                     notes=("Every LM run is also scored on a second held-out set: Shakespeare runs on the held-out "
                            "Python standard-library files, code runs on Shakespeare. Kaplan et al. (2020, Sec. "
                            "3.2.2) find the loss on another distribution tracks the training loss with a roughly "
                            "constant offset (a slope near 1).",))


def transfer_figures(study, analysis) -> list:
    """The transfer study's figures (D_T and its fit; two distributions), or why they are missing."""
    from scalinglab.families.lm.transfer import HERNANDEZ2021_TEXT_TO_PYTHON as H
    from scalinglab.families.lm.transfer import effective_data, runs_table, transfer_analysis

    try:
        t = transfer_analysis(study.runs, n_resamples=analysis.settings["n_resamples"])
    except (FitError, DataError, KeyError) as exc:
        return [Missing("transfer", str(exc)), Missing("two-distributions", str(exc))]
    table = runs_table(study.runs[study.runs["status"] == "complete"])
    fit, rel = t["transfer_fit"], t["two_distribution"]
    words = []
    if "alpha" in fit:
        ci = fit["ci"]
        words.append(f"Transfer from Shakespeare to Python code (Hernandez et al. 2021): D_T = k·D_F^α·N^β with α = "
                     f"{fit['alpha']:.2f} [{ci['alpha'][0]:.2f}, {ci['alpha'][1]:.2f}] and β = {fit['beta']:.2f} "
                     f"[{ci['beta'][0]:.2f}, {ci['beta'][1]:.2f}] over {fit['n_used']} fine-tunes ("
                     f"{fit['n_left_out']} left out with no finite D_T), against their α ≈ {H['alpha']} and "
                     f"β ≈ {H['beta']} at scales many orders of magnitude larger.")
    else:
        words.append(f"Transfer: no D_T fit ({fit['error']}).")
    rel_words = ()
    if "slope" in rel:
        rel_words = (f"Two distributions: over the {rel['n']} Shakespeare runs the loss on held-out code changes by "
                     f"{rel['slope']:.2f} nats per nat of Shakespeare loss (mean offset {rel['mean_offset']:.2f} "
                     "nats); Kaplan et al. (2020) find a roughly constant offset, a slope near 1.",)
    return [TransferFigure(effective_data(table), fit, findings=tuple(words)),
            TwoDistributionFigure(table, rel, findings=rel_words)]


def report_extras(study, analysis) -> list:
    """The LM family's figures beyond the generic ones (its report hook); a transfer study adds its own."""
    extras = [counts_figure(study, analysis), noise_scale(study, analysis), forecasts(study, analysis)]
    transfer = (study.info.get("grid") or {}).get("design") == "transfer"  # transfer.transfer_design's mark
    return extras + (transfer_figures(study, analysis) if transfer else [])
