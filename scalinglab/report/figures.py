"""The report's figures as plain data, computed from the library's own analysis calls.

Three layers, each testable on its own:

1. :func:`analyse_study` gathers every number the report shows from the same
   calls the rest of scalinglab makes: :func:`scalinglab.families.mnist.study.analyse_mnist`
   for the frontier law and Approach 1 exponents, and the estimators of
   :mod:`scalinglab.fit` (IsoFLOP profiles, Chinchilla fit, bootstrap,
   back-test) with the settings of the ``scalinglab fit`` CLI.
2. One function per figure (``loss_vs_compute``, ``compute_optimal_sizes``,
   ...) turns that into a figure-data dataclass of DataFrames and numbers.
3. ``figure.chart()`` lays the data out as a renderer-neutral :class:`Chart`
   (panels of point, line and band series), which :mod:`.html` draws as
   inline SVG and :mod:`.static` draws with matplotlib.

Nothing here refits a law differently for display: curves are evaluated
from the fitted parameters, bands from the bootstrap resamples, parabolas
from the IsoFLOP profile coefficients.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import ConfigError, FitError
from scalinglab.fit import (
    Approach1Result,
    BacktestResult,
    ChinchillaFit,
    IsoFlopResult,
    approach1,
    backtest,
    bootstrap,
    bootstrap_statistic,
    fit_frontier,
    group_budgets,
    isoflop_profiles,
)
from scalinglab.store import RunStore
from scalinglab.families.mnist.study import FAMILY, FrontierAnalysis, analyse_mnist, select_lr, with_config_defaults

MIN_CHINCHILLA_POINTS = 8  # a 5-parameter law on fewer settings says nothing
BUDGET_TOLERANCE = 0.05  # decades: group_budgets' default, as `scalinglab fit --law isoflop`


# ===================================================================== chart model

@dataclass(frozen=True, slots=True)
class Series:
    """One thing drawn in a panel: points (optionally with error bars), a line, or a band."""

    name: str  # legend entry (series with the same name share one entry)
    x: tuple[float, ...]
    y: tuple[float, ...]  # for a band: unused (lo and hi are drawn)
    kind: str = "points"  # "points" | "line" | "band"
    color: str = "#333333"
    lo: tuple[float, ...] | None = None  # error bar (points) or lower edge (band)
    hi: tuple[float, ...] | None = None
    tips: tuple[str, ...] | None = None  # hover text: one per point, or one for a line
    marker: str = "o"  # "o" circle, "s" square, "d" diamond, "^" triangle, "x" cross
    hollow: bool = False
    dash: bool = False
    size: float = 1.0  # relative marker size / line width
    legend: bool = True  # listed in the legend (else it toggles with ``group``)
    group: str | None = None  # legend entry this series toggles with; default its own name

    @property
    def toggle(self) -> str:
        return self.group or self.name


@dataclass(frozen=True, slots=True)
class Panel:
    """One set of axes."""

    title: str
    xlabel: str
    ylabel: str
    series: tuple[Series, ...]
    xlog: bool = True
    ylog: bool = True
    note: str = ""  # shown under the panel (or in it, when it has no data)


@dataclass(frozen=True, slots=True)
class Table:
    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Chart:
    """A figure as the renderers see it: titled panels, notes and tables."""

    key: str  # file stem and HTML id
    title: str
    question: str  # what the figure answers, in a sentence
    panels: tuple[Panel, ...]
    columns: int = 2  # panels per row
    notes: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()

    def legend(self) -> list[Series]:
        """The first series of each legend entry, in drawing order."""
        seen: dict[str, Series] = {}
        for panel in self.panels:
            for s in panel.series:
                if s.legend and s.toggle not in seen:
                    seen[s.toggle] = s
        return list(seen.values())

    def plot(self):
        """A matplotlib Figure of this chart (for notebooks)."""
        from scalinglab.report.static import draw_chart

        return draw_chart(self)

    def _repr_html_(self) -> str:
        from scalinglab.report.html import chart_html

        return chart_html(self)


# ===================================================================== formatting

def fmt_num(x: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant figures; scientific outside [1e-3, 1e5)."""
    if x is None or not np.isfinite(x):
        return "—"
    if x == 0:
        return "0"
    if 1e3 <= abs(x) < 1e5:
        return f"{float(f'{x:.{digits}g}'):,.0f}"
    if 1e-3 <= abs(x) < 1e3:
        return f"{x:.{digits}g}"
    return f"{x:.{max(digits - 1, 0)}e}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def fmt_dec(x: float | None, decimals: int = 3) -> str:
    """A number with fixed decimals (for exponents), never "-0.000"."""
    if x is None or not np.isfinite(x):
        return "—"
    return f"{round(float(x), decimals) + 0.0:.{decimals}f}"


def fmt_ci(estimate: float | None, ci, digits: int = 3, *, decimals: int | None = None) -> str:
    """``0.390 [0.292, 0.648]``; the interval is left out when the bootstrap gave none.

    ``decimals`` gives fixed decimals (exponents), else ``digits`` significant figures.
    """
    f = (lambda v: fmt_dec(v, decimals)) if decimals is not None else (lambda v: fmt_num(v, digits))
    lo, hi = (ci or (None, None))
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return f(estimate)
    return f"{f(estimate)} [{f(lo)}, {f(hi)}]"


def fmt_fraction(f: float) -> str:
    """1, 1/2, 1/4 ... for the exercise's halvings; else 3 significant figures."""
    if f == 1:
        return "1"
    inv = 1.0 / f
    if abs(inv - round(inv)) < 1e-9:
        return f"1/{int(round(inv))}"
    return f"{f:.3g}"


def dropout_label(d: float) -> str:
    return "no dropout" if d == 0 else f"dropout {d:g}"


def run_tip(row) -> str:
    """Hover text of a seed-mean point."""
    sd = row.get("loss_sd", float("nan"))
    spread = f" ± {sd:.4f}" if sd == sd else ""
    seeds = int(row.get("n_seeds", 1))
    return (f"{row['run']}\nC = {fmt_num(row['C'])} FLOPs\nloss = {row['loss']:.4f}{spread} "
            f"({seeds} seed{'s' if seeds != 1 else ''})\naccuracy = {100 * row['acc']:.2f}%\n"
            f"N = {int(row['N']):,} params, D = {int(row['D']):,} examples\nlr = {row['lr']:g}")


def _t(values) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=float))


def _palette(values, cmap: str, lo: float = 0.0, hi: float = 0.85) -> dict:
    """Colours for sorted distinct ``values`` along a matplotlib colormap (hex strings)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    values = sorted(set(values))
    cm = colormaps[cmap]
    n = max(len(values) - 1, 1)
    return {v: to_hex(cm(lo + (hi - lo) * i / n)) for i, v in enumerate(values)}


DROPOUT_COLORS = ("#1f5fa8", "#c8372d", "#2f8f4e", "#8a4fb0", "#b8860b")
FRONTIER_COLOR = "#111111"
FIT_COLOR = "#d1495b"
N_COLOR, D_COLOR = "#1f5fa8", "#d97b16"


def _dropout_colors(dropouts) -> dict:
    return {d: DROPOUT_COLORS[i % len(DROPOUT_COLORS)] for i, d in enumerate(sorted(set(dropouts)))}


# ===================================================================== the analysis

@dataclass
class IsoFlopOutcome:
    """Approach 2 on one dropout setting: profiles, exponents and how budgets were formed."""

    runs: pd.DataFrame  # the settings, with 'budget' (the nominal C of their group)
    result: IsoFlopResult | None
    summary: dict  # result.to_dict() plus bootstrap se/ci, as `scalinglab fit --law isoflop --json`
    note: str


@dataclass
class ChinchillaOutcome:
    """Approach 3 on one dropout setting: the fit, its bootstrap and the back-test."""

    fit: ChinchillaFit | None
    summary: dict  # fit.to_dict() plus bootstrap se/ci, as `scalinglab fit --law chinchilla --json`
    backtest: BacktestResult | None
    note: str


@dataclass
class DropoutAnalysis:
    """Every analysis of one dropout setting."""

    frontier: FrontierAnalysis  # from scalinglab.families.mnist.study.analyse_mnist
    approach1: Approach1Result  # same call as inside analyse_frontier; gives the line coefficients
    fit_samples: pd.DataFrame | None  # bootstrap resamples of (E, A, alpha) behind frontier.fit's ci
    error_fit: dict | None  # frontier law of the error rate 1 - accuracy (params, se, ci)
    isoflop: IsoFlopOutcome
    chinchilla: ChinchillaOutcome

    @property
    def dropout(self) -> float:
        return self.frontier.dropout

    @property
    def points(self) -> pd.DataFrame:
        return self.frontier.points


@dataclass
class StudyAnalysis:
    """A study's runs and all analyses the report draws."""

    study: str
    db: str
    info: dict
    runs: pd.DataFrame  # every run of the study, config defaults filled in
    chosen: pd.DataFrame  # complete runs at the LR selected per setting (select_lr)
    dropouts: list[DropoutAnalysis]
    settings: dict  # n_resamples, chinchilla_starts, level
    created: float = field(default_factory=time.time)

    @property
    def lr_tuned(self) -> bool:
        done = self.runs[self.runs.status == "complete"]
        return bool(len(done)) and done.groupby(["width", "fraction", "dropout"]).lr.nunique().max() > 1

    def to_dict(self) -> dict:
        """The numbers behind the report (JSON-ready apart from numpy scalars)."""
        return {"study": self.study, "db": self.db, "settings": self.settings,
                "analyses": [{**d.frontier.to_dict(), "error_rate_fit": d.error_fit,
                              "isoflop": d.isoflop.summary, "chinchilla": d.chinchilla.summary,
                              "backtest": None if d.chinchilla.backtest is None else
                              {k: v for k, v in d.chinchilla.backtest.to_dict().items() if k != "fit"}}
                             for d in self.dropouts]}


