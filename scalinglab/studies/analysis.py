"""One analysis of a study: every scaling-law fit of every variant group, each from ``fit_law``.

    from scalinglab.studies.load import load_study
    from scalinglab.studies.analysis import analyse_study
    analysis = analyse_study(load_study("runs.db", "mnist-1a2b3c4d"))
    print(analysis.summary_text())           # what the CLI, the studies and the report all say
    analysis.groups[0].fits["isoflop"]       # a FitResult, equal to `scalinglab fit --law isoflop`

Per variant group (e.g. one per dropout value; one group when the design has
no variants) the seed-mean points get, through
:func:`scalinglab.fit.fitting.fit_law` with the ``scalinglab fit`` defaults:

* ``frontier``: L = E + A C^-alpha on the compute-efficient frontier;
* ``approach1``: N_opt ∝ C^a and D_opt ∝ C^b from the frontier runs
  (Hoffmann et al. 2022, Approach 1);
* ``isoflop``: a parabola in log N per compute budget, D_opt from the runs'
  own D at the minimum (Approach 2);
* ``chinchilla``: L(N, D) = E + A/N^alpha + B/D^beta (Approach 3), with a
  back-test that refits on the cheaper settings and predicts the rest;
* ``error_rate``: the frontier law of 1 - accuracy, where the task has one.

A fit the data cannot support is left out with its reason in ``skipped``.
Nothing here fits anything itself, so every number equals what
``scalinglab fit`` prints for the group's points (the report's
``data/points-*.csv``; :meth:`GroupAnalysis.fit_commands` lists the commands).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.errors import ConfigError, DataError, FitError

MIN_CHINCHILLA_POINTS = 8  # a 5-parameter law on fewer settings says nothing
BACKTEST_HOLDOUT = 0.2  # share of the costliest settings the back-test predicts
ERROR_COLUMN = "error_rate"  # 1 - accuracy, written into the points so `scalinglab fit --loss` finds it
FIT_NAMES = ("frontier", "approach1", "isoflop", "chinchilla", "error_rate")


# ===================================================================== numbers in words

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


def fmt_interval(iv, *, decimals: int | None = 3, digits: int = 3) -> str:
    """``0.390 [0.292, 0.648]`` from an :class:`~scalinglab.fit.result.Interval`; no brackets without one."""
    f = (lambda v: fmt_dec(v, decimals)) if decimals is not None else (lambda v: fmt_num(v, digits))
    if iv is None:
        return "—"
    if not (iv.supported and np.isfinite(iv.lo) and np.isfinite(iv.hi)):
        return f(iv.estimate)
    return f"{f(iv.estimate)} [{f(iv.lo)}, {f(iv.hi)}]"


def _words(iv, level: float) -> str:
    """``0.39 (95% interval 0.29 to 0.65)`` or ``0.39 (no interval)``; the reason goes to the uncertain list."""
    est = fmt_dec(iv.estimate, 2)
    if not (iv.supported and np.isfinite(iv.lo) and np.isfinite(iv.hi)):
        return f"{est} (no interval)"
    return f"{est} ({round(100 * level)}% interval {fmt_dec(iv.lo, 2)} to {fmt_dec(iv.hi, 2)})"


def variant_label(variant: dict[str, Any]) -> str:
    """``dropout 0.2, wd 0.1``; ``all runs`` for the one group of a study without variants."""
    if not variant:
        return "all runs"
    return ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in variant.items())


# ===================================================================== results

@dataclass
class GroupAnalysis:
    """The fits of one variant group: its seed-mean points, FitResults by name, and why any is missing."""

    variant: dict[str, Any]  # variant key -> value; {} when the design has no variants
    points: pd.DataFrame  # seed-mean settings (scalinglab.studies.points), plus ERROR_COLUMN where acc exists
    fits: dict[str, Any]  # name in FIT_NAMES -> scalinglab.fit.result.FitResult
    skipped: dict[str, str]  # name -> the reason it could not be fitted
    holdout_above: float | None = None  # back-test split (FLOPs) of the Chinchilla fit

    @property
    def label(self) -> str:
        return variant_label(self.variant)

    @property
    def slug(self) -> str:
        """File-name form of the label: ``dropout-0.2``; ``all`` without variants."""
        if not self.variant:
            return "all"
        return "-".join(f"{k}-{v:g}" if isinstance(v, (int, float)) else f"{k}-{v}" for k, v in self.variant.items())

    def fit_commands(self, points_file: str, settings: dict) -> list[str]:
        """The ``scalinglab fit`` commands that print this group's numbers from its points file."""
        n, level, grid = settings["n_resamples"], settings["level"], settings["chinchilla_starts"]
        common = f"--bootstrap {n} --level {level:g}"
        cmds = []
        for name in self.fits:
            if name == "chinchilla":
                hold = f" --holdout-above {self.holdout_above:.17g}" if self.holdout_above is not None else ""
                cmds.append(f"scalinglab fit {points_file} --law chinchilla --grid {grid}{hold} {common}")
            elif name == "error_rate":
                cmds.append(f"scalinglab fit {points_file} --law frontier --loss {ERROR_COLUMN} {common}")
            else:
                cmds.append(f"scalinglab fit {points_file} --law {name} {common}")
        return cmds

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "label": self.label, "n_points": int(len(self.points)),
                "fits": {k: f.to_dict() for k, f in self.fits.items()}, "skipped": dict(self.skipped),
                "holdout_above": self.holdout_above}


