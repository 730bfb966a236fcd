"""The generic report figures, as plain data computed from a study's fits and points.

Every figure here reads only the analysis (:class:`~scalinglab.studies.analysis.StudyAnalysis`,
whose numbers all come from ``fit_law``) and the points' generic columns
(N, D, C, loss, loss_sd, acc, run, the setting keys), so it draws an MNIST,
an LM or a user family's study alike. A figure is a frozen dataclass of
DataFrames and numbers (what tests check) with a ``key`` and a ``chart()``
that lays it out as a :class:`~scalinglab.report.chart.Chart`.

Nothing is refitted for display: curves are evaluated from the fitted
parameters, bands from the bootstrap resamples behind the intervals, and
parabolas from the IsoFLOP profile coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalinglab.report.chart import (
    D_COLOR,
    FIT_COLOR,
    FRONTIER_COLOR,
    GREY,
    N_COLOR,
    Chart,
    Panel,
    Series,
    Table,
    group_colors,
    palette,
    values,
)
from scalinglab.fit.frontier import compute_frontier
from scalinglab.studies.analysis import (
    ALLOCATION_23_CAPTION,
    StudyAnalysis,
    approach23_rows,
    fmt_interval,
    fmt_num,
    runs_of_setting,
)


# ===================================================================== labels and tips

def _short(v) -> str:
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)


def naming_key(points: pd.DataFrame, keys, column: str) -> str | None:
    """The setting key whose values stand one-to-one for ``column`` (MNIST: width for N), if any."""
    for k in keys:
        if k in points and k != column and points.groupby(k)[column].nunique().max() == 1 \
                and points.groupby(column)[k].nunique().max() == 1:
            return k
    return None


class Labels:
    """Legend labels and colours of model sizes (N) and data sizes (D), shared by every figure."""

    def __init__(self, points: pd.DataFrame, keys):
        self.n_key, self.d_key = naming_key(points, keys, "N"), naming_key(points, keys, "D")
        self._n = self._names(points, "N", self.n_key)
        self._d = self._names(points, "D", self.d_key)
        self.n_colors = {self._n[v]: c for v, c in palette(self._n, "viridis", 0.0, 0.9).items()}
        self.d_colors = {self._d[v]: c for v, c in palette(self._d, "plasma", 0.05, 0.8).items()}

    @staticmethod
    def _names(points, column, key) -> dict:
        if key is None:
            return {v: f"{column} = {fmt_num(v)}" for v in sorted(points[column].unique())}
        first = points.drop_duplicates(column).set_index(column)[key]
        return {v: f"{key} {_short(first[v])}" for v in sorted(points[column].unique())}

    def n(self, value) -> str:
        return self._n[value]

    def d(self, value) -> str:
        return self._d[value]


def point_tip(row, tuned=()) -> str:
    """Hover text of a seed-mean setting."""
    sd = row.get("loss_sd", float("nan"))
    spread = f" ± {sd:.4f}" if sd == sd else ""
    seeds = int(row.get("n_seeds", 1))
    lines = [str(row["run"]), f"C = {fmt_num(row['C'])} FLOPs",
             f"loss = {row['loss']:.4f}{spread} ({seeds} seed{'s' if seeds != 1 else ''})"]
    if "acc" in row and row["acc"] == row["acc"]:
        lines.append(f"accuracy = {100 * row['acc']:.2f}%")
    lines.append(f"N = {fmt_num(row['N'])}, D = {fmt_num(row['D'])}")
    lines += [f"{t} = {_short(row[t])}" for t in tuned if t in row]
    return "\n".join(lines)


def compute_grid(c, n: int = 80) -> np.ndarray:
    """``n`` log-spaced values spanning ``c`` (where fitted curves are drawn)."""
    c = np.asarray(c, dtype=float)
    return np.geomspace(c.min(), c.max(), n)


def law_curve(fit, grid: np.ndarray) -> pd.DataFrame:
    """E + A C^-alpha of a frontier FitResult on ``grid`` and its pointwise bootstrap percentile band."""
    p, level = fit.params, fit.intervals["alpha"].level
    with np.errstate(over="ignore", invalid="ignore"):
        loss = p["E"] + p["A"] * grid ** -p["alpha"]
        lo = hi = np.full_like(grid, np.nan)
        s = fit.samples
        if s is not None and len(s):
            ok = s[s["converged"].astype(bool)] if "converged" in s else s
            if len(ok) >= 2:
                pred = (ok["E"].to_numpy()[:, None]
                        + ok["A"].to_numpy()[:, None] * grid[None, :] ** -ok["alpha"].to_numpy()[:, None])
                lo, hi = np.nanpercentile(pred, [50 * (1 - level), 50 * (1 + level)], axis=0)
    return pd.DataFrame({"C": grid, "loss": loss, "lo": lo, "hi": hi})


def _by_size(points: pd.DataFrame, y: str, labels: Labels, *, errors: bool = False, tuned=(), marker="o",
             kind="points") -> list[Series]:
    out = []
    for n, g in points.sort_values("C").groupby("N"):
        lo = hi = None
        if errors and "loss_sd" in g and g["loss_sd"].notna().any():
            sd = g["loss_sd"].fillna(0).to_numpy(float)
            lo, hi = values(g[y] - sd), values(g[y] + sd)
        name = labels.n(n)
        out.append(Series(name, values(g["C"]), values(g[y]), color=labels.n_colors[name], lo=lo, hi=hi,
                          marker=marker, kind=kind, tips=tuple(point_tip(r, tuned) for _, r in g.iterrows())))
    return out


def _several(sa: StudyAnalysis) -> bool:
    return len(sa.groups) > 1


# ===================================================================== loss vs compute

@dataclass(frozen=True)
class FrontierPanelData:
    label: str
    points: pd.DataFrame  # the group's seed-mean settings
    frontier: pd.DataFrame  # the settings on the compute-efficient frontier (the fit's own table)
    fit: object | None  # the frontier FitResult
    curve: pd.DataFrame | None  # C, loss (the fitted law), lo, hi (its pointwise band)
    note: str = ""
    intervals: pd.DataFrame | None = None  # C, predicted, mean_lo/hi, new_run_lo/hi up to 10x the costliest C


@dataclass(frozen=True)
class LossComputeFigure:
    """Loss vs training compute: every setting coloured by model size, the frontier and its power law."""

    panels: list[FrontierPanelData]
    labels: Labels
    tuned: tuple[str, ...]
    several: bool
    key: str = "loss-compute"
    ylabel: str = "validation loss"

    def chart(self) -> Chart:
        panels, rows = [], []
        for p in self.panels:
            tag = f" ({p.label})" if self.several else ""
            series = _by_size(p.points, "loss", self.labels, errors=True, tuned=self.tuned)
            if p.fit is not None:
                iv = p.fit.intervals["alpha"]
                name = f"fit{tag}: L = E + A·C^−α, α = {fmt_interval(iv)}"
                if p.curve["lo"].notna().any():
                    series.append(Series(f"{round(100 * iv.level)}% band", values(p.curve["C"]),
                                         values(p.curve["loss"]), kind="band", color=FIT_COLOR,
                                         lo=values(p.curve["lo"]), hi=values(p.curve["hi"]), legend=False, group=name))
                q = p.fit.params
                series.append(Series(name, values(p.curve["C"]), values(p.curve["loss"]), kind="line", color=FIT_COLOR,
                                     size=1.6, tips=(f"L(C) = {fmt_num(q['E'], 4)} + {fmt_num(q['A'])}"
                                                     f"·C^−{q['alpha']:.3f}",)))
            pi = p.intervals
            if pi is not None:
                level = round(100 * p.fit.intervals["alpha"].level)
                series.append(Series(f"{level}% interval for one new run", values(pi["C"]), values(pi["predicted"]),
                                     kind="band", color=GREY, lo=values(pi["new_run_lo"]), hi=values(pi["new_run_hi"])))
                ext = pi[pi["C"] >= p.points["C"].max()]
                series.append(Series(f"extrapolation{tag} with its {level}% mean-law interval", values(ext["C"]),
                                     values(ext["predicted"]), kind="line", color=FIT_COLOR, dash=True,
                                     tips=("the frontier law beyond the costliest setting",)))
                series.append(Series(f"extrapolation{tag} with its {level}% mean-law interval", values(ext["C"]),
                                     values(ext["predicted"]), kind="band", color=FIT_COLOR,
                                     lo=values(ext["mean_lo"]), hi=values(ext["mean_hi"]), legend=False))
            f = p.frontier
            series.append(Series("compute-efficient frontier", values(f["C"]), values(f["loss"]), kind="line",
                                 color=FRONTIER_COLOR, dash=True))
            series.append(Series("compute-efficient frontier", values(f["C"]), values(f["loss"]), color=FRONTIER_COLOR,
                                 hollow=True, size=1.5, legend=False,
                                 tips=tuple("frontier: " + point_tip(r, self.tuned) for _, r in f.iterrows())))
            panels.append(Panel(p.label[0].upper() + p.label[1:] if self.several else "All settings",
                                "training compute C (FLOPs)", self.ylabel, tuple(series), note=p.note))
            for _, r in f.iterrows():
                sd = f" ± {r['loss_sd']:.4f}" if r.get("loss_sd", np.nan) == r.get("loss_sd", np.nan) else ""
                rows.append((p.label, str(r["run"]), fmt_num(r["C"]), fmt_num(r["N"]), fmt_num(r["D"]),
                             f"{r['loss']:.4f}{sd}"))
        table = Table("Settings on the compute-efficient frontier (seed means ± s.d.)",
                      ("group", "setting", "C (FLOPs)", "N", "D", "loss"), tuple(rows))
        return Chart(self.key, "Loss vs training compute",
                     "Does the compute-efficient frontier follow a power law, and with what exponent?",
                     tuple(panels), columns=min(len(panels), 2),
                     notes=("Each point is one setting averaged over seeds (bars: ± one s.d.); colour is model "
                            "size. The frontier keeps each setting that beats every cheaper one. The red line is "
                            "L = E + A·C^−α fitted to the frontier (`scalinglab fit --law frontier`), the band its "
                            "pointwise bootstrap interval. Dashed to 10× the costliest setting: the law extrapolated, "
                            "with the interval for the mean law; the grey band is the interval for one new run, "
                            "adding the seed-to-seed and lack-of-fit noise of the frontier settings "
                            "(scalinglab.fit.noise.prediction_intervals).",), tables=(table,))


def loss_vs_compute(sa: StudyAnalysis, labels: Labels) -> LossComputeFigure:
    panels = []
    for g in sa.groups:
        fit = g.fits.get("frontier")
        curve = law_curve(fit, compute_grid(g.points["C"])) if fit is not None else None
        panels.append(FrontierPanelData(g.label, g.points, compute_frontier(g.points), fit, curve,
                                        "" if fit is not None else g.skipped.get("frontier", ""),
                                        g.frontier_intervals if fit is not None else None))
    return LossComputeFigure(panels, labels, tuple(sa.tuned), _several(sa))


# ===================================================================== error rate

@dataclass(frozen=True)
class ErrorRateFigure:
    """Error rate (1 - accuracy) vs compute with its frontier law, and error rate against loss."""

    panels: list[FrontierPanelData]  # points/frontier in the error rate (column 'loss' = 1 - acc)
    labels: Labels
    tuned: tuple[str, ...]
    several: bool
    key: str = "error-rate"

    def chart(self) -> Chart:
        base = LossComputeFigure(self.panels, self.labels, self.tuned, self.several, ylabel="error rate (1 − accuracy)")
        panels = list(base.chart().panels)
        colors = group_colors(p.label for p in self.panels)
        rel = tuple(Series(p.label, values(p.points["val_loss"]), values(p.points["loss"]), color=colors[p.label],
                           tips=tuple(point_tip(r.to_dict() | {"loss": r["val_loss"]}, self.tuned)
                                      for _, r in p.points.iterrows())) for p in self.panels)
        panels.append(Panel("Error rate tracks loss", "validation loss", "error rate (1 − accuracy)", rel))
        best = min(self.panels, key=lambda p: p.points["loss"].min())
        top = best.points.loc[best.points["loss"].idxmin()]
        return Chart(self.key, "Accuracy vs compute", "How does accuracy improve as compute grows?", tuple(panels),
                     columns=min(len(panels), 3),
                     notes=("Accuracy is shown as the error rate 1 − accuracy on a log scale, where a power law is a "
                            "straight line; the red line fits E + A·C^−α to its frontier with the loss frontier's "
                            "estimator (`scalinglab fit --law frontier --loss error_rate`).",
                            f"Best accuracy: {100 * (1 - top['loss']):.2f}% ({top['run']}, C = {fmt_num(top['C'])} "
                            "FLOPs)."))


def error_rate_figure(sa: StudyAnalysis, labels: Labels) -> ErrorRateFigure | None:
    """The error-rate figure, or None when the task records no accuracy."""
    if not all("acc" in g.points for g in sa.groups):
        return None
    panels = []
    for g in sa.groups:
        pts = g.points.assign(val_loss=g.points["loss"], loss=g.points["error_rate"])
        fit = g.fits.get("error_rate")
        curve = law_curve(fit, compute_grid(pts["C"])) if fit is not None else None
        panels.append(FrontierPanelData(g.label, pts, compute_frontier(pts), fit, curve,
                                        "" if fit is not None else g.skipped.get("error_rate", "")))
    return ErrorRateFigure(panels, labels, tuple(sa.tuned), _several(sa))


# ===================================================================== compute-optimal N and D

@dataclass(frozen=True)
class OptimalSizePanelData:
    label: str
    optimal: pd.DataFrame  # C, N_opt, D_opt, run: the frontier settings Approach 1 fitted
    approach1: object | None  # FitResult
    isoflop: pd.DataFrame | None  # C, N_opt, D_opt: IsoFLOP minima inside the sampled sizes
    note: str = ""


@dataclass(frozen=True)
class ComputeOptimalFigure:
    """Compute-optimal N and D vs compute (Approach 1 lines, IsoFLOP minima) and every exponent by method."""

    panels: list[OptimalSizePanelData]
    exponents: pd.DataFrame  # quantity, meaning, method, group, estimate, lo, hi (from the FitResults)
    level: float
    key: str = "compute-optimal"

    def chart(self) -> Chart:
        panels = []
        for p in self.panels:
            series = []
            if p.approach1 is not None:
                o, f = p.optimal, p.approach1
                grid = compute_grid(o["C"], 40)
                series += [
                    Series("model size N (frontier settings)", values(o["C"]), values(o["N_opt"]), color=N_COLOR,
                           tips=tuple(f"{r['run']}\nC = {fmt_num(r['C'])}\nN = {fmt_num(r['N_opt'])}"
                                      for _, r in o.iterrows())),
                    Series(f"N_opt ∝ C^a, a = {fmt_interval(f.intervals['a'])}", values(grid),
                           values(f.params["N_coef"] * grid ** f.value("a")), kind="line", color=N_COLOR, size=1.5),
                    Series("data size D (frontier settings)", values(o["C"]), values(o["D_opt"]), color=D_COLOR,
                           marker="s", tips=tuple(f"{r['run']}\nC = {fmt_num(r['C'])}\nD = {fmt_num(r['D_opt'])}"
                                                  for _, r in o.iterrows())),
                    Series(f"D_opt ∝ C^b, b = {fmt_interval(f.intervals['b'])}", values(grid),
                           values(f.params["D_coef"] * grid ** f.value("b")), kind="line", color=D_COLOR, size=1.5)]
            if p.isoflop is not None and len(p.isoflop):
                iso = p.isoflop
                series.append(Series("N_opt at IsoFLOP minima", values(iso["C"]), values(iso["N_opt"]), color=N_COLOR,
                                     marker="x", tips=tuple(f"IsoFLOP minimum\nC ≈ {fmt_num(r['C'])}\nN_opt = "
                                                            f"{fmt_num(r['N_opt'])}" for _, r in iso.iterrows())))
                series.append(Series("D_opt at IsoFLOP minima", values(iso["C"]), values(iso["D_opt"]), color=D_COLOR,
                                     marker="x", tips=tuple(f"IsoFLOP minimum\nC ≈ {fmt_num(r['C'])}\nD_opt = "
                                                            f"{fmt_num(r['D_opt'])}" for _, r in iso.iterrows())))
            panels.append(Panel(p.label[0].upper() + p.label[1:] if len(self.panels) > 1 else "Compute-optimal sizes",
                                "training compute C (FLOPs)", "parameters N / data D", tuple(series), note=p.note))
        groups = list(dict.fromkeys(self.exponents["group"]))
        rows = []
        for (q, meaning, method), g in self.exponents.groupby(["quantity", "meaning", "method"], sort=False):
            cells = []
            for name in groups:
                r = g[g["group"] == name]
                dec = None if q == "E" else 3
                cells.append("—" if r.empty else r["text"].iloc[0] if dec is None else r["text_dec"].iloc[0])
            rows.append((q, meaning, method, *cells))
        table = Table(f"Exponents with {round(100 * self.level)}% bootstrap intervals", ("quantity", "meaning",
                      "method", *groups), tuple(rows))
        return Chart(self.key, "Compute-optimal model and data size",
                     "How should a compute budget be split between model size and data?", tuple(panels),
                     columns=min(len(panels), 2), tables=(table,),
                     notes=("Points are the settings on the loss frontier (Hoffmann et al.'s Approach 1); lines are "
                            "least-squares fits of log N and log D on log C (`scalinglab fit --law approach1`). "
                            "Crosses are the IsoFLOP minima (Approach 2), with D_opt read off the runs' own data "
                            "sizes at each budget's minimum.",))


EXPONENTS = (  # fit, quantity in the fit, shown as, meaning, method
    ("frontier", "alpha", "α", "loss frontier L = E + A·C^−α", "frontier fit"),
    ("frontier", "E", "E", "irreducible loss of the frontier law", "frontier fit"),
    ("approach1", "a", "a", "N_opt ∝ C^a", "Approach 1 (frontier settings)"),
    ("approach1", "b", "b", "D_opt ∝ C^b", "Approach 1 (frontier settings)"),
    ("isoflop", "a", "a", "N_opt ∝ C^a", "Approach 2 (IsoFLOP)"),
    ("isoflop", "b", "b", "D_opt ∝ C^b", "Approach 2 (IsoFLOP)"),
    ("chinchilla", "a", "a", "N_opt ∝ C^a", "Approach 3 (Chinchilla fit)"),
    ("chinchilla", "b", "b", "D_opt ∝ C^b", "Approach 3 (Chinchilla fit)"),
    ("chinchilla", "alpha", "α_N", "exponent of N in L(N, D)", "Approach 3 (Chinchilla fit)"),
    ("chinchilla", "beta", "β_D", "exponent of D in L(N, D)", "Approach 3 (Chinchilla fit)"),
    ("error_rate", "alpha", "α_err", "error-rate frontier E + A·C^−α", "frontier fit of 1 − accuracy"),
)


def exponent_table(sa: StudyAnalysis) -> pd.DataFrame:
    """Every fitted exponent of the study, one row per (quantity, method, group), read off the FitResults."""
    rows = []
    for g in sa.groups:
        for fit_name, q, shown, meaning, method in EXPONENTS:
            fit = g.fits.get(fit_name)
            if fit is None or q not in fit.intervals or not np.isfinite(fit.value(q)):
                continue
            iv = fit.intervals[q]
            ok = iv.supported
            rows.append({"quantity": shown, "meaning": meaning, "method": method, "group": g.label,
                         "estimate": iv.estimate, "lo": iv.lo if ok else np.nan, "hi": iv.hi if ok else np.nan,
                         "text": fmt_interval(iv, decimals=None), "text_dec": fmt_interval(iv)})
    return pd.DataFrame(rows, columns=["quantity", "meaning", "method", "group", "estimate", "lo", "hi", "text",
                                       "text_dec"])


def isoflop_minima(fit) -> pd.DataFrame:
    """The IsoFLOP profiles with a minimum inside the sampled sizes (what the exponents are fitted to)."""
    prof = fit.tables["profiles"]
    return prof[prof["N_opt"].notna() & prof["inside"].astype(bool)].reset_index(drop=True)


def compute_optimal_sizes(sa: StudyAnalysis) -> ComputeOptimalFigure:
    panels = []
    for g in sa.groups:
        a1, iso = g.fits.get("approach1"), g.fits.get("isoflop")
        optimal = (a1.tables["frontier"] if a1 is not None else
                   pd.DataFrame(columns=["C", "N_opt", "D_opt", "run"]))
        panels.append(OptimalSizePanelData(g.label, optimal, a1, None if iso is None else isoflop_minima(iso),
                                           "" if a1 is not None else g.skipped.get("approach1", "")))
    return ComputeOptimalFigure(panels, exponent_table(sa), sa.settings["level"])


# ===================================================================== IsoFLOP profiles

@dataclass(frozen=True)
class IsoFlopPanelData:
    label: str
    points: pd.DataFrame  # the group's settings, with 'profile' (row of profiles) where the fit assigned one
    fit: object | None  # the isoflop FitResult
    parabolas: pd.DataFrame  # profile, C, N, loss: each fitted parabola over its sampled sizes
    note: str = ""
    bias: pd.DataFrame | None = None  # scalinglab.fit.select.isoflop_bias per budget


@dataclass(frozen=True)
class IsoFlopFigure:
    """Loss vs N at fixed compute with the parabolas and minima, and N_opt and D_opt per budget."""

    panels: list[IsoFlopPanelData]
    labels: Labels
    several: bool
    approaches: tuple[tuple[str, ...], ...] = ()  # Approach 2 beside 3 at the costliest budget (summary rows)
    key: str = "isoflop"

    def chart(self) -> Chart:
        panels, rows = [], []
        for p in self.panels:
            tag = f" ({p.label})" if self.several else ""
            left, right = [], []
            if p.fit is not None:
                prof = p.fit.tables["profiles"]
                shown = [i for i, r in prof.iterrows() if np.isfinite(r["N_opt"])]
                colors = palette([prof.loc[i, "C"] for i in shown] or [0], "plasma", 0.05, 0.8)
                for i in shown:
                    r = prof.loc[i]
                    name = f"C ≈ {fmt_num(r['C'], 2)}"
                    g = p.points[p.points["profile"] == i]
                    left.append(Series(name, values(g["N"]), values(g["loss"]), color=colors[r["C"]],
                                       tips=tuple(point_tip(x) for _, x in g.iterrows())))
                    par = p.parabolas[p.parabolas["profile"] == i]
                    left.append(Series(name, values(par["N"]), values(par["loss"]), kind="line", color=colors[r["C"]],
                                       legend=False))
                    if r["inside"]:
                        left.append(Series(name, (r["N_opt"],), (r["loss_opt"],), color=colors[r["C"]], marker="x",
                                           size=1.6, legend=False,
                                           tips=(f"minimum at C ≈ {fmt_num(r['C'])}\nN_opt = {fmt_num(r['N_opt'])}"
                                                 f"\nD_opt = {fmt_num(r['D_opt'])}\nloss = {r['loss_opt']:.4f}",)))
                inside = isoflop_minima(p.fit)
                for col, color, what, marker in (("N_opt", N_COLOR, "N_opt", "o"), ("D_opt", D_COLOR, "D_opt", "s")):
                    right.append(Series(f"{what} at the minimum", values(inside["C"]), values(inside[col]),
                                        color=color, marker=marker,
                                        tips=tuple(f"C ≈ {fmt_num(r['C'])}\n{what} = {fmt_num(r[col])}"
                                                   for _, r in inside.iterrows())))
                if np.isfinite(p.fit.value("a")) and len(inside):
                    grid = compute_grid(inside["C"], 40)
                    for q, coef, color in (("a", "N_coef", N_COLOR), ("b", "D_coef", D_COLOR)):
                        if coef in p.fit.params and np.isfinite(p.fit.value(q)):
                            what = "N_opt" if q == "a" else "D_opt"
                            right.append(Series(f"{what} ∝ C^{q}, {q} = {fmt_interval(p.fit.intervals[q])}",
                                                values(grid), values(p.fit.params[coef] * grid ** p.fit.value(q)),
                                                kind="line", color=color, size=1.5))
                rows += [(p.label, fmt_num(r["C"]), str(int(r["n_runs"])), fmt_num(r["N_opt"]), fmt_num(r["D_opt"]),
                          "—" if not np.isfinite(r["loss_opt"]) else f"{r['loss_opt']:.4f}",
                          "yes" if r["inside"] else "no", str(r["note"] or "")) for _, r in prof.iterrows()]
            panels.append(Panel(f"Loss vs N at fixed compute{tag}", "parameters N", "validation loss", tuple(left),
                                ylog=False, note=p.note if not left else ""))
            panels.append(Panel(f"Optimal size per budget{tag}", "training compute C (FLOPs)", "N_opt / D_opt",
                                tuple(right), note=p.note if not right else ""))
        table = Table("IsoFLOP budgets", ("group", "C (FLOPs)", "settings", "N_opt", "D_opt", "loss at minimum",
                                          "inside sampled sizes", "note"), tuple(rows))
        bias = [(p.label, fmt_num(r["C"]), f"{r['width_decades']:.2f}", f"{r['asymmetry']:+.2f}",
                 f"{r['bias_decades']:+.3f}", f"{r['half_width_decades']:.3f}", "BIASED" if r["flag"] else "ok")
                for p in self.panels if p.bias is not None for _, r in p.bias.iterrows()
                if np.isfinite(r["half_width_decades"])]
        tables = [table] if rows else []
        if bias:
            tables.append(Table("Sampling diagnostics per budget with 4+ sizes: the bias the sampled sizes put on "
                                "the parabola's minimum (decades of N, on the Chinchilla surface) against the "
                                "half-width of its interval", ("group", "C (FLOPs)", "width (decades)", "asymmetry",
                                                               "bias", "interval half-width", "flag"), tuple(bias)))
        if self.approaches:
            tables.append(Table(ALLOCATION_23_CAPTION, ("group", "method", "a", "N_opt", "D_opt"), self.approaches))
        flagged = sum(r[-1] == "BIASED" for r in bias)
        return Chart(self.key, "IsoFLOP profiles", "At a fixed compute budget, which model size gives the lowest "
                     "loss, and on how much data?", tuple(panels), columns=2, tables=tuple(tables),
                     notes=("Settings are grouped into budgets by training FLOPs as `scalinglab fit --law isoflop` "
                            "groups them. Lines are parabolas in log N fitted per budget (Hoffmann et al. 2022, "
                            "Approach 2), drawn over the sizes sampled; crosses mark their minima. D_opt is the data "
                            "the budget's runs trained on at N_opt (interpolated), not an assumed C/6N. A minimum "
                            "outside the sampled sizes is an extrapolation and is left out of the exponents.",
                            f"Sampling check (scalinglab.fit.select.isoflop_bias): {flagged} of {len(bias)} checked "
                            "budgets are flagged BIASED, where sizes sampled off-centre (asymmetry) or very wide "
                            "move the parabola's minimum by more than its own interval; centre the sizes on the "
                            "minimum or narrow them there.",))


def isoflop_figure(sa: StudyAnalysis, labels: Labels) -> IsoFlopFigure:
    panels = []
    for g in sa.groups:
        fit = g.fits.get("isoflop")
        if fit is None:
            panels.append(IsoFlopPanelData(g.label, g.points, None, pd.DataFrame(columns=["profile", "C", "N", "loss"]),
                                           g.skipped.get("isoflop", "")))
            continue
        prof = fit.tables["profiles"]
        par = []
        for i, r in prof.iterrows():
            if np.isfinite(r["N_opt"]) and np.isfinite(r["curvature"]):
                n = np.geomspace(r["N_min_sampled"], r["N_max_sampled"], 30)
                par.append(pd.DataFrame({"profile": i, "C": r["C"], "N": n,
                                         "loss": r["curvature"] * (np.log(n) - np.log(r["N_opt"])) ** 2
                                         + r["loss_opt"]}))
        parabolas = pd.concat(par, ignore_index=True) if par else pd.DataFrame(columns=["profile", "C", "N", "loss"])
        n_min, n_in = int(prof["N_opt"].notna().sum()), int(prof["inside"].astype(bool).sum())
        note = (f"{len(prof)} budgets: {n_in} with a minimum inside the sampled sizes, {n_min - n_in} extrapolated, "
                f"{len(prof) - n_min} without a parabola")
        panels.append(IsoFlopPanelData(g.label, g.points.assign(profile=fit.estimator.run_profile), fit, parabolas, note,
                                       g.isoflop_bias))
    return IsoFlopFigure(panels, labels, _several(sa), approach23_rows(sa))


# ===================================================================== Chinchilla

@dataclass(frozen=True)
class ChinchillaPanelData:
    label: str
    points: pd.DataFrame  # settings with 'predicted' and 'residual' (log measured / predicted)
    fit: object | None  # the chinchilla FitResult
    backtest: pd.DataFrame | None  # run, C, N, D, measured, predicted, rel_error (the held-out settings)
    note: str = ""


@dataclass(frozen=True)
class ChinchillaFigure:
    """Approach 3: the law L(N, D) against every setting, its residuals and a back-test."""

    panels: list[ChinchillaPanelData]
    labels: Labels
    several: bool
    key: str = "chinchilla"

    def chart(self) -> Chart:
        panels, rows = [], []
        for p in self.panels:
            tag = f" ({p.label})" if self.several else ""
            if p.fit is None:
                panels.append(Panel(f"Chinchilla fit{tag}", "parameters N", "validation loss", (), note=p.note))
                continue
            pts = p.points
            fit = []
            for d, g in pts.sort_values("N").groupby("D"):
                name = self.labels.d(d)
                color = self.labels.d_colors[name]
                fit.append(Series(name, values(g["N"]), values(g["loss"]), color=color,
                                  tips=tuple(point_tip(r) + f"\npredicted = {r['predicted']:.4f}"
                                             for _, r in g.iterrows())))
                fit.append(Series(name, values(g["N"]), values(g["predicted"]), kind="line" if len(g) > 1 else "points",
                                  marker="x", color=color, legend=False))
            res = [Series(self.labels.n(n), values(g["C"]), values(g["residual"]),
                          color=self.labels.n_colors[self.labels.n(n)],
                          tips=tuple(f"{r['run']}\nmeasured {r['loss']:.4f}, predicted {r['predicted']:.4f}"
                                     for _, r in g.iterrows())) for n, g in pts.groupby("N")]
            res.append(Series("zero", values([pts["C"].min(), pts["C"].max()]), (0.0, 0.0), kind="line", color=GREY,
                              dash=True, legend=False))
            bt = []
            back = p.fit.backtest
            if p.backtest is not None and len(p.backtest):
                b, split = p.backtest, back["holdout_above"]
                train = pts[pts["C"] <= split]
                lim = [min(b["measured"].min(), b["predicted"].min(), train["loss"].min()),
                       max(b["measured"].max(), b["predicted"].max(), train["loss"].max())]
                bt.append(Series("y = x", values(lim), values(lim), kind="line", color=GREY, dash=True, legend=False))
                bt.append(Series("settings fitted (C ≤ split)", values(train["loss"]), values(train["predicted"]),
                                 color="#9a9a9a", size=0.8, tips=tuple(f"{r['run']} (fitted)" for _, r in train.iterrows())))
                bt.append(Series(f"held out (C > {fmt_num(split, 2)}): mean |error| {100 * back['mean_abs_rel_error']:.1f}%",
                                 values(b["measured"]), values(b["predicted"]), color=FIT_COLOR, marker="d", size=1.3,
                                 tips=tuple(f"{r['run']}\nC = {fmt_num(r['C'])}\nmeasured {r['measured']:.4f}\n"
                                            f"predicted {r['predicted']:.4f} ({100 * r['rel_error']:+.1f}%)"
                                            for _, r in b.iterrows())))
            panels.append(Panel(f"Fit: L(N, D), one colour per data size{tag}", "parameters N", "validation loss",
                                tuple(fit)))
            panels.append(Panel(f"Residuals{tag}", "training compute C (FLOPs)", "log(measured / predicted)",
                                tuple(res), ylog=False))
            panels.append(Panel(f"Back-test: costliest settings predicted{tag}", "measured loss", "predicted loss",
                                tuple(bt), note="" if bt else (p.note or "no back-test")))
            iv = p.fit.intervals
            rows.append((p.label, *(fmt_interval(iv[k], decimals=None) for k in ("E", "A", "B")),
                         *(fmt_interval(iv[k]) for k in ("alpha", "beta", "a", "b"))))
        notes = ["L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022, Approach 3), fitted to the seed-mean settings "
                 "with `scalinglab fit --law chinchilla` (Huber loss on log residuals, multi-start). a = β/(α+β) "
                 "and b = α/(α+β) assume C ∝ N·D; compare them with Approach 1 and 2, which measure the allocation "
                 "directly.", "Back-test: the law refitted on the settings at or below the split predicts the rest."]
        notes += [f"{p.label}: {p.note}" for p in self.panels if p.note]
        table = Table("Chinchilla parameters (bootstrap intervals)", ("group", "E", "A", "B", "α", "β", "a", "b"),
                      tuple(rows))
        return Chart(self.key, "Chinchilla parametric fit", "Does one law L(N, D) describe every setting, and does it "
                     "predict the costliest settings from the cheaper ones?", tuple(panels), columns=3,
                     notes=tuple(notes), tables=(table,) if rows else ())


def chinchilla_figure(sa: StudyAnalysis, labels: Labels) -> ChinchillaFigure:
    panels = []
    for g in sa.groups:
        fit = g.fits.get("chinchilla")
        if fit is None:
            panels.append(ChinchillaPanelData(g.label, g.points, None, None, g.skipped.get("chinchilla", "")))
            continue
        pts = g.points.copy()
        pts["predicted"] = fit.estimator.predict(pts)
        pts["residual"] = np.log(pts["loss"] / pts["predicted"])
        note = "" if fit.backtest else f"too few settings ({len(pts)}) to hold any out for a back-test"
        panels.append(ChinchillaPanelData(g.label, pts, fit, fit.tables.get("backtest"), note))
    return ChinchillaFigure(panels, labels, _several(sa))


# ===================================================================== loss vs N and vs D

@dataclass(frozen=True)
class ModelDataFigure:
    """Kaplan et al.'s two views of a grid design: loss vs N per data size, loss vs D per model size."""

    points: pd.DataFrame  # every group's settings, with 'group'
    labels: Labels
    several: bool
    key: str = "loss-n-d"

    def chart(self) -> Chart:
        panels = []
        for label, pts in self.points.groupby("group", sort=False):
            tag = f" ({label})" if self.several else ""
            by_d, by_n = [], []
            for d, g in pts.sort_values("N").groupby("D"):
                name = self.labels.d(d)
                by_d.append(Series(name, values(g["N"]), values(g["loss"]), kind="line", color=self.labels.d_colors[name]))
                by_d.append(Series(name, values(g["N"]), values(g["loss"]), color=self.labels.d_colors[name],
                                   legend=False, tips=tuple(point_tip(r) for _, r in g.iterrows())))
            for n, g in pts.sort_values("D").groupby("N"):
                name = self.labels.n(n)
                by_n.append(Series(name, values(g["D"]), values(g["loss"]), kind="line", color=self.labels.n_colors[name]))
                by_n.append(Series(name, values(g["D"]), values(g["loss"]), color=self.labels.n_colors[name], marker="s",
                                   legend=False, tips=tuple(point_tip(r) for _, r in g.iterrows())))
            panels.append(Panel(f"Loss vs parameters, one line per data size{tag}", "parameters N", "validation loss",
                                tuple(by_d)))
            panels.append(Panel(f"Loss vs data, one line per model size{tag}", "data D", "validation loss",
                                tuple(by_n)))
        return Chart(self.key, "Loss vs model size and vs data size",
                     "Where does a larger model stop helping because data runs out, and vice versa?", tuple(panels),
                     columns=2, notes=("Kaplan et al. (2020, fig. 4) view: with little data the loss-vs-N curves "
                                       "flatten or bend up; with a small model the loss-vs-D curves flatten (the "
                                       "model, not the data, is the bottleneck).",))