def resolve_study(db: str | Path, study: str | None = None) -> tuple[str, str]:
    """(name, family) of ``study`` in ``db``; ``None`` picks the most recently created study."""
    if not Path(db).exists():
        raise ConfigError(f"database {db} does not exist; run a study first or check --db")
    with RunStore(db) as store:
        studies = store.studies()
    if studies.empty:
        raise ConfigError(f"{db} holds no studies; run `scalinglab study mnist --db {db}` first")
    if study is None:
        row = studies.iloc[-1]
    else:
        match = studies[studies.name == study]
        if match.empty:
            raise ConfigError(f"no study named {study!r} in {db}; studies: {', '.join(studies.name)}")
        row = match.iloc[0]
    return str(row["name"]), str(row["family"])


def analyse_study(db: str | Path, study: str | None = None, *, n_resamples: int = 200,
                  chinchilla_starts: str = "hoffmann",
                  analyses: list[FrontierAnalysis] | None = None) -> StudyAnalysis:
    """Load a study's runs and run every analysis of the report on them.

    ``n_resamples`` is the bootstrap size of every interval (as ``--bootstrap``
    of ``scalinglab fit``); ``chinchilla_starts`` is its ``--grid``.
    ``analyses``: the study's ``analyse_mnist`` result, if the caller has it.
    """
    name, family = resolve_study(db, study)
    if family != FAMILY:
        raise ConfigError(f"study {name!r} holds {family} runs; the report covers MNIST CNN studies "
                          f"({FAMILY}); pass --study with one of those")
    with RunStore(db) as store:
        info = store.study_info(name)
        runs = store.runs(study=name)
    if runs.empty or not (runs.status == "complete").any():
        raise ConfigError(f"study {name!r} has no complete runs yet; finish (or resume) its sweep first")
    runs = with_config_defaults(runs)
    if analyses is None:
        analyses = analyse_mnist(runs, n_resamples=n_resamples)
    chosen = select_lr(runs)
    dropouts = [_analyse_dropout(fa, n_resamples=n_resamples, starts=chinchilla_starts) for fa in analyses]
    level = analyses[0].fit.get("bootstrap", {}).get("level", 0.95)
    return StudyAnalysis(study=name, db=str(db), info=info, runs=runs, chosen=chosen, dropouts=dropouts,
                         settings={"n_resamples": n_resamples, "chinchilla_starts": chinchilla_starts,
                                   "level": level, "budget_tolerance_decades": BUDGET_TOLERANCE})


def _analyse_dropout(fa: FrontierAnalysis, *, n_resamples: int, starts: str) -> DropoutAnalysis:
    points = fa.points
    return DropoutAnalysis(frontier=fa, approach1=approach1(points),
                           fit_samples=fa.fit_samples,
                           error_fit=_error_rate_fit(points, n_resamples),
                           isoflop=_isoflop(points, n_resamples), chinchilla=_chinchilla(points, n_resamples, starts))


def _error_rate_fit(points: pd.DataFrame, n_resamples: int) -> dict | None:
    """L = E + A C^-alpha on the frontier of the error rate 1 - accuracy (same estimator as the loss)."""
    err = points.assign(loss=1.0 - points["acc"])
    if not (err["loss"] > 0).all():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_frontier(err)
            boot = bootstrap(fit, err, n_resamples=n_resamples, cluster=None, random_state=0)
    except FitError:
        return None
    return {"params": dict(fit.params_), **boot.to_dict(), "converged": bool(fit.converged_)}


def _isoflop(points: pd.DataFrame, n_resamples: int) -> IsoFlopOutcome:
    """Approach 2 with budgets formed as ``scalinglab fit --law isoflop`` forms them."""
    labels = group_budgets(points["C"].to_numpy(float), tolerance=BUDGET_TOLERANCE)
    lc = np.log(points["C"].to_numpy(float))
    centre = {k: float(np.exp(lc[labels == k].mean())) for k in np.unique(labels)}
    runs = points.assign(budget=[centre[k] for k in labels])
    try:
        result = isoflop_profiles(runs, budget="budget")
    except FitError as exc:
        return IsoFlopOutcome(runs=runs, result=None, summary={}, note=str(exc))
    summary = result.to_dict()
    if np.isfinite(result.a):
        def stat(r):
            rr = isoflop_profiles(r, budget="budget")
            return {"a": rr.a, "b": rr.b}

        summary.update(bootstrap_statistic(stat, runs, n_resamples=n_resamples, cluster=None,
                                           random_state=0).to_dict())
    prof = result.profiles
    n_min, n_in = int(prof["N_opt"].notna().sum()), int(prof["inside"].sum())
    note = (f"{len(prof)} budgets: {n_in} with a minimum inside the sampled sizes, {n_min - n_in} extrapolated, "
            f"{len(prof) - n_min} without a parabola (fewer than 3 sizes, or not convex)")
    if not np.isfinite(result.a):
        note += "; fewer than 2 minima inside the sampled sizes, so no exponent"
    return IsoFlopOutcome(runs=runs, result=result, summary=summary, note=note)


def backtest_threshold(flops: np.ndarray, *, holdout: float = 0.2) -> float | None:
    """FLOPs split of the back-test: the largest ~``holdout`` share of settings are predicted."""
    c = np.sort(np.asarray(flops, dtype=float))
    n_test = max(1, int(round(holdout * c.size)))
    if c.size - n_test < MIN_CHINCHILLA_POINTS:
        return None
    return float(c[c.size - n_test - 1])


def _chinchilla(points: pd.DataFrame, n_resamples: int, starts: str) -> ChinchillaOutcome:
    """Approach 3 with the ``scalinglab fit --law chinchilla`` estimator, bootstrap and back-test."""
    if len(points) < MIN_CHINCHILLA_POINTS:
        return ChinchillaOutcome(None, {}, None, f"only {len(points)} settings; the 5-parameter Chinchilla "
                                 f"law needs at least {MIN_CHINCHILLA_POINTS}")
    est = ChinchillaFit(starts=starts)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # kept in est.convergence_warnings_
            est.fit(points)
            summary = est.to_dict()
            summary.update(bootstrap(est, points, n_resamples=n_resamples, cluster=None,
                                     random_state=0).to_dict())
            threshold = backtest_threshold(points["C"].to_numpy(float))
            bt = None if threshold is None else backtest(est, points, holdout_above=threshold)
    except FitError as exc:
        return ChinchillaOutcome(None, {}, None, str(exc))
    notes = list(est.convergence_warnings_)
    if bt is None:
        notes.append("too few settings to hold any out for a back-test")
    return ChinchillaOutcome(est, summary, bt, "; ".join(notes))


# ===================================================================== figure data

def _width_colors(sa: StudyAnalysis) -> dict:
    return _palette(sa.chosen["width"].unique(), "viridis", 0.0, 0.9)


def _fraction_colors(sa: StudyAnalysis) -> dict:
    return _palette(sa.chosen["fraction"].unique(), "plasma", 0.05, 0.8)


def _several(sa: StudyAnalysis) -> bool:
    return len(sa.dropouts) > 1


def _width_series(points: pd.DataFrame, y: str, colors: dict, *, errors: bool = False,
                  tip=run_tip) -> list[Series]:
    out = []
    for w, g in points.groupby("width"):
        lo = hi = None
        if errors and g["loss_sd"].notna().any():
            sd = g["loss_sd"].fillna(0).to_numpy(float)
            lo, hi = _t(g[y] - sd), _t(g[y] + sd)
        out.append(Series(f"width {w}", _t(g["C"]), _t(g[y]), color=colors[w], lo=lo, hi=hi,
                          tips=tuple(tip(r) for _, r in g.iterrows())))
    return out


def _cgrid(c, n: int = 80) -> np.ndarray:
    c = np.asarray(c, dtype=float)
    return np.geomspace(c.min(), c.max(), n)