@dataclass
class StudyAnalysis:
    """Every fit of a study, grouped by variant, with the settings they were made with."""

    study: str
    family: str
    info: dict
    settings: dict  # n_resamples, level, chinchilla_starts, random_state, backtest_holdout
    groups: list[GroupAnalysis]
    status: dict[str, int]  # run counts by status
    setting_keys: tuple[str, ...]  # the config keys that define a setting (e.g. width, fraction, dropout)
    tuned: dict[str, int] = field(default_factory=dict)  # tuned key -> candidate values per setting (max)
    created: float = field(default_factory=time.time)

    def group(self, **variant) -> GroupAnalysis:
        """The group with these variant values, e.g. ``group(dropout=0.2)``."""
        for g in self.groups:
            if all(g.variant.get(k) == v for k, v in variant.items()):
                return g
        raise KeyError(f"no group {variant}; groups: {', '.join(g.label for g in self.groups)}")

    def to_dict(self) -> dict[str, Any]:
        """The study's analysis.json: settings and every group's FitResult.to_dict()."""
        from scalinglab.fit.result import clean

        return clean({"study": self.study, "family": self.family, "settings": self.settings, "status": self.status,
                      "setting_keys": list(self.setting_keys), "tuned": self.tuned,
                      "groups": [g.to_dict() for g in self.groups]})

    def summary(self, extra_findings: list[str] | tuple[str, ...] = ()) -> "Summary":
        return describe_analysis(self, extra_findings)

    def summary_text(self, extra_findings: list[str] | tuple[str, ...] = ()) -> str:
        """The plain-text summary printed by the CLI and the studies (the report shows the same)."""
        return self.summary(extra_findings).text()


# ===================================================================== the analysis

def backtest_split(flops, *, holdout: float = BACKTEST_HOLDOUT, min_train: int = MIN_CHINCHILLA_POINTS):
    """FLOPs split of a back-test: the costliest ~``holdout`` share of settings are predicted.

    None when fewer than ``min_train`` settings would remain to fit.
    """
    c = np.sort(np.asarray(flops, dtype=float))
    n_test = max(1, int(round(holdout * c.size)))
    if c.size - n_test < min_train:
        return None
    return float(c[c.size - n_test - 1])


def _fit(name: str, points: pd.DataFrame, law: str, fits: dict, skipped: dict, **options) -> None:
    from scalinglab.fit.fitting import fit_law

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # kept in FitResult.warnings
            fits[name] = fit_law(points, law, **options)
    except (FitError, DataError) as exc:
        skipped[name] = str(exc)