def is_grid(points: pd.DataFrame) -> bool:
    """True when at least two model sizes each ran at two or more data sizes, and vice versa (an N x D grid)."""
    return bool((points.groupby("N")["D"].nunique() >= 2).sum() >= 2
                and (points.groupby("D")["N"].nunique() >= 2).sum() >= 2)


def model_data_views(sa: StudyAnalysis, labels: Labels) -> ModelDataFigure | None:
    """The N x D views, or None when the design is not a grid (e.g. IsoFLOP only)."""
    if not all(is_grid(g.points) for g in sa.groups):
        return None
    pts = pd.concat([g.points.assign(group=g.label) for g in sa.groups], ignore_index=True)
    return ModelDataFigure(pts, labels, _several(sa))


# ===================================================================== training curves

@dataclass(frozen=True)
class CurvesFigure:
    """Training loss against compute spent, for the settings on the frontier (seed means)."""

    curves: pd.DataFrame  # group, run, N, C (FLOPs spent so far), train_loss
    final: pd.DataFrame  # group, run, C, loss: the final validation loss of those settings
    labels: Labels
    key: str = "training-curves"

    def chart(self) -> Chart:
        panels = []
        several = self.curves["group"].nunique() > 1
        for label, g in self.curves.groupby("group", sort=False):
            series = []
            for run, c in g.groupby("run", sort=False):
                name = self.labels.n(c["N"].iloc[0])
                series.append(Series(name, values(c["C"]), values(c["train_loss"]), kind="line",
                                     color=self.labels.n_colors[name], size=1.1, tips=(f"{run} (training loss)",)))
            f = self.final[self.final["group"] == label]
            series.append(Series("final validation loss", values(f["C"]), values(f["loss"]), color=FRONTIER_COLOR,
                                 hollow=True, size=1.4, tips=tuple(f"{r['run']}\nvalidation loss {r['loss']:.4f}"
                                                                   for _, r in f.iterrows())))
            panels.append(Panel(label[0].upper() + label[1:] if several else "Frontier settings",
                                "compute spent so far (FLOPs)", "training loss", tuple(series)))
        return Chart(self.key, "Training curves of the frontier settings", "How did the compute-optimal runs "
                     "train, and where does each one take over?", tuple(panels), columns=min(len(panels), 2),
                     notes=("Training loss (per logging interval, averaged over seeds) against the FLOPs spent so "
                            "far, for the settings on the loss frontier. Kaplan et al. take the frontier over such "
                            "curves; here each run is scored only at its end.",))