def _law_curve(params: dict, samples: pd.DataFrame | None, grid: np.ndarray, level: float) -> pd.DataFrame:
    """E + A C^-alpha on ``grid`` and its pointwise bootstrap percentile band."""
    with np.errstate(over="ignore", invalid="ignore"):
        loss = params["E"] + params["A"] * grid ** -params["alpha"]
        lo = hi = np.full_like(grid, np.nan)
        if samples is not None:
            ok = samples[samples["converged"]] if "converged" in samples else samples
            if len(ok) >= 2:
                pred = (ok["E"].to_numpy()[:, None]
                        + ok["A"].to_numpy()[:, None] * grid[None, :] ** -ok["alpha"].to_numpy()[:, None])
                lo, hi = np.nanpercentile(pred, [50 * (1 - level), 50 * (1 + level)], axis=0)
    return pd.DataFrame({"C": grid, "loss": loss, "lo": lo, "hi": hi})


@dataclass(frozen=True)
class FrontierPanelData:
    dropout: float
    points: pd.DataFrame  # seed-mean settings: run, width, fraction, N, D, C, loss, loss_sd, acc, lr, n_seeds
    frontier: pd.DataFrame  # the settings on the compute-efficient frontier
    params: dict  # E, A, alpha of the frontier law
    ci: dict  # bootstrap percentile intervals per parameter
    curve: pd.DataFrame  # C, loss (the fitted law), lo, hi (its pointwise band; NaN without resamples)


@dataclass(frozen=True)
class LossComputeFigure:
    """Validation loss vs training compute: all settings, the frontier and its power law."""

    panels: list[FrontierPanelData]
    level: float
    several: bool
    widths: dict  # width -> colour
    key: str = "loss-compute"

    def chart(self) -> Chart:
        panels = []
        for p in self.panels:
            tag = f" ({dropout_label(p.dropout)})" if self.several else ""
            fit_name = f"fit{tag}: L = E + A·C^−α, α = {fmt_ci(p.params['alpha'], p.ci.get('alpha'), decimals=3)}"
            series = _width_series(p.points, "loss", self.widths, errors=True)
            if p.curve["lo"].notna().any():
                series.append(Series(f"{round(100 * self.level)}% band", _t(p.curve["C"]), _t(p.curve["loss"]),
                                     kind="band", color=FIT_COLOR, lo=_t(p.curve["lo"]), hi=_t(p.curve["hi"]),
                                     legend=False, group=fit_name))
            series.append(Series(fit_name, _t(p.curve["C"]), _t(p.curve["loss"]), kind="line", color=FIT_COLOR,
                                 size=1.6, tips=(f"L(C) = {fmt_num(p.params['E'], 4)} + {fmt_num(p.params['A'])}"
                                                 f"·C^−{p.params['alpha']:.3f}",)))
            series.append(Series("compute-efficient frontier", _t(p.frontier["C"]), _t(p.frontier["loss"]),
                                 kind="line", color=FRONTIER_COLOR, dash=True, size=1.0))
            series.append(Series("compute-efficient frontier", _t(p.frontier["C"]), _t(p.frontier["loss"]),
                                 color=FRONTIER_COLOR, hollow=True, size=1.5, legend=False,
                                 tips=tuple("frontier: " + run_tip(r) for _, r in p.frontier.iterrows())))
            panels.append(Panel(dropout_label(p.dropout).capitalize(), "training compute C (FLOPs)",
                                "validation loss", tuple(series)))
        rows = []
        for p in self.panels:
            for _, r in p.frontier.iterrows():
                sd = f" ± {r['loss_sd']:.4f}" if r["loss_sd"] == r["loss_sd"] else ""
                rows.append((dropout_label(p.dropout), str(r["run"]), fmt_num(r["C"]), f"{r['loss']:.4f}{sd}",
                             f"{100 * r['acc']:.2f}%", f"{r['lr']:g}"))
        table = Table("Settings on the compute-efficient frontier (seed means ± s.d.)",
                      ("setting", "run", "C (FLOPs)", "validation loss", "accuracy", "lr"), tuple(rows))
        return Chart(self.key, "Validation loss vs training compute",
                     "Does the compute-efficient frontier follow a power law, and with what exponent?",
                     tuple(panels), columns=min(len(panels), 2),
                     notes=(f"Each point is one (width, data fraction) setting, averaged over seeds (bars: ± one "
                            f"s.d.); colour is width. The frontier keeps each setting that beats every cheaper one. "
                            f"The red line is L = E + A·C^−α fitted to the frontier (Huber loss on log residuals), "
                            f"the band its pointwise {round(100 * self.level)}% bootstrap interval.",),
                     tables=(table,))


def loss_vs_compute(sa: StudyAnalysis) -> LossComputeFigure:
    level = sa.settings["level"]
    panels = []
    for d in sa.dropouts:
        fa = d.frontier
        curve = _law_curve(fa.fit["params"], d.fit_samples, _cgrid(fa.points["C"]), level)
        panels.append(FrontierPanelData(d.dropout, fa.points, fa.frontier, fa.fit["params"], fa.fit.get("ci", {}),
                                        curve))
    return LossComputeFigure(panels, level, _several(sa), _width_colors(sa))


@dataclass(frozen=True)
class AccuracyPanelData:
    dropout: float
    points: pd.DataFrame
    frontier: pd.DataFrame  # the accuracy frontier: highest accuracy at or below each C
    error_fit: dict | None  # E + A C^-alpha of the error rate's frontier
    curve: pd.DataFrame | None  # C, error (from error_fit)


@dataclass(frozen=True)
class AccuracyFigure:
    """Validation accuracy vs compute (as error rate, log scale) and accuracy vs loss."""

    panels: list[AccuracyPanelData]
    several: bool
    widths: dict
    dropouts: dict  # dropout -> colour
    key: str = "accuracy-compute"

    def chart(self) -> Chart:
        panels = []
        for p in self.panels:
            pts = p.points.assign(err=1 - p.points["acc"])
            series = _width_series(pts, "err", self.widths)
            if p.curve is not None:
                tag = f" ({dropout_label(p.dropout)})" if self.several else ""
                e = p.error_fit
                series.append(Series(f"fit{tag}: error = E + A·C^−α, α = "
                                     f"{fmt_ci(e['params']['alpha'], e.get('ci', {}).get('alpha'), decimals=3)}",
                                     _t(p.curve["C"]), _t(p.curve["error"]), kind="line", color=FIT_COLOR, size=1.6))
            series.append(Series("accuracy frontier", _t(p.frontier["C"]), _t(1 - p.frontier["acc"]), kind="line",
                                 color=FRONTIER_COLOR, dash=True))
            series.append(Series("accuracy frontier", _t(p.frontier["C"]), _t(1 - p.frontier["acc"]),
                                 color=FRONTIER_COLOR, hollow=True, size=1.5, legend=False,
                                 tips=tuple("accuracy frontier: " + run_tip(r) for _, r in p.frontier.iterrows())))
            panels.append(Panel(dropout_label(p.dropout).capitalize(), "training compute C (FLOPs)",
                                "validation error rate (1 − accuracy)", tuple(series)))
        rel = []
        for p in self.panels:
            pts = p.points
            rel.append(Series(dropout_label(p.dropout), _t(pts["loss"]), _t(1 - pts["acc"]),
                              color=self.dropouts[p.dropout], tips=tuple(run_tip(r) for _, r in pts.iterrows())))
        panels.append(Panel("Accuracy tracks loss", "validation loss", "validation error rate (1 − accuracy)",
                            tuple(rel)))
        best = max(self.panels, key=lambda p: p.frontier["acc"].max())
        top = best.frontier.loc[best.frontier["acc"].idxmax()]
        return Chart(self.key, "Validation accuracy vs compute",
                     "How does accuracy behave as compute grows?", tuple(panels), columns=min(len(panels), 3),
                     notes=("Accuracy is shown as the error rate 1 − accuracy on a log scale, where a power law is "
                            "a straight line. The red line fits E + A·C^−α to the frontier of the error rate, with "
                            "the same estimator as the loss frontier.",
                            f"Best accuracy: {100 * top['acc']:.2f}% ({top['run']}, C = {fmt_num(top['C'])} FLOPs)."))


def accuracy_vs_compute(sa: StudyAnalysis) -> AccuracyFigure:
    panels = []
    for d in sa.dropouts:
        curve = None
        if d.error_fit is not None:
            grid = _cgrid(d.points["C"])
            curve = _law_curve(d.error_fit["params"], None, grid, sa.settings["level"]).rename(
                columns={"loss": "error"})[["C", "error"]]
        panels.append(AccuracyPanelData(d.dropout, d.points, d.frontier.acc_frontier, d.error_fit, curve))
    return AccuracyFigure(panels, _several(sa), _width_colors(sa), _dropout_colors(sa.chosen["dropout"]))