def analyse_group(points: pd.DataFrame, variant: dict, *, n_resamples: int = 200, level: float = 0.95,
                  chinchilla_starts: str = "hoffmann", random_state: int = 0) -> GroupAnalysis:
    """Every fit of one group's seed-mean points (see the module docstring)."""
    common = dict(n_resamples=n_resamples, level=level, random_state=random_state)
    points = points.reset_index(drop=True)
    if "acc" in points:
        points = points.assign(**{ERROR_COLUMN: 1.0 - points["acc"]})
    fits: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    _fit("frontier", points, "frontier", fits, skipped, **common)
    _fit("approach1", points, "approach1", fits, skipped, **common)
    _fit("isoflop", points, "isoflop", fits, skipped, **common)
    holdout = None
    if len(points) < MIN_CHINCHILLA_POINTS:
        skipped["chinchilla"] = (f"only {len(points)} settings; the 5-parameter Chinchilla law needs at least "
                                 f"{MIN_CHINCHILLA_POINTS}")
    else:
        holdout = backtest_split(points["C"])
        _fit("chinchilla", points, "chinchilla", fits, skipped, starts=chinchilla_starts, holdout_above=holdout,
             **common)
    if ERROR_COLUMN in points:
        if (points[ERROR_COLUMN] > 0).all():
            _fit("error_rate", points.assign(loss=points[ERROR_COLUMN]), "frontier", fits, skipped, **common)
        else:
            skipped["error_rate"] = "some setting has accuracy 1, so the error rate has no power law in log space"
    return GroupAnalysis(variant=variant, points=points, fits=fits, skipped=skipped,
                         holdout_above=holdout if "chinchilla" in fits else None)


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def analyse_study(loaded, *, n_resamples: int = 200, level: float = 0.95, chinchilla_starts: str = "hoffmann",
                  random_state: int = 0) -> StudyAnalysis:
    """Analyse a :class:`~scalinglab.studies.load.LoadedStudy`: one :class:`GroupAnalysis` per variant value.

    ``n_resamples``, ``level`` and ``chinchilla_starts`` are ``--bootstrap``,
    ``--level`` and ``--grid`` of ``scalinglab fit``.
    """
    from scalinglab.studies.points import setting_keys

    if n_resamples < 2:
        raise ConfigError(f"the bootstrap needs at least 2 resamples, got {n_resamples}")
    if not 0 < level < 1:
        raise ConfigError(f"interval level must be in (0, 1), got {level}")
    points, keys = loaded.points, list(loaded.variant_keys)
    groups = []
    parts = points.groupby(keys, sort=True, dropna=False) if keys else [((), points)]
    for values, part in parts:
        values = values if isinstance(values, tuple) else (values,)
        variant = {k: _plain(v) for k, v in zip(keys, values)}
        groups.append(analyse_group(part, variant, n_resamples=n_resamples, level=level,
                                    chinchilla_starts=chinchilla_starts, random_state=random_state))
    runs = loaded.runs
    done = runs[runs["status"] == "complete"]
    tuned_keys = tuple(loaded.design.get("tuned_keys", ()))
    seed_key = loaded.design.get("seed_key", "seed")
    settings_of = list(loaded.setting_keys) or setting_keys(done, seed_key=seed_key, tuned=tuned_keys)
    tuned = {t: int(done.groupby(settings_of, dropna=False)[t].nunique().max()) for t in tuned_keys if t in done}
    return StudyAnalysis(
        study=loaded.name, family=loaded.family, info=loaded.info,
        settings={"n_resamples": n_resamples, "level": level, "chinchilla_starts": chinchilla_starts,
                  "random_state": random_state, "backtest_holdout": BACKTEST_HOLDOUT,
                  "seeds": int(done[seed_key].nunique()) if seed_key in done else 1},
        groups=groups, status={str(k): int(v) for k, v in runs["status"].value_counts().items()},
        setting_keys=tuple(settings_of), tuned={k: v for k, v in tuned.items() if v > 1})


# ===================================================================== the summary

@dataclass(frozen=True)
class Summary:
    """The study in words: one paragraph per group, the allocation the fits imply, what stays uncertain."""

    title: str
    findings: tuple[str, ...]
    allocation_columns: tuple[str, ...]
    allocation: tuple[tuple[str, ...], ...]
    comparison: str
    uncertain: tuple[str, ...]

    def text(self) -> str:
        lines = [self.title, ""]
        for p in self.findings:
            lines += _wrap(p) + [""]
        if self.comparison:
            lines += _wrap(self.comparison) + [""]
        if self.allocation:
            widths = [max(len(c), *(len(r[i]) for r in self.allocation)) for i, c in enumerate(self.allocation_columns)]
            lines.append("Compute-optimal allocation (Approach 1 fits; loss from the frontier law):")
            for row in (self.allocation_columns, *self.allocation):
                lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
            lines.append("")
        if self.uncertain:
            lines.append("What is uncertain:")
            for u in self.uncertain:
                lines += _wrap(u, first="  - ", rest="    ")
        return "\n".join(lines).rstrip() + "\n"


def _wrap(text: str, first: str = "", rest: str = "") -> list[str]:
    import textwrap

    return textwrap.wrap(text, 100, initial_indent=first, subsequent_indent=rest) or [first.rstrip()]