def setting_runs(loaded, row, keys) -> pd.DataFrame:
    """The complete runs behind one seed-mean setting (its setting keys and tuned values)."""
    runs = getattr(loaded, "point_runs", None)
    runs = loaded.runs if runs is None else runs
    runs = runs[runs["status"] == "complete"]
    return runs_of_setting(runs, row, (*keys, *loaded.design.get("tuned_keys", ())))


def training_curves(loaded, sa: StudyAnalysis, labels: Labels) -> CurvesFigure | None:
    """Curves of the frontier settings' runs, or None when no run recorded one."""
    rows, final = [], []
    for g in sa.groups:
        for _, s in compute_frontier(g.points).iterrows():
            runs = setting_runs(loaded, s, sa.setting_keys)
            curves = [np.asarray(c, dtype=float) for c in runs["curve"] if c is not None and len(c) >= 2]
            if not curves:
                continue
            seen = curves[0][:, 0]
            loss = np.mean([np.interp(np.log(seen), np.log(c[:, 0]), c[:, 1]) for c in curves], axis=0)
            per_unit = float(s["C"]) / float(s["D"])  # training FLOPs per example or token
            rows.append(pd.DataFrame({"group": g.label, "run": s["run"], "N": s["N"], "C": seen * per_unit,
                                      "train_loss": loss}))
            final.append({"group": g.label, "run": s["run"], "C": s["C"], "loss": s["loss"]})
    if not rows:
        return None
    return CurvesFigure(pd.concat(rows, ignore_index=True), pd.DataFrame(final), labels)