@dataclass(frozen=True)
class OptimalSizePanelData:
    dropout: float
    optimal: pd.DataFrame  # C, N_opt, D_opt, loss, run: the frontier settings (Approach 1)
    estimate: dict  # a, b, a_width
    ci: dict
    N_coef: float  # N_opt = N_coef C^a
    D_coef: float
    isoflop: pd.DataFrame | None  # C, N_opt, inside: IsoFLOP minima, for comparison


@dataclass(frozen=True)
class ComputeOptimalFigure:
    """Compute-optimal N and D vs compute per dropout setting, and the exponent table."""

    panels: list[OptimalSizePanelData]
    exponents: pd.DataFrame  # quantity, meaning, method, dropout, estimate, lo, hi
    level: float
    key: str = "compute-optimal"

    def chart(self) -> Chart:
        panels = []
        for p in self.panels:
            o = p.optimal
            grid = _cgrid(o["C"], 40)
            ci = p.ci
            tips_n = tuple(f"{r['run']}\nC = {fmt_num(r['C'])}\nN = {int(r['N_opt']):,} params"
                           for _, r in o.iterrows())
            tips_d = tuple(f"{r['run']}\nC = {fmt_num(r['C'])}\nD = {int(r['D_opt']):,} examples"
                           for _, r in o.iterrows())
            name_n = f"N_opt ∝ C^a, a = {fmt_ci(p.estimate['a'], ci.get('a'), decimals=3)}"
            name_d = f"D_opt ∝ C^b, b = {fmt_ci(p.estimate['b'], ci.get('b'), decimals=3)}"
            series = [Series("model size N (frontier runs)", _t(o["C"]), _t(o["N_opt"]), color=N_COLOR, tips=tips_n),
                      Series(name_n, _t(grid), _t(p.N_coef * grid ** p.estimate["a"]), kind="line", color=N_COLOR,
                             size=1.5),
                      Series("data size D (frontier runs)", _t(o["C"]), _t(o["D_opt"]), color=D_COLOR, marker="s",
                             tips=tips_d),
                      Series(name_d, _t(grid), _t(p.D_coef * grid ** p.estimate["b"]), kind="line", color=D_COLOR,
                             size=1.5)]
            if p.isoflop is not None and len(p.isoflop):
                iso = p.isoflop
                series.append(Series("N_opt from IsoFLOP minima", _t(iso["C"]), _t(iso["N_opt"]), color=N_COLOR,
                                     marker="x", tips=tuple(f"IsoFLOP minimum\nC = {fmt_num(r['C'])}\nN_opt = "
                                                            f"{fmt_num(r['N_opt'])}" for _, r in iso.iterrows())))
            panels.append(Panel(dropout_label(p.dropout).capitalize(), "training compute C (FLOPs)",
                                "parameters N / training examples D", tuple(series)))
        drops = sorted(self.exponents["dropout"].unique())
        rows = []
        for (q, meaning, method), g in self.exponents.groupby(["quantity", "meaning", "method"], sort=False):
            cells = []
            for d in drops:
                r = g[g["dropout"] == d]
                dec = None if q == "E" else 3
                cells.append("—" if r.empty else fmt_ci(r["estimate"].iloc[0], (r["lo"].iloc[0], r["hi"].iloc[0]),
                                                         decimals=dec))
            rows.append((q, meaning, method, *cells))
        table = Table(f"Exponents with {round(100 * self.level)}% bootstrap intervals, by dropout",
                      ("quantity", "meaning", "method", *(dropout_label(d) for d in drops)), tuple(rows))
        return Chart(self.key, "Compute-optimal model and data size",
                     "How should a compute budget be split between model size and data, and does dropout change it?",
                     tuple(panels), columns=min(len(panels), 2),
                     notes=("Points are the settings on the loss frontier (the compute-optimal run at each compute "
                            "level, Hoffmann et al.'s Approach 1); lines are least-squares fits of log N and log D "
                            "on log C. Intervals: bootstrap over settings, percentile.",),
                     tables=(table,))


def exponent_table(sa: StudyAnalysis) -> pd.DataFrame:
    """Every fitted exponent of the study, one row per (quantity, dropout), with its interval."""
    rows = []

    def add(q, meaning, method, d, est, ci):
        lo, hi = (ci or (None, None))
        rows.append({"quantity": q, "meaning": meaning, "method": method, "dropout": d,
                     "estimate": np.nan if est is None else float(est),
                     "lo": np.nan if lo is None else float(lo), "hi": np.nan if hi is None else float(hi)})

    for d in sa.dropouts:
        fit, a1 = d.frontier.fit, d.frontier.approach1
        add("α", "loss frontier L = E + A·C^−α", "frontier fit", d.dropout, fit["params"]["alpha"],
            fit.get("ci", {}).get("alpha"))
        add("E", "irreducible loss of the frontier law", "frontier fit", d.dropout, fit["params"]["E"],
            fit.get("ci", {}).get("E"))
        a1_ci = a1.get("ci", {})
        add("a", "N_opt ∝ C^a", "Approach 1 (frontier runs)", d.dropout, a1["estimate"]["a"], a1_ci.get("a"))
        add("b", "D_opt ∝ C^b", "Approach 1 (frontier runs)", d.dropout, a1["estimate"]["b"], a1_ci.get("b"))
        add("a_width", "width_opt ∝ C^a_width", "Approach 1 (frontier runs)", d.dropout, a1["estimate"]["a_width"],
            a1.get("ci", {}).get("a_width"))
        iso = d.isoflop.summary
        if iso and iso.get("a") is not None and np.isfinite(iso["a"]):
            add("a", "N_opt ∝ C^a", "Approach 2 (IsoFLOP)", d.dropout, iso["a"], iso.get("ci", {}).get("a"))
        ch = d.chinchilla.summary
        if ch:
            add("a", "N_opt ∝ C^a", "Approach 3 (Chinchilla fit)", d.dropout, ch["derived"]["a"], ch["ci"].get("a"))
            a3 = "Approach 3 (Chinchilla fit)"
            add("α_N", "exponent of N in L(N, D)", a3, d.dropout, ch["alpha"], ch["ci"].get("alpha"))
            add("β_D", "exponent of D in L(N, D)", a3, d.dropout, ch["beta"], ch["ci"].get("beta"))
        if d.error_fit is not None:
            add("α_err", "error-rate frontier E + A·C^−α", "frontier fit", d.dropout,
                d.error_fit["params"]["alpha"], d.error_fit.get("ci", {}).get("alpha"))
    return pd.DataFrame(rows)


def compute_optimal_sizes(sa: StudyAnalysis) -> ComputeOptimalFigure:
    panels = []
    for d in sa.dropouts:
        a1 = d.frontier.approach1
        iso = None
        if d.isoflop.result is not None:
            prof = d.isoflop.result.profiles
            iso = prof[prof["N_opt"].notna() & prof["inside"]][["C", "N_opt", "inside"]].reset_index(drop=True)
        panels.append(OptimalSizePanelData(d.dropout, d.approach1.points, a1["estimate"], a1.get("ci", {}),
                                           d.approach1.N_coef, d.approach1.D_coef, iso))
    return ComputeOptimalFigure(panels, exponent_table(sa), sa.settings["level"])


@dataclass(frozen=True)
class KaplanViewsFigure:
    """Kaplan et al.'s two views: loss vs N per data fraction, loss vs D per width."""

    points: pd.DataFrame  # seed-mean settings of every dropout
    several: bool
    widths: dict
    fractions: dict
    key: str = "kaplan-views"

    def chart(self) -> Chart:
        panels = []
        for drop, pts in self.points.groupby("dropout"):
            tag = f" ({dropout_label(drop)})" if self.several else ""
            by_f = [Series(f"fraction {fmt_fraction(f)}", _t(g["N"]), _t(g["loss"]), kind="line",
                           color=self.fractions[f]) for f, g in pts.sort_values("N").groupby("fraction")]
            by_f += [Series(f"fraction {fmt_fraction(f)}", _t(g["N"]), _t(g["loss"]), color=self.fractions[f],
                            legend=False, tips=tuple(run_tip(r) for _, r in g.iterrows()))
                     for f, g in pts.groupby("fraction")]
            by_w = [Series(f"width {w}", _t(g["D"]), _t(g["loss"]), kind="line", color=self.widths[w])
                    for w, g in pts.sort_values("D").groupby("width")]
            by_w += [Series(f"width {w}", _t(g["D"]), _t(g["loss"]), color=self.widths[w], marker="s", legend=False,
                            tips=tuple(run_tip(r) for _, r in g.iterrows())) for w, g in pts.groupby("width")]
            panels.append(Panel(f"Loss vs parameters, one line per data fraction{tag}", "parameters N",
                                "validation loss", tuple(by_f)))
            panels.append(Panel(f"Loss vs data, one line per width{tag}", "training examples D", "validation loss",
                                tuple(by_w)))
        return Chart(self.key, "Loss vs model size and vs data size",
                     "Where does more model stop helping because data runs out, and vice versa?", tuple(panels),
                     columns=2,
                     notes=("Kaplan et al. (2020, fig. 4) view: with little data, the loss-vs-N curves flatten or "
                            "bend up (the larger models overfit a small subset in one epoch); with a small model, "
                            "the loss-vs-D curves flatten (the model, not the data, is the bottleneck).",))