def _group_findings(a: StudyAnalysis, g: GroupAnalysis, level: float) -> tuple[str, list[str]]:
    seeds = a.settings["seeds"]
    tuned = "".join(f", best of {n} values of {k}" for k, n in a.tuned.items())
    parts = [f"{g.label[0].upper()}{g.label[1:]} ({len(g.points)} settings, {seeds} seed{'s' if seeds != 1 else ''} "
             f"each{tuned}):"]
    uncertain: list[str] = []
    tag = f"{g.label}: " if len(a.groups) > 1 else ""
    fr, a1, iso, ch = (g.fits.get(k) for k in ("frontier", "approach1", "isoflop", "chinchilla"))
    if fr is not None:
        p = fr.params
        parts.append(f"on the compute-efficient frontier the loss falls as L(C) = {fmt_num(p['E'])} + "
                     f"{fmt_num(p['A'])}·C^−{p['alpha']:.3f}, exponent α = {_words(fr.intervals['alpha'], level)}.")
        iv = fr.intervals["alpha"]
        if iv.supported and np.isfinite(iv.hi) and iv.hi > 2 * max(iv.lo, 1e-12):
            uncertain.append(f"{tag}the loss exponent α is poorly pinned down ({fmt_dec(iv.lo, 2)} to "
                             f"{fmt_dec(iv.hi, 2)}); more compute levels (and seeds) would narrow it.")
        n_front = len(fr.tables.get("frontier", ()))
        if n_front and n_front < 5:
            uncertain.append(f"{tag}only {n_front} settings lie on the frontier, so its power law and the "
                             "Approach 1 exponents rest on very few points.")
    else:
        parts.append(f"no frontier law ({g.skipped.get('frontier')}).")
    if a1 is not None:
        ea, eb = a1.value("a"), a1.value("b")
        parts.append(f"The compute-optimal model grows as N_opt ∝ C^a with a = {_words(a1.intervals['a'], level)} "
                     f"and its data as D_opt ∝ C^b with b = {_words(a1.intervals['b'], level)} (Approach 1): each "
                     f"doubling of compute buys {2 ** ea:.2f}× the parameters and {2 ** eb:.2f}× the data.")
        ib = a1.intervals["b"]
        if ib.supported and np.isfinite(ib.hi) and ib.hi - ib.lo > 0.3:
            uncertain.append(f"{tag}the data exponent b is uncertain ({fmt_dec(ib.lo, 2)} to {fmt_dec(ib.hi, 2)}).")
    if iso is not None and np.isfinite(iso.value("a")):
        prof = iso.tables["profiles"]
        used = int((prof["N_opt"].notna() & prof["inside"].astype(bool)).sum())
        parts.append(f"IsoFLOP profiles (Approach 2, {used} budgets with a minimum inside the sampled sizes) give "
                     f"a = {_words(iso.intervals['a'], level)}, b = {_words(iso.intervals['b'], level)}.")
        if not iso.intervals["a"].supported:
            uncertain.append(f"{tag}the IsoFLOP exponents have no interval: {iso.intervals['a'].note}.")
        n_out = int((prof["N_opt"].notna() & ~prof["inside"].astype(bool)).sum())
        if n_out:
            uncertain.append(f"{tag}{n_out} IsoFLOP minima fall outside the sampled model sizes and are left out; "
                             "the design does not bracket the optimum there.")
    else:
        why = g.skipped.get("isoflop", "fewer than 2 budgets have a minimum inside the sampled sizes")
        uncertain.append(f"{tag}the IsoFLOP profiles give no exponent ({why}); Approach 1 is the only direct "
                         "estimate.")
    if ch is not None:
        p = ch.params
        parts.append(f"The Chinchilla law L(N, D) = E + A/N^α + B/D^β (Approach 3) fits α = {p['alpha']:.3f}, "
                     f"β = {p['beta']:.3f}, so a = {_words(ch.intervals['a'], level)}.")
        if not ch.estimator.converged_ or ch.estimator.convergence_warnings_:
            uncertain.append(f"{tag}the Chinchilla fit has convergence warnings; treat its parameters with care.")
        bt = ch.backtest
        if bt:
            err = bt["mean_abs_rel_error"]
            parts.append(f"Refitted on the settings up to {fmt_num(bt['holdout_above'])} FLOPs it predicts the "
                         f"{bt['n_test']} costlier ones within {100 * err:.1f}% on average.")
            if err > 0.05:
                uncertain.append(f"{tag}the Chinchilla law misses the held-out costliest settings by "
                                 f"{100 * err:.1f}% on average, so its extrapolations are not trustworthy.")
        if a1 is not None and abs(ch.value("a") - a1.value("a")) > 0.15:
            uncertain.append(f"{tag}Approach 1 (a = {a1.value('a'):.2f}) and the Chinchilla fit (a = "
                             f"{ch.value('a'):.2f}) disagree on how model size should grow; the Chinchilla value "
                             "assumes C ∝ N·D.")
    else:
        uncertain.append(f"{tag}no Chinchilla fit ({g.skipped.get('chinchilla')}).")
    best = g.points.loc[g.points["loss"].idxmin()]
    parts.append(f"The lowest loss, {best['loss']:.4f}, came from {best['run']} at C = {fmt_num(best['C'])} FLOPs"
                 + (f"; the best accuracy was {100 * g.points['acc'].max():.2f}%." if "acc" in g.points else "."))
    return " ".join(parts), uncertain