def generic_figures(loaded, sa: StudyAnalysis) -> tuple[list, dict[str, str]]:
    """Every generic figure the study's data allows, and for the others why not."""
    points = pd.concat([g.points for g in sa.groups], ignore_index=True)
    labels = Labels(points, sa.setting_keys)
    figures = [loss_vs_compute(sa, labels), compute_optimal_sizes(sa), isoflop_figure(sa, labels),
               chinchilla_figure(sa, labels)]
    missing = {}
    from scalinglab.report.trust import adaptive_rounds_figure, law_selection_figure, variants_figure

    law_why = "; ".join(f"{g.label}: {g.skipped['law_selection']}" for g in sa.groups if "law_selection" in g.skipped)
    optional = [("law-selection", law_selection_figure(sa), law_why or "no law selection")]
    if sa.variants is not None or sa.variants_notes:
        optional.append(("variants", variants_figure(sa), "; ".join(sa.variants_notes)))
    if sa.info.get("adaptive"):
        optional.append(("adaptive-rounds", adaptive_rounds_figure(sa.info), "no round of the adaptive study is done"))
    for key, fig, why in (*optional, ("error-rate", error_rate_figure(sa, labels), "the runs record no accuracy"),
                          ("loss-n-d", model_data_views(sa, labels),
                           "the design is not an N x D grid (each size at one data size per budget)"),
                          ("training-curves", training_curves(loaded, sa, labels), "no run recorded a training curve")):
        if fig is None:
            missing[key] = why
        else:
            figures.append(fig)
    order = ["loss-compute", "error-rate", "compute-optimal", "loss-n-d", "isoflop", "chinchilla", "law-selection",
             "variants", "adaptive-rounds", "training-curves"]
    figures.sort(key=lambda f: order.index(f.key))
    return figures, missing