def kaplan_views(sa: StudyAnalysis) -> KaplanViewsFigure:
    points = pd.concat([d.points for d in sa.dropouts], ignore_index=True)
    return KaplanViewsFigure(points, _several(sa), _width_colors(sa), _fraction_colors(sa))


@dataclass(frozen=True)
class IsoFlopPanelData:
    dropout: float
    runs: pd.DataFrame  # settings with 'budget' and 'profile' (row of profiles)
    profiles: pd.DataFrame | None  # IsoFlopResult.profiles
    parabolas: pd.DataFrame  # profile, C, N, loss: each fitted parabola evaluated over its sampled N
    a: float
    ci: tuple | None
    N_coef: float
    note: str


@dataclass(frozen=True)
class IsoFlopFigure:
    """Loss vs N at fixed compute with parabola fits and minima, and N_opt vs C from them."""

    panels: list[IsoFlopPanelData]
    how: str  # how budgets were formed
    several: bool
    key: str = "isoflop"

    def chart(self) -> Chart:
        panels, rows = [], []
        for p in self.panels:
            tag = f" ({dropout_label(p.dropout)})" if self.several else ""
            left, right, far = [], [], 0
            if p.profiles is not None:
                prof = p.profiles
                shown = [i for i, r in prof.iterrows() if np.isfinite(r["N_opt"])]
                colors = _palette([prof.loc[i, "C"] for i in shown] or [0], "plasma", 0.05, 0.8)
                for i in shown:
                    r = prof.loc[i]
                    name = f"C ≈ {fmt_num(r['C'], 2)}"
                    col = colors[r["C"]]
                    g = p.runs[p.runs["profile"] == i]
                    left.append(Series(name, _t(g["N"]), _t(g["loss"]), color=col,
                                       tips=tuple(run_tip(x) for _, x in g.iterrows())))
                    par = p.parabolas[p.parabolas["profile"] == i]
                    left.append(Series(name, _t(par["N"]), _t(par["loss"]), kind="line", color=col, legend=False))
                    if r["inside"]:  # an extrapolated minimum is shown only on the right
                        left.append(Series(name, (r["N_opt"],), (r["loss_opt"],), color=col, marker="x", size=1.6,
                                           legend=False, tips=(f"minimum at C ≈ {fmt_num(r['C'])}\nN_opt = "
                                                               f"{fmt_num(r['N_opt'])}\nloss = {r['loss_opt']:.4f}",)))
                ok = prof[prof["N_opt"].notna()]
                inside, outside = ok[ok["inside"]], ok[~ok["inside"]]
                near = outside["N_opt"].between(outside["N_min_sampled"] / 10, outside["N_max_sampled"] * 10)
                far, outside = int((~near).sum()), outside[near]
                right.append(Series("minimum inside sampled sizes", _t(inside["C"]), _t(inside["N_opt"]), color=N_COLOR,
                                    tips=tuple(f"C ≈ {fmt_num(r['C'])}\nN_opt = {fmt_num(r['N_opt'])}"
                                               for _, r in inside.iterrows())))
                if len(outside):
                    right.append(Series("minimum outside (extrapolated, not fitted)", _t(outside["C"]),
                                        _t(outside["N_opt"]), color=N_COLOR, hollow=True,
                                        tips=tuple(f"C ≈ {fmt_num(r['C'])}\nN_opt = {fmt_num(r['N_opt'])}\n"
                                                   f"{r['note']}" for _, r in outside.iterrows())))
                if np.isfinite(p.a):
                    grid = _cgrid(ok["C"], 40)
                    right.append(Series(f"IsoFLOP{tag}: N_opt ∝ C^a, a = {fmt_ci(p.a, p.ci, decimals=3)}", _t(grid),
                                        _t(p.N_coef * grid ** p.a), kind="line", color=FIT_COLOR, size=1.5))
            panels.append(Panel(f"Loss vs N at fixed compute{tag}", "parameters N", "validation loss",
                                tuple(left), ylog=False, note=p.note if not left else ""))
            note = p.note if left else ""
            if far:
                note += f"; not drawn, being more than 10× beyond the sampled sizes: {far} extrapolated minima"
            panels.append(Panel(f"Optimal size per budget{tag}", "training compute C (FLOPs)", "N_opt (parameters)",
                                tuple(right), note=note))
            if p.profiles is not None:
                rows += [(dropout_label(p.dropout), fmt_num(r["C"]), str(int(r["n_runs"])), fmt_num(r["N_opt"]),
                          "—" if not np.isfinite(r["loss_opt"]) else f"{r['loss_opt']:.4f}",
                          "yes" if r["inside"] else "no", r["note"]) for _, r in p.profiles.iterrows()]
        table = Table("IsoFLOP budgets", ("setting", "C (FLOPs)", "settings", "N_opt", "loss at minimum",
                                          "inside sampled sizes", "note"), tuple(rows))
        return Chart(self.key, "IsoFLOP profiles", "At a fixed compute budget, which model size gives the lowest "
                     "loss?", tuple(panels), columns=2, tables=(table,) if rows else (),
                     notes=(self.how, "Lines are parabolas in log N fitted per budget (Hoffmann et al. 2022, "
                            "Approach 2), drawn over the sizes sampled; crosses mark their minima. A minimum "
                            "outside the sampled sizes is an extrapolation: it appears only on the right, hollow, "
                            "and is left out of the exponent fit."))


def isoflop_figure(sa: StudyAnalysis) -> IsoFlopFigure:
    panels = []
    for d in sa.dropouts:
        out = d.isoflop
        res = out.result
        runs = out.runs.copy()
        par_rows = []
        ci = None
        if res is not None:
            runs["profile"] = res.run_profile
            for i, r in res.profiles.iterrows():
                if not np.isfinite(r["N_opt"]):
                    continue
                n = np.geomspace(r["N_min_sampled"], r["N_max_sampled"], 30)
                loss = r["curvature"] * (np.log(n) - np.log(r["N_opt"])) ** 2 + r["loss_opt"]
                par_rows.append(pd.DataFrame({"profile": i, "C": r["C"], "N": n, "loss": loss}))
            ci = tuple(out.summary.get("ci", {}).get("a", (None, None)))
        parabolas = (pd.concat(par_rows, ignore_index=True) if par_rows
                     else pd.DataFrame(columns=["profile", "C", "N", "loss"]))
        panels.append(IsoFlopPanelData(
            d.dropout, runs, None if res is None else res.profiles, parabolas,
            float("nan") if res is None else res.a, ci, float("nan") if res is None else res.N_coef, out.note))
    n_budgets = [0 if p.profiles is None else int(p.profiles["N_opt"].notna().sum()) for p in panels]
    how = (f"The sweep has no IsoFLOP design, so budgets were formed from the settings themselves: sorted by "
           f"log10 C and split wherever the gap exceeds {BUDGET_TOLERANCE} decades (group_budgets, as "
           f"`scalinglab fit --law isoflop`); each budget's C is the geometric mean of its settings. Budgets with "
           f"fewer than 3 model sizes have no parabola. Budgets with a minimum: "
           + ", ".join(f"{n} ({dropout_label(p.dropout)})" for n, p in zip(n_budgets, panels)) + ".")
    return IsoFlopFigure(panels, how, _several(sa))


@dataclass(frozen=True)
class ChinchillaPanelData:
    dropout: float
    points: pd.DataFrame  # settings with 'predicted' and 'residual' (log measured/predicted)
    curves: pd.DataFrame  # fraction, N, loss: L(N, D_fraction) of the fit over the sampled N
    params: dict
    ci: dict
    derived: dict  # a, b, G
    backtest: pd.DataFrame | None  # run, C, N, D, measured, predicted, rel_error (the held-out settings)
    backtest_summary: dict | None
    threshold: float | None
    note: str