def _comparison(a: StudyAnalysis) -> str:
    """Each later group's exponents against the first's, and whether their intervals overlap."""
    if len(a.groups) < 2:
        return ""
    base, *others = a.groups
    parts = []
    for o in others:
        for fit, key, label in (("frontier", "alpha", "loss exponent α"), ("approach1", "a", "model-size exponent a"),
                                ("approach1", "b", "data exponent b")):
            f0, f1 = base.fits.get(fit), o.fits.get(fit)
            if f0 is None or f1 is None:
                continue
            i0, i1 = f0.intervals[key], f1.intervals[key]
            known = all(np.isfinite(v) for v in (i0.lo, i0.hi, i1.lo, i1.hi)) and i0.supported and i1.supported
            verdict = ("no intervals to compare" if not known else
                       "the intervals overlap, so this study cannot tell them apart"
                       if i0.lo <= i1.hi and i1.lo <= i0.hi else "the intervals do not overlap")
            parts.append(f"the {label} is {f1.value(key):.2f} with {o.label} against {f0.value(key):.2f} with "
                         f"{base.label} ({verdict})")
    return ("Comparing variants: " + "; ".join(parts) + ".") if parts else ""


def describe_analysis(a: StudyAnalysis, extra_findings: list[str] | tuple[str, ...] = ()) -> Summary:
    """The study in words, from the fits alone; ``extra_findings`` are a family's own paragraphs."""
    level = a.settings["level"]
    findings, uncertain, rows = [], [], []
    for g in a.groups:
        text, unsure = _group_findings(a, g, level)
        findings.append(text)
        uncertain += unsure
        fr, a1 = g.fits.get("frontier"), g.fits.get("approach1")
        if fr is None or a1 is None:
            continue
        cmax = float(g.points["C"].max())
        for mult in (1, 10):
            c = cmax * mult
            n_opt, d_opt = a1.params["N_coef"] * c ** a1.value("a"), a1.params["D_coef"] * c ** a1.value("b")
            loss = fr.params["E"] + fr.params["A"] * c ** -fr.params["alpha"]
            where = "the costliest setting" if mult == 1 else "10× that, extrapolated"
            beyond = " (beyond the largest D trained)" if d_opt > g.points["D"].max() else ""
            rows.append((g.label, f"{fmt_num(c)} ({where})", fmt_num(n_opt), fmt_num(d_opt) + beyond, f"{loss:.4f}"))
    seeds = a.settings["seeds"]
    if seeds < 3:
        uncertain.append(f"Only {seeds} seed{'s' if seeds != 1 else ''} per setting: the run-to-run noise is itself "
                         "poorly estimated.")
    bad = {k: v for k, v in a.status.items() if k != "complete"}
    if bad:
        uncertain.append("Not every run finished: " + ", ".join(f"{n} {s}" for s, n in bad.items())
                         + ". Their settings are averaged over fewer seeds or missing.")
    n_points = max(len(g.points) for g in a.groups)
    uncertain.append(f"Intervals are {round(100 * level)}% bootstrap percentile intervals over the settings (up to "
                     f"{n_points}; {a.settings['n_resamples']} resamples); they cover fitting noise, not design "
                     "choices such as the training schedule or the hyperparameter grid.")
    n_runs = sum(a.status.values())
    title = (f"Study {a.study} ({a.family}): {n_runs} runs, {a.status.get('complete', 0)} complete; "
             f"{len(a.groups)} group{'s' if len(a.groups) != 1 else ''}")
    return Summary(title=title, findings=(*findings, *extra_findings),
                   allocation_columns=("group", "budget C (FLOPs)", "N_opt", "D_opt", "predicted loss"),
                   allocation=tuple(rows), comparison=_comparison(a), uncertain=tuple(uncertain))