@dataclass(frozen=True)
class ChinchillaFigure:
    """Approach 3: the Chinchilla law on the study, its residuals and a back-test."""

    panels: list[ChinchillaPanelData]
    several: bool
    widths: dict
    fractions: dict
    key: str = "chinchilla"

    def chart(self) -> Chart:
        panels, rows = [], []
        for p in self.panels:
            tag = f" ({dropout_label(p.dropout)})" if self.several else ""
            if not p.params:
                panels.append(Panel(f"Chinchilla fit{tag}", "parameters N", "validation loss", (), note=p.note))
                continue
            pts = p.points
            fit = []
            for f, g in pts.groupby("fraction"):
                c = p.curves[p.curves["fraction"] == f]
                name = f"fraction {fmt_fraction(f)}"
                fit.append(Series(name, _t(g["N"]), _t(g["loss"]), color=self.fractions[f],
                                  tips=tuple(run_tip(r) + f"\npredicted = {r['predicted']:.4f}"
                                             for _, r in g.iterrows())))
                fit.append(Series(name, _t(c["N"]), _t(c["loss"]), kind="line", color=self.fractions[f], legend=False))
            res = [Series(f"width {w}", _t(g["C"]), _t(g["residual"]), color=self.widths[w],
                          tips=tuple(f"{r['run']}\nmeasured {r['loss']:.4f}, predicted {r['predicted']:.4f}"
                                     for _, r in g.iterrows())) for w, g in pts.groupby("width")]
            res.append(Series("zero", _t([pts["C"].min(), pts["C"].max()]), (0.0, 0.0), kind="line",
                              color="#888888", dash=True, legend=False))
            bt = []
            if p.backtest is not None:
                b = p.backtest
                train = pts[pts["C"] <= p.threshold]
                lim = [min(b["measured"].min(), b["predicted"].min(), train["loss"].min()),
                       max(b["measured"].max(), b["predicted"].max(), train["loss"].max())]
                bt.append(Series("y = x", _t(lim), _t(lim), kind="line", color="#888888", dash=True, legend=False))
                bt.append(Series("settings fitted (C ≤ split)", _t(train["loss"]), _t(train["predicted"]),
                                 color="#9a9a9a", size=0.8,
                                 tips=tuple(f"{r['run']} (fitted)" for _, r in train.iterrows())))
                s = p.backtest_summary
                bt.append(Series(f"held out (C > {fmt_num(p.threshold, 2)}): mean |error| "
                                 f"{100 * s['mean_abs_rel_error']:.1f}%", _t(b["measured"]), _t(b["predicted"]),
                                 color=FIT_COLOR, marker="d", size=1.3,
                                 tips=tuple(f"{r['run']}\nC = {fmt_num(r['C'])}\nmeasured {r['measured']:.4f}\n"
                                            f"predicted {r['predicted']:.4f} ({100 * r['rel_error']:+.1f}%)"
                                            for _, r in b.iterrows())))
            panels.append(Panel(f"Fit: L(N, D) per data fraction{tag}", "parameters N", "validation loss", tuple(fit)))
            panels.append(Panel(f"Residuals{tag}", "training compute C (FLOPs)", "log(measured / predicted)",
                                tuple(res), ylog=False))
            panels.append(Panel(f"Back-test: largest settings predicted{tag}", "measured loss", "predicted loss",
                                tuple(bt), note=p.note if not bt else ""))
            ci = p.ci
            rows.append((dropout_label(p.dropout), *(fmt_ci(p.params[k], ci.get(k)) for k in ("E", "A", "B")),
                         *(fmt_ci(p.params[k], ci.get(k), decimals=3) for k in ("alpha", "beta")),
                         *(fmt_ci(p.derived[k], ci.get(k), decimals=3) for k in ("a", "b"))))
        notes = ["L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022, Approach 3), fitted to the seed-mean settings "
                 "with the Huber recipe of `scalinglab fit --law chinchilla`. a = β/(α+β) and b = α/(α+β) assume "
                 "C ∝ N·D, which a CNN only roughly satisfies (its FLOPs per example grow with width, not exactly "
                 "with N); compare them with Approach 1's directly measured exponents.",
                 "Back-test: the law is refitted on the settings at or below the split and predicts the rest."]
        notes += [f"{dropout_label(p.dropout)}: {p.note}" for p in self.panels if p.note]
        table = Table("Chinchilla parameters (95% bootstrap intervals)",
                      ("setting", "E", "A", "B", "α", "β", "a", "b"), tuple(rows))
        return Chart(self.key, "Chinchilla parametric fit", "Does one law L(N, D) describe every run, and does it "
                     "predict the largest runs from the smaller ones?", tuple(panels), columns=3, notes=tuple(notes),
                     tables=(table,) if rows else ())


def chinchilla_figure(sa: StudyAnalysis) -> ChinchillaFigure:
    panels = []
    for d in sa.dropouts:
        ch = d.chinchilla
        if ch.fit is None:
            panels.append(ChinchillaPanelData(d.dropout, d.points, pd.DataFrame(), {}, {}, {}, None, None, None,
                                              ch.note))
            continue
        pts = d.points.copy()
        pts["predicted"] = ch.fit.predict(pts)
        pts["residual"] = np.log(pts["loss"] / pts["predicted"])
        curves = []
        for f, g in pts.groupby("fraction"):
            n = np.geomspace(g["N"].min(), g["N"].max(), 30)
            dd = np.full_like(n, float(g["D"].iloc[0]))
            curves.append(pd.DataFrame({"fraction": f, "N": n, "loss": ch.fit.predict(np.column_stack([n, dd]))}))
        bt = ch.backtest
        panels.append(ChinchillaPanelData(
            d.dropout, pts, pd.concat(curves, ignore_index=True), dict(ch.fit.params_), ch.summary.get("ci", {}),
            ch.summary.get("derived", {}), None if bt is None else bt.predictions,
            None if bt is None else bt.summary, None if bt is None else bt.threshold, ch.note))
    return ChinchillaFigure(panels, _several(sa), _width_colors(sa), _fraction_colors(sa))


@dataclass(frozen=True)
class LrFigure:
    """Learning-rate choices: loss vs LR per width, and the chosen LR per width."""

    by_lr: pd.DataFrame  # width, fraction, dropout, lr, loss (seed mean), loss_sd, n_seeds
    chosen: pd.DataFrame  # width, fraction, dropout, lr: the LR select_lr kept
    widths: dict
    fractions: dict
    key: str = "lr-choices"

    def chart(self) -> Chart:
        panels = []
        several = self.by_lr["dropout"].nunique() > 1
        for drop, g in self.by_lr.groupby("dropout"):
            tag = f" ({dropout_label(drop)})" if several else ""
            top = g["fraction"].max()
            g = g[g["fraction"] == top].sort_values("lr")
            ch = self.chosen[(self.chosen["dropout"] == drop) & (self.chosen["fraction"] == top)]
            series = []
            for w, gw in g.groupby("width"):
                series.append(Series(f"width {w}", _t(gw["lr"]), _t(gw["loss"]), kind="line", color=self.widths[w]))
                series.append(Series(f"width {w}", _t(gw["lr"]), _t(gw["loss"]), color=self.widths[w], legend=False,
                                     tips=tuple(f"width {w}, lr {r['lr']:g}\nloss {r['loss']:.4f} "
                                                f"({int(r['n_seeds'])} seeds)" for _, r in gw.iterrows())))
            best = g.merge(ch[["width", "lr"]], on=["width", "lr"])
            series.append(Series("chosen LR", _t(best["lr"]), _t(best["loss"]), color=FRONTIER_COLOR, hollow=True,
                                 size=1.8))
            panels.append(Panel(f"Loss vs base LR at fraction {fmt_fraction(top)}{tag}", "base learning rate",
                                "validation loss", tuple(series)))
            chosen = self.chosen[self.chosen["dropout"] == drop]
            lines = [Series(f"fraction {fmt_fraction(f)}", _t(c.sort_values("width")["width"]),
                            _t(c.sort_values("width")["lr"]), kind="line", color=self.fractions[f], size=0.9)
                     for f, c in chosen.groupby("fraction")]
            lines += [Series(f"fraction {fmt_fraction(f)}", _t(c["width"]), _t(c["lr"]), color=self.fractions[f],
                             legend=False, tips=tuple(f"width {r['width']}, fraction {fmt_fraction(r['fraction'])}\n"
                                                      f"chosen lr {r['lr']:g}" for _, r in c.iterrows()))
                      for f, c in chosen.groupby("fraction")]
            panels.append(Panel(f"Chosen base LR per width{tag}", "width", "chosen base LR", tuple(lines)))
        return Chart(self.key, "Learning-rate choices", "Which learning rate won at each width, and does the "
                     "1/√fan-in rule make it width-independent?", tuple(panels), columns=2,
                     notes=("Each layer's Adam LR is the base LR / √fan-in. If that rule transfers across widths, "
                            "the "
                            "chosen base LR is flat in width. Per (width, fraction, dropout) the LR with the lowest "
                            "seed-mean validation loss was kept for every other figure.",))


def lr_choices(sa: StudyAnalysis) -> LrFigure | None:
    """The LR figure, or None when each setting was trained at a single LR."""
    if not sa.lr_tuned:
        return None
    done = sa.runs[sa.runs["status"] == "complete"]
    by_lr = done.groupby(["width", "fraction", "dropout", "lr"]).agg(
        loss=("val_loss", "mean"), loss_sd=("val_loss", "std"), n_seeds=("seed", "nunique")).reset_index()
    chosen = sa.chosen[["width", "fraction", "dropout", "lr"]].drop_duplicates().reset_index(drop=True)
    return LrFigure(by_lr, chosen, _width_colors(sa), _fraction_colors(sa))


@dataclass(frozen=True)
class CurvesFigure:
    """Training loss against compute spent, for the settings on the frontier (seed means)."""

    curves: pd.DataFrame  # dropout, run, width, fraction, C (FLOPs spent so far), train_loss
    final: pd.DataFrame  # dropout, run, width, C, loss: the final validation loss of those settings
    widths: dict
    key: str = "training-curves"

    def chart(self) -> Chart:
        panels = []
        several = self.curves["dropout"].nunique() > 1
        for drop, g in self.curves.groupby("dropout"):
            series = []
            for run, c in g.groupby("run", sort=False):
                w = c["width"].iloc[0]
                series.append(Series(f"width {w}", _t(c["C"]), _t(c["train_loss"]), kind="line",
                                     color=self.widths[w], size=1.1, tips=(f"{run} (training loss)",)))
            f = self.final[self.final["dropout"] == drop]
            series.append(Series("final validation loss", _t(f["C"]), _t(f["loss"]), color=FRONTIER_COLOR,
                                 hollow=True, size=1.4, tips=tuple(f"{r['run']}\nvalidation loss {r['loss']:.4f}"
                                                                   for _, r in f.iterrows())))
            panels.append(Panel(dropout_label(drop).capitalize() if several else "Frontier runs",
                                "compute spent so far (FLOPs)", "training loss", tuple(series)))
        return Chart(self.key, "Training curves of the frontier runs", "How did the compute-optimal runs train, "
                     "and where does each one take over?", tuple(panels), columns=min(len(panels), 2),
                     notes=("Training loss (smoothed per logging interval, averaged over seeds) against the FLOPs "
                            "spent so far, for the settings on the loss frontier. Kaplan et al. take the frontier "
                            "over such curves; here each run is scored only at its end (one epoch, fixed schedule).",))


def training_curves(sa: StudyAnalysis) -> CurvesFigure | None:
    """Curves of the frontier settings' runs, or None when no run recorded a curve."""
    rows, final = [], []
    for d in sa.dropouts:
        for _, s in d.frontier.frontier.iterrows():
            sel = sa.chosen[(sa.chosen["width"] == s["width"]) & (sa.chosen["fraction"] == s["fraction"])
                            & (sa.chosen["dropout"] == s["dropout"])]
            curves = [np.asarray(c, dtype=float) for c in sel["curve"] if c is not None and len(c) >= 2]
            if not curves:
                continue
            seen = curves[0][:, 0]
            loss = np.mean([np.interp(np.log(seen), np.log(c[:, 0]), c[:, 1]) for c in curves], axis=0)
            per_example = float(s["C"]) / float(s["D"])  # training FLOPs per example seen
            rows.append(pd.DataFrame({"dropout": s["dropout"], "run": s["run"], "width": s["width"],
                                      "fraction": s["fraction"], "C": seen * per_example, "train_loss": loss}))
            final.append({"dropout": s["dropout"], "run": s["run"], "width": s["width"], "C": s["C"],
                          "loss": s["loss"]})
    if not rows:
        return None
    return CurvesFigure(pd.concat(rows, ignore_index=True), pd.DataFrame(final), _width_colors(sa))


# ===================================================================== words

@dataclass(frozen=True)
class Summary:
    """The plain-words summary at the top of the report."""

    findings: list[str]  # one paragraph per dropout setting
    allocation: Table  # the compute-optimal split the fits imply
    comparison: str  # dropout vs none, when both were run
    uncertain: list[str]  # what the study cannot settle


def _ci_of(d: dict, key: str):
    return d.get("ci", {}).get(key, (None, None))


def _r2(v: float) -> str:
    return f"{round(float(v), 2) + 0.0:.2f}"  # + 0.0: no "-0.00"


def _interval_words(est, ci, level: float = 0.95) -> str:
    lo, hi = ci or (None, None)
    if lo is None or hi is None:
        return f"{_r2(est)} (no interval)"
    return f"{_r2(est)} ({round(100 * level)}% interval {_r2(lo)} to {_r2(hi)})"


def study_summary(sa: StudyAnalysis) -> Summary:
    findings, uncertain, alloc_rows = [], [], []
    level = sa.settings["level"]
    n_settings = len(sa.dropouts[0].points)
    seeds = int(sa.chosen["seed"].nunique())
    for d in sa.dropouts:
        fa, a1 = d.frontier, d.frontier.approach1
        p = fa.fit["params"]
        est, ci1 = a1["estimate"], a1.get("ci", {})
        best = fa.frontier.iloc[-1]
        acc = fa.acc_frontier["acc"].max()
        lr_words = f", best of {sa.runs['lr'].nunique()} learning rates" if sa.lr_tuned else ""
        findings.append(
            f"{dropout_label(d.dropout).capitalize()} ({len(fa.points)} settings, {seeds} seed"
            f"{'s' if seeds != 1 else ''} each{lr_words}): on the compute-efficient frontier the validation loss "
            f"falls as L(C) = {fmt_num(p['E'], 3)} + {fmt_num(p['A'])}·C^−{p['alpha']:.3f}, exponent "
            f"α = {_interval_words(p['alpha'], _ci_of(fa.fit, 'alpha'), level)}. The compute-optimal model grows "
            f"as N_opt ∝ C^a with a = {_interval_words(est['a'], ci1.get('a'), level)}, and its data as "
            f"D_opt ∝ C^b with b = {_interval_words(est['b'], ci1.get('b'), level)}: each doubling of compute buys "
            f"{2 ** est['a']:.2f}× the parameters and {2 ** est['b']:.2f}× the examples (width ×"
            f"{2 ** est['a_width']:.2f}). The best run on the frontier, {best['run']} at C = {fmt_num(best['C'])} "
            f"FLOPs, reached loss {best['loss']:.4f}; the best accuracy was {100 * acc:.2f}%.")
        cmax = float(fa.points["C"].max())
        for mult in (1, 10):
            c = cmax * mult
            n_opt, d_opt = float(d.approach1.n_opt(c)), float(d.approach1.D_coef * c ** d.approach1.b)
            loss = p["E"] + p["A"] * c ** -p["alpha"]
            where = "the largest run" if mult == 1 else "10× the largest, extrapolated"
            beyond = " (more than the largest data size trained on)" if d_opt > fa.points["D"].max() else ""
            alloc_rows.append((dropout_label(d.dropout), f"{fmt_num(c)} ({where})", f"{fmt_num(n_opt)}",
                               f"{fmt_num(d_opt)}{beyond}", f"{loss:.4f}"))
        # what is uncertain
        lo, hi = _ci_of(fa.fit, "alpha")
        if lo is not None and hi is not None and hi > 2 * max(lo, 1e-12):
            uncertain.append(f"{dropout_label(d.dropout)}: the loss exponent α is poorly pinned down (interval "
                             f"{_r2(lo)} to {_r2(hi)}); the frontier has only {len(fa.frontier)} settings. "
                             "More compute "
                             "levels (and seeds) would narrow it.")
        if len(fa.frontier) < 5:
            uncertain.append(f"{dropout_label(d.dropout)}: only {len(fa.frontier)} settings lie on the frontier, so "
                             "its power law and the Approach 1 exponents rest on very few points.")
        lo, hi = ci1.get("b", (None, None))
        if lo is not None and hi is not None and hi - lo > 0.3:
            uncertain.append(f"{dropout_label(d.dropout)}: the data exponent b is uncertain ({_r2(lo)} to {_r2(hi)}).")
        if d.isoflop.result is None or not np.isfinite(d.isoflop.result.a):
            uncertain.append(f"{dropout_label(d.dropout)}: the IsoFLOP profiles give no exponent (too few model "
                             "sizes share a compute level); Approach 1 is the only direct estimate.")
        elif d.isoflop.result.warnings:
            n_out = int((d.isoflop.result.profiles["N_opt"].notna() & ~d.isoflop.result.profiles["inside"]).sum())
            if n_out:
                uncertain.append(f"{dropout_label(d.dropout)}: {n_out} IsoFLOP minima fall outside the sampled "
                                 "model sizes and are left out; the grid does not bracket the optimum there.")
        ch = d.chinchilla
        if ch.fit is None:
            uncertain.append(f"{dropout_label(d.dropout)}: no Chinchilla fit ({ch.note}).")
        else:
            if not ch.fit.converged_ or ch.fit.convergence_warnings_:
                uncertain.append(f"{dropout_label(d.dropout)}: the Chinchilla fit has convergence warnings; treat "
                                 "its parameters with care.")
            if ch.backtest is not None and ch.backtest.summary["mean_abs_rel_error"] > 0.05:
                uncertain.append(f"{dropout_label(d.dropout)}: the Chinchilla law misses the held-out largest "
                                 f"settings by {100 * ch.backtest.summary['mean_abs_rel_error']:.1f}% on average, so "
                                 "its extrapolations are not trustworthy.")
            a3 = ch.summary.get("derived", {}).get("a")
            if a3 is not None and abs(a3 - est["a"]) > 0.15:
                uncertain.append(f"{dropout_label(d.dropout)}: Approach 1 (a = {est['a']:.2f}) and the Chinchilla "
                                 f"fit (a = {a3:.2f}) disagree on how model size should grow; the Chinchilla value "
                                 "assumes C ∝ N·D, which the CNN only approximates.")
    if seeds < 3:
        uncertain.append(f"Only {seeds} seed{'s' if seeds != 1 else ''} per setting: the run-to-run noise (error "
                         "bars) is itself poorly estimated.")
    n_bad = int((sa.runs["status"] != "complete").sum())
    if n_bad:
        counts = sa.runs.loc[sa.runs["status"] != "complete", "status"].value_counts()
        uncertain.append("Not every run finished: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                         + ". Their settings are averaged over fewer seeds or missing.")
    comparison = ""
    if len(sa.dropouts) > 1:
        base, *others = sa.dropouts
        parts = []
        for o in others:
            for key, label, src in (("alpha", "loss exponent α", "fit"), ("a", "model-size exponent a", "a1"),
                                    ("b", "data exponent b", "a1")):
                if src == "fit":
                    e0, e1 = base.frontier.fit["params"][key], o.frontier.fit["params"][key]
                    c0, c1 = _ci_of(base.frontier.fit, key), _ci_of(o.frontier.fit, key)
                else:
                    e0, e1 = base.frontier.approach1["estimate"][key], o.frontier.approach1["estimate"][key]
                    c0, c1 = _ci_of(base.frontier.approach1, key), _ci_of(o.frontier.approach1, key)
                overlap = (None not in (*c0, *c1)) and c0[0] <= c1[1] and c1[0] <= c0[1]
                verdict = ("the intervals overlap, so this study cannot tell them apart" if overlap else
                           "the intervals do not overlap")
                parts.append(f"the {label} is {e1:.2f} with {dropout_label(o.dropout)} against {e0:.2f} without "
                             f"({verdict})")
        comparison = "Dropout: " + "; ".join(parts) + "."
    alloc = Table("Compute-optimal allocation implied by the Approach 1 fits (N_opt = N_coef·C^a, "
                  "D_opt = D_coef·C^b) and the loss the frontier law predicts there",
                  ("setting", "budget C (FLOPs)", "N_opt (params)", "D_opt (examples)", "predicted loss"),
                  tuple(alloc_rows))
    uncertain.append(f"Intervals are {round(100 * sa.settings['level'])}% bootstrap percentile intervals over the "
                     f"{n_settings} settings ({sa.settings['n_resamples']} resamples); they cover fitting noise, "
                     "not choices such as the one-epoch schedule or the LR grid.")
    return Summary(findings, alloc, comparison, uncertain)


@dataclass(frozen=True)
class Provenance:
    """How the study was run."""

    rows: list[tuple[str, str]]  # label, value
    grid: dict  # the study's grid as stored (or inferred from the runs)


def _distinct(values, fmt=None) -> str:
    vals = sorted({v for v in values if v is not None and v == v}, key=lambda v: (str(type(v)), v))
    fmt = fmt or (lambda v: f"{v:g}" if isinstance(v, float) else str(v))
    return ", ".join(fmt(v) for v in vals) or "—"


def _hms(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "—"
    s = int(round(seconds))
    return f"{s // 3600}h {s % 3600 // 60:02d}m {s % 60:02d}s" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


def study_provenance(sa: StudyAnalysis) -> Provenance:
    import json

    from scalinglab.provenance import code_version

    runs, info = sa.runs, sa.info
    grid = info.get("grid") or {
        "widths": sorted(runs["width"].unique().tolist()), "fractions": sorted(runs["fraction"].unique().tolist()),
        "seeds": sorted(runs["seed"].unique().tolist()), "dropouts": sorted(runs["dropout"].unique().tolist()),
        "lrs": sorted(runs["lr"].unique().tolist())}
    status = runs["status"].value_counts()
    versions = info.get("versions")
    if not versions:
        raw = next((v for v in runs.get("versions", pd.Series(dtype=object)) if v), None)
        versions = json.loads(raw) if isinstance(raw, str) else (raw or {})
    finished = runs["finished"].dropna() if "finished" in runs else pd.Series(dtype=float)
    span = float(finished.max() - runs["created"].min()) if len(finished) else None
    rows = [("study", sa.study), ("database", sa.db),
            ("preset", str(info.get("preset", "—"))),
            ("runs", ", ".join(f"{n} {s}" for s, n in status.items())),
            ("widths", _distinct(runs["width"])), ("data fractions", _distinct(runs["fraction"], fmt_fraction)),
            ("seeds", _distinct(runs["seed"])), ("dropout", _distinct(runs["dropout"])),
            ("base learning rates", _distinct(runs["lr"]) + (" (tuned per setting)" if sa.lr_tuned else ""))]
    for key in ("batch_size", "precision", "train_limit", "data"):
        if key in runs and runs[key].notna().any():
            rows.append((key.replace("_", " "), _distinct(runs[key])))
    machine = [versions.get("processor"), versions.get("machine")]
    machine += [f"{info['cpus']} CPUs" if info.get("cpus") else None,
                f"{info['workers']} workers ({info.get('executor', 'local')})" if info.get("workers") else None]
    rows += [("machine", ", ".join(m for m in machine if m) or "—"),
             ("versions", ", ".join(f"{k} {versions[k]}" for k in ("python", "torch", "numpy") if k in versions)
              or "—"),
             ("code", _distinct(runs["code_version"].dropna()) if "code_version" in runs else "—"),
             ("compute time (sum of runs)", _hms(float(runs["wall_s"].fillna(0).sum()))),
             ("sweep wall time", _hms(info.get("sweep_wall_s")) if info.get("sweep_wall_s") else _hms(span)),
             ("training FLOPs", f"{fmt_num(float(runs['flops'].fillna(0).sum()))} in total"
              + (f", {info['sweep_gflops_per_s']:.1f} GFLOP/s" if info.get("sweep_gflops_per_s") else "")),
             ("analysis", f"{sa.settings['n_resamples']} bootstrap resamples, Chinchilla starts "
              f"'{sa.settings['chinchilla_starts']}'"),
             ("report", f"{code_version()}, {time.strftime('%Y-%m-%d %H:%M', time.localtime(sa.created))}")]
    for key in ("notes", "description"):
        if info.get(key):
            rows.append((key, str(info[key])))
    return Provenance(rows, grid)


# ===================================================================== everything

@dataclass
class StudyReport:
    """A study's analysis, its summary and every figure's data."""

    analysis: StudyAnalysis
    summary: Summary
    provenance: Provenance
    figures: list  # figure-data objects; each has .key and .chart()
    missing: dict[str, str]  # figure key -> why it is not shown

    def charts(self) -> list[Chart]:
        return [f.chart() for f in self.figures]

    def figure(self, key: str):
        for f in self.figures:
            if f.key == key:
                return f
        raise KeyError(f"no figure {key!r}; figures: {', '.join(f.key for f in self.figures)}")

    def to_dict(self) -> dict[str, Any]:
        return {**self.analysis.to_dict(), "info": self.analysis.info,
                "summary": {"findings": self.summary.findings, "comparison": self.summary.comparison,
                            "uncertain": self.summary.uncertain},
                "figures": [f.key for f in self.figures], "missing": self.missing}


def build_report(db: str | Path, study: str | None = None, *, n_resamples: int = 200,
                 chinchilla_starts: str = "hoffmann",
                 analyses: list[FrontierAnalysis] | None = None) -> StudyReport:
    """Analyse a study and compute every figure's data (no drawing)."""
    sa = analyse_study(db, study, n_resamples=n_resamples, chinchilla_starts=chinchilla_starts,
                       analyses=analyses)
    return report_from_analysis(sa)


def report_from_analysis(sa: StudyAnalysis) -> StudyReport:
    figures, missing = [loss_vs_compute(sa), accuracy_vs_compute(sa), compute_optimal_sizes(sa), kaplan_views(sa),
                        isoflop_figure(sa), chinchilla_figure(sa)], {}
    lr = lr_choices(sa)
    if lr is None:
        missing["lr-choices"] = (f"one learning rate per setting (base LR {_distinct(sa.runs['lr'])}, layer LR = "
                                 "base / √fan-in); run with --lr tune to compare several")
    else:
        figures.append(lr)
    curves = training_curves(sa)
    if curves is None:
        missing["training-curves"] = "no run recorded a training-loss curve"
    else:
        figures.append(curves)
    return StudyReport(sa, study_summary(sa), study_provenance(sa), figures, missing)
