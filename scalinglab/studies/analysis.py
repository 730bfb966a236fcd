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
* ``error_rate``: the frontier law of 1 - accuracy, where the task has one;
* ``data_constrained``: where some run repeats its data (D above its unique
  tokens U, a points column ``U`` or ``unique_tokens``), the law of
  Muennighoff et al. (2023) with the Chinchilla fit's back-test split, so both
  laws' held-out errors stand side by side.

and, to say how far to trust an extrapolation (issue 13):

* ``law_selection``: :func:`scalinglab.fit.select.compare_laws` on the points
  (a rolling back-test over ``LAW_LEVELS`` compute levels; every law the
  columns allow), and ``selected``: the chosen law refitted with the
  Chinchilla fit's back-test split, so its held-out error stands beside
  Chinchilla's;
* ``isoflop_bias``: per budget, the bias the sampled sizes imply for the
  IsoFLOP minimum against its interval
  (:func:`scalinglab.fit.select.isoflop_bias`, on the Chinchilla surface),
  and Approach 2 beside Approach 3 at the costliest budget;
* ``frontier_intervals``: mean-law and new-run intervals of the frontier law
  (noise from the frontier settings) up to 10x the costliest setting
  (:func:`scalinglab.fit.noise.prediction_intervals`), and
  ``holdout_coverage``: the chosen law refitted on the cheaper settings,
  how often the held-out settings (and their single runs) fall inside them.

With one variant key (MNIST's dropout) the study also gets ``variants``: one
joint fit with shared exponents (:func:`scalinglab.fit.fitting.compare_variants`),
each variant as a compute multiplier with its interval and the
exponent-difference test.

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
FIT_NAMES = ("frontier", "approach1", "isoflop", "chinchilla", "error_rate", "data_constrained", "selected")
MIN_DATA_CONSTRAINED_POINTS = 10  # 7 parameters
# Compute levels of the law-selection back-test: compare_laws's default is 10; 6 (3 rolling splits) keeps a
# study's analysis to seconds per group, every law fitted 3 + 1 times (`scalinglab fit --law auto` uses 10).
LAW_LEVELS = 6
EXTRAPOLATE = 10.0  # the frontier law's intervals reach this multiple of the costliest setting


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
    law_selection: Any = None  # scalinglab.fit.select.LawComparison of the points (None: see skipped)
    isoflop_bias: pd.DataFrame | None = None  # per budget: width, asymmetry, bias, interval half-width, flag
    frontier_intervals: pd.DataFrame | None = None  # C, predicted, mean_lo/hi, new_run_lo/hi of the frontier law
    holdout_coverage: dict | None = None  # the chosen law on the cheaper settings: held-out inside its intervals
    at_flops: float | None = None  # the costliest setting's FLOPs, where Approaches 2 and 3 are compared

    @property
    def label(self) -> str:
        return variant_label(self.variant)

    @property
    def slug(self) -> str:
        """File-name form of the label: ``dropout-0.2``; ``all`` without variants."""
        if not self.variant:
            return "all"
        return "-".join(f"{k}-{v:g}" if isinstance(v, (int, float)) else f"{k}-{v}" for k, v in self.variant.items())

    @property
    def selected(self):
        """The FitResult of the law the back-test chose (the Chinchilla fit itself when it chose Chinchilla)."""
        if self.law_selection is None:
            return None
        return self.fits.get("chinchilla" if self.law_selection.chosen == "chinchilla" else "selected")

    def fit_commands(self, points_file: str, settings: dict) -> list[str]:
        """The ``scalinglab fit`` commands that print this group's numbers from its points file."""
        n, level, grid = settings["n_resamples"], settings["level"], settings["chinchilla_starts"]
        common = f"--bootstrap {n} --level {level:g}"
        at = f" --at-flops {self.at_flops:.17g}" if self.at_flops is not None else ""
        hold = f" --holdout-above {self.holdout_above:.17g}" if self.holdout_above is not None else ""
        cmds = []
        for name, fit in self.fits.items():
            if name == "chinchilla":
                cmds.append(f"scalinglab fit {points_file} --law chinchilla --grid {grid}{hold}{at} {common}")
            elif name == "isoflop":
                cmds.append(f"scalinglab fit {points_file} --law isoflop{at} {common}")
            elif name == "selected":
                x = f" --x {fit.method['x']}" if fit.method.get("x") else ""
                cmds.append(f"scalinglab fit {points_file} --law {fit.law}{x}{hold} {common}")
            elif name == "error_rate":
                cmds.append(f"scalinglab fit {points_file} --law frontier --loss {ERROR_COLUMN} {common}")
            elif name == "data_constrained":
                cmds.append(f"scalinglab fit {points_file} --law data-constrained{hold} {common}")
            else:
                cmds.append(f"scalinglab fit {points_file} --law {name} {common}")
        return cmds

    def to_dict(self) -> dict[str, Any]:
        records = (lambda df: None if df is None else df.to_dict(orient="records"))
        return {"variant": self.variant, "label": self.label, "n_points": int(len(self.points)),
                "fits": {k: f.to_dict() for k, f in self.fits.items()}, "skipped": dict(self.skipped),
                "holdout_above": self.holdout_above, "at_flops": self.at_flops,
                "law_selection": None if self.law_selection is None else self.law_selection.to_dict(),
                "isoflop_bias": records(self.isoflop_bias), "frontier_intervals": records(self.frontier_intervals),
                "holdout_coverage": self.holdout_coverage}


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
    variants: Any = None  # scalinglab.fit.variants.VariantComparison of the joint fit over the variant key
    variants_notes: tuple[str, ...] = ()  # its warnings, or why there is none
    cost: dict = field(default_factory=dict)  # flops_spent (every run once), flops_equivalent (the points' runs)

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
                      "groups": [g.to_dict() for g in self.groups],
                      "variants": None if self.variants is None else self.variants.to_dict(),
                      "variants_notes": list(self.variants_notes), "cost": self.cost})

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
                  chinchilla_starts: str = "hoffmann", random_state: int = 0,
                  runs: pd.DataFrame | None = None, run_keys: tuple[str, ...] = ()) -> GroupAnalysis:
    """Every fit of one group's seed-mean points (see the module docstring).

    ``runs`` (the group's complete single runs, matched to settings by ``run_keys``) lets the held-out
    check count single runs inside the new-run interval; without them only the seed means are checked.
    """
    common = dict(n_resamples=n_resamples, level=level, random_state=random_state)
    points = points.reset_index(drop=True)
    if "acc" in points:
        points = points.assign(**{ERROR_COLUMN: 1.0 - points["acc"]})
    fits: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    cmax = float(points["C"].max())
    _fit("frontier", points, "frontier", fits, skipped, **common)
    _fit("approach1", points, "approach1", fits, skipped, **common)
    _fit("isoflop", points, "isoflop", fits, skipped, at_flops=(cmax,), **common)
    holdout = None
    if len(points) < MIN_CHINCHILLA_POINTS:
        skipped["chinchilla"] = (f"only {len(points)} settings; the 5-parameter Chinchilla law needs at least "
                                 f"{MIN_CHINCHILLA_POINTS}")
    else:
        holdout = backtest_split(points["C"])
        _fit("chinchilla", points, "chinchilla", fits, skipped, starts=chinchilla_starts, holdout_above=holdout,
             at_flops=(cmax,), **common)
    if ERROR_COLUMN in points:
        if (points[ERROR_COLUMN] > 0).all():
            _fit("error_rate", points.assign(loss=points[ERROR_COLUMN]), "frontier", fits, skipped, **common)
        else:
            skipped["error_rate"] = "some setting has accuracy 1, so the error rate has no power law in log space"
    _fit_data_constrained(points, fits, skipped, holdout, common)
    holdout = holdout if "chinchilla" in fits else None
    g = GroupAnalysis(variant=variant, points=points, fits=fits, skipped=skipped, holdout_above=holdout,
                      at_flops=cmax)
    _trust(g, common, runs, run_keys, chinchilla_starts)
    return g


def unique_column(points: pd.DataFrame) -> str | None:
    """The points' unique-tokens column (a name ``fit_law`` reads as U), or None."""
    from scalinglab.fit.table import ALIASES

    return next((c for c in ALIASES["U"] if c in points), None)


def repeats_data(points: pd.DataFrame) -> bool:
    """True when some setting trained on more tokens than it had unique ones (more than one epoch)."""
    u = unique_column(points)
    return u is not None and bool((points["D"] > points[u] * (1 + 1e-6)).any())


def _fit_data_constrained(points, fits, skipped, holdout, common) -> None:
    """The data-constrained law beside Chinchilla, on the same back-test split, where some run repeats data."""
    if not repeats_data(points):
        return
    if len(points) < MIN_DATA_CONSTRAINED_POINTS:
        skipped["data_constrained"] = (f"only {len(points)} settings; the 7-parameter data-constrained law needs "
                                       f"at least {MIN_DATA_CONSTRAINED_POINTS}")
        return
    if holdout is None:
        holdout = backtest_split(points["C"])
    _fit("data_constrained", points, "data-constrained", fits, skipped, holdout_above=holdout, **common)


def law_of_choice(name: str) -> tuple[str, str | None]:
    """(fit_law law, its x) of a compare_laws candidate, as ``scalinglab fit --law auto`` maps them."""
    from scalinglab.fit.fitting import LAWS

    return LAWS["auto"].CHOICES[name]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _trust(g: GroupAnalysis, common: dict, runs: pd.DataFrame | None, run_keys, starts: str) -> None:
    """Law selection, the chosen law's back-test, IsoFLOP bias, prediction intervals and held-out coverage."""
    from scalinglab.fit.noise import prediction_intervals
    from scalinglab.fit.select import compare_laws, isoflop_bias

    pts, level = g.points, common["level"]
    try:
        g.law_selection = _quiet(compare_laws, pts, max_levels=LAW_LEVELS)
    except (FitError, DataError) as exc:
        g.skipped["law_selection"] = str(exc)
    if g.law_selection is not None and g.law_selection.chosen != "chinchilla":
        law, x = law_of_choice(g.law_selection.chosen)
        _fit("selected", pts, law, g.fits, g.skipped, x=x, holdout_above=g.holdout_above, **common)
    iso, ch = g.fits.get("isoflop"), g.fits.get("chinchilla")
    if iso is not None:
        try:
            g.isoflop_bias = _quiet(isoflop_bias, iso.estimator, iso.runs, None if ch is None else ch.estimator,
                                    level=level)
        except (FitError, DataError, ValueError, np.linalg.LinAlgError) as exc:
            g.skipped["isoflop_bias"] = str(exc)
    fr = g.fits.get("frontier")
    if fr is not None:
        grid = np.unique(np.append(np.geomspace(pts["C"].min(), EXTRAPOLATE * g.at_flops, 40), g.at_flops))
        try:
            g.frontier_intervals = pd.DataFrame({"C": grid}).join(_quiet(
                prediction_intervals, fr.estimator, fr.tables["frontier"], pd.DataFrame({"C": grid}), level=level,
                n_resamples=common["n_resamples"], random_state=common["random_state"]))
        except (FitError, DataError) as exc:
            g.skipped["frontier_intervals"] = str(exc)
    chosen = g.selected
    if chosen is not None and g.holdout_above is not None:
        try:
            g.holdout_coverage = holdout_coverage(pts, chosen, g.holdout_above, runs=runs, run_keys=run_keys,
                                                  starts=starts, **common)
        except (FitError, DataError) as exc:
            g.skipped["holdout_coverage"] = str(exc)


def holdout_coverage(points: pd.DataFrame, fit, holdout_above: float, *, runs: pd.DataFrame | None = None,
                     run_keys=(), n_resamples: int = 200, level: float = 0.95, random_state: int = 0,
                     starts: str = "hoffmann") -> dict:
    """``fit``'s law (a FitResult) refitted on the settings at or below ``holdout_above`` FLOPs; how often the
    costlier settings' seed means fall in its mean-law interval and their single runs in its new-run interval."""
    from scalinglab.fit.fitting import fit_law
    from scalinglab.fit.noise import prediction_intervals

    train, test = points[points["C"] <= holdout_above], points[points["C"] > holdout_above]
    x = fit.method.get("x")
    again = _quiet(fit_law, train, fit.law, **({"x": x} if x else {}),
                   **({"starts": starts} if fit.law == "chinchilla" else {}), n_resamples=0)
    pi = _quiet(prediction_intervals, again.estimator, again.runs, test, level=level, n_resamples=n_resamples,
                random_state=random_state)
    table = test[["run", "C", "loss"]].join(pi)
    table["in_mean"] = (table["loss"] >= table["mean_lo"]) & (table["loss"] <= table["mean_hi"])
    inside = total = 0
    if runs is not None and len(runs):
        for i, row in test.iterrows():
            single = runs_of_setting(runs, row, run_keys)["val_loss"].to_numpy(float)
            hit = (single >= pi.loc[i, "new_run_lo"]) & (single <= pi.loc[i, "new_run_hi"])
            table.loc[i, "runs_in_new_run"] = f"{int(hit.sum())}/{single.size}"
            inside, total = inside + int(hit.sum()), total + single.size
    return {"law": fit.law, "x": x, "holdout_above": holdout_above, "level": level, "n_train": int(len(train)),
            "n_test": int(len(test)), "mean_inside": int(table["in_mean"].sum()),
            "runs_inside": inside, "runs_total": total, "table": table.to_dict(orient="records")}


def runs_of_setting(runs: pd.DataFrame, row, keys) -> pd.DataFrame:
    """The runs behind one seed-mean setting: those equal to ``row`` in every key of ``keys`` they have."""
    match = np.ones(len(runs), dtype=bool)
    for k in keys:
        if k in runs and k in row:
            match &= (runs[k].astype(str) == str(row[k])).to_numpy()
    return runs[match]


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
    runs = loaded.runs
    used = getattr(loaded, "point_runs", None)
    used = runs if used is None else used
    done = used[used["status"] == "complete"]
    tuned_keys = tuple(loaded.design.get("tuned_keys", ()))
    seed_key = loaded.design.get("seed_key", "seed")
    settings_of = list(loaded.setting_keys) or setting_keys(done, seed_key=seed_key, tuned=tuned_keys)
    tuned = {t: int(done.groupby(settings_of, dropna=False)[t].nunique().max()) for t in tuned_keys if t in done}
    groups = []
    parts = points.groupby(keys, sort=True, dropna=False) if keys else [((), points)]
    for values, part in parts:
        values = values if isinstance(values, tuple) else (values,)
        variant = {k: _plain(v) for k, v in zip(keys, values)}
        groups.append(analyse_group(part, variant, n_resamples=n_resamples, level=level,
                                    chinchilla_starts=chinchilla_starts, random_state=random_state,
                                    runs=done, run_keys=(*settings_of, *tuned_keys)))
    if loaded.design.get("compare_variants", True):
        comparison, notes = compare_study_variants(points, keys, groups, n_resamples=n_resamples, level=level,
                                                   random_state=random_state)
    else:  # e.g. two corpora: their losses are on different scales, so no joint fit
        comparison, notes = None, [f"the {', '.join(keys)} groups are different tasks; each is fitted on its own"]
    return StudyAnalysis(
        study=loaded.name, family=loaded.family, info=loaded.info,
        settings={"n_resamples": n_resamples, "level": level, "chinchilla_starts": chinchilla_starts,
                  "random_state": random_state, "backtest_holdout": BACKTEST_HOLDOUT,
                  "seeds": int(done[seed_key].nunique()) if seed_key in done else 1},
        groups=groups, status={str(k): int(v) for k, v in runs["status"].value_counts().items()},
        setting_keys=tuple(settings_of), tuned={k: v for k, v in tuned.items() if v > 1},
        variants=comparison, variants_notes=tuple(notes),
        cost=dict(loaded.cost) if hasattr(loaded, "cost") else {})


COMPUTE_MULTIPLIER_LAWS = ("power_C", "chinchilla", "kaplan")  # candidate laws whose variant multiplier is in compute


def compare_study_variants(points: pd.DataFrame, keys, groups, *, n_resamples: int = 200, level: float = 0.95,
                           random_state: int = 0):
    """(VariantComparison or None, notes): one joint fit over the study's variant key, shared exponents.

    The law is the one with the best back-test score in the first (reference) group among the laws whose
    multiplier is one of compute (a power law in C, Chinchilla, Kaplan), else Chinchilla; the first group's
    value is the reference.
    """
    from scalinglab.fit.fitting import compare_variants
    from scalinglab.fit.variants import VARIANT_LAWS

    if len(keys) != 1 or len(groups) < 2:
        return None, (["the study has several variant keys; the joint fit compares one at a time"]
                      if len(keys) > 1 else [])
    sel = groups[0].law_selection
    law, x = "chinchilla", None
    if sel is not None:
        compute = [n for n in COMPUTE_MULTIPLIER_LAWS if n in sel.table.index and sel.table.loc[n, "eligible"]
                   and law_of_choice(n)[0] in VARIANT_LAWS]
        if compute:
            law, x = law_of_choice(min(compute, key=lambda n: sel.table.loc[n, "score"]))
    try:
        comparison, notes = _quiet(compare_variants, points, law, variant=keys[0],
                                   reference=groups[0].variant[keys[0]], **({"x": x} if x else {}),
                                   n_resamples=n_resamples, level=level, random_state=random_state)
    except (FitError, DataError) as exc:
        return None, [f"no joint fit over {keys[0]}: {exc}"]
    return comparison, notes


# ===================================================================== the summary

ALLOCATION_CAPTION = ("Compute-optimal allocation (Approach 1 fits; loss from the frontier law, with its intervals "
                      "for the mean law and for one new run)")
LAW_CAPTION = ("Law selection: mean error of each law over the rolling back-test splits (fit on the k smallest "
               "compute levels, predict the larger ones); in-sample error is shown, never used to choose")
ALLOCATION_23_CAPTION = "Approach 2 (IsoFLOP minima) beside Approach 3 (Chinchilla law) at the costliest budget"
BACKTEST_CAPTION = ("Repeated data: the Chinchilla law and the data-constrained law (Muennighoff et al. 2023) "
                    "refitted on the cheaper settings, predicting the same costliest ones")


@dataclass(frozen=True)
class Summary:
    """The study in words: one paragraph per group, the allocation the fits imply, what stays uncertain."""

    title: str
    findings: tuple[str, ...]
    allocation_columns: tuple[str, ...]
    allocation: tuple[tuple[str, ...], ...]
    comparison: str
    uncertain: tuple[str, ...]
    tables: tuple[tuple[str, tuple[str, ...], tuple[tuple[str, ...], ...]], ...] = ()  # caption, columns, rows

    def text(self) -> str:
        lines = [self.title, ""]
        for p in self.findings:
            lines += _wrap(p) + [""]
        if self.comparison:
            lines += _wrap(self.comparison) + [""]
        tables = [(ALLOCATION_CAPTION, self.allocation_columns, self.allocation)] if self.allocation else []
        for caption, columns, rows in (*tables, *self.tables):
            widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
            lines.append(caption + ":")
            for row in (columns, *rows):
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
    dc_text, dc_unsure = _data_constrained_findings(g, tag)
    parts += dc_text
    uncertain += dc_unsure
    trust, unsure = _trust_findings(g, level, tag)
    parts += trust
    uncertain += unsure
    best = g.points.loc[g.points["loss"].idxmin()]
    parts.append(f"The lowest loss, {best['loss']:.4f}, came from {best['run']} at C = {fmt_num(best['C'])} FLOPs"
                 + (f"; the best accuracy was {100 * g.points['acc'].max():.2f}%." if "acc" in g.points else "."))
    return " ".join(parts), uncertain


def _data_constrained_findings(g: GroupAnalysis, tag: str) -> tuple[list[str], list[str]]:
    """Sentences on the data-constrained fit beside Chinchilla's, where the runs repeat data."""
    if not repeats_data(g.points):
        return [], []
    u = unique_column(g.points)
    epochs = float((g.points["D"] / g.points[u]).max())
    dc, ch = g.fits.get("data_constrained"), g.fits.get("chinchilla")
    if dc is None:
        return [], [f"{tag}the runs repeat data (up to {epochs:.1f} epochs) but the data-constrained law was not "
                    f"fitted ({g.skipped.get('data_constrained')})."]
    p = dc.params
    parts = [f"The runs repeat data (up to {epochs:.1f} epochs), so the data-constrained law of Muennighoff et al. "
             f"(2023) is fitted beside it: R*_D = {fmt_num(p['R_D_star'])} "
             f"(repetitions after which repeated data is worth 1 − 1/e of fresh data), R*_N = "
             f"{fmt_num(p['R_N_star'])}, α = {p['alpha']:.3f}, β = {p['beta']:.3f}."]
    if dc.backtest and ch is not None and ch.backtest:
        e_dc, e_ch = dc.backtest["mean_abs_rel_error"], ch.backtest["mean_abs_rel_error"]
        better = "data-constrained" if e_dc < e_ch else "Chinchilla"
        parts.append(f"On the {dc.backtest['n_test']} costliest settings held out (the same split) it misses by "
                     f"{_pct(e_dc)} on average against {_pct(e_ch)} for the Chinchilla law; the {better} law "
                     "extrapolates better here.")
    return parts, []


def backtest_rows(a: StudyAnalysis) -> tuple[tuple[str, ...], ...]:
    """Chinchilla and the data-constrained law on the same held-out settings, where both were fitted."""
    rows = []
    for g in a.groups:
        if "data_constrained" not in g.fits:
            continue
        for name, label in (("chinchilla", "Chinchilla"), ("data_constrained", "data-constrained")):
            f = g.fits.get(name)
            if f is None:
                continue
            bt = f.backtest or {}
            rows.append((g.label, label, str(len(f.params)), str(bt.get("n_test", "—")),
                         _pct(bt.get("mean_abs_rel_error")), _pct(bt.get("max_abs_rel_error"))))
    return tuple(rows)


def _pct(x: float | None) -> str:
    return f"{100 * x:.1f}%" if x is not None and np.isfinite(x) else "—"


def _trust_findings(g: GroupAnalysis, level: float, tag: str) -> tuple[list[str], list[str]]:
    """Sentences on the law selection, the IsoFLOP sampling, Approach 2 vs 3 and the held-out coverage."""
    from scalinglab.fit.result import at_key

    parts: list[str] = []
    uncertain: list[str] = []
    sel, ch = g.law_selection, g.fits.get("chinchilla")
    if sel is not None:
        t = sel.table
        parts.append(f"Law selection by back-test: {sel.reason}.")
        if "chinchilla" in t.index and sel.chosen != "chinchilla":
            parts.append(f"Mean back-test |error| {_pct(t.loc[sel.chosen, 'mean_abs_rel_error'])} for {sel.chosen} "
                         f"against {_pct(t.loc['chinchilla', 'mean_abs_rel_error'])} for the Chinchilla form.")
        chosen = g.selected
        if sel.chosen != "chinchilla" and chosen is not None and chosen.backtest and ch is not None and ch.backtest:
            parts.append(f"On the {chosen.backtest['n_test']} costliest settings held out (the Chinchilla back-test's "
                         f"split) {sel.chosen} misses by {_pct(chosen.backtest['mean_abs_rel_error'])} on average, "
                         f"the Chinchilla law by {_pct(ch.backtest['mean_abs_rel_error'])}.")
    elif "law_selection" in g.skipped:
        uncertain.append(f"{tag}no law selection: {g.skipped['law_selection']}.")
    b = g.isoflop_bias
    if b is not None and len(b):
        checked = b[b["half_width_decades"].notna()]
        flagged = b[b["flag"].astype(bool)]
        parts.append(f"IsoFLOP sampling: {len(checked)} of {len(b)} budgets have the 4+ sizes to check; in "
                     f"{len(flagged)} the sampled sizes bias the parabola's minimum by more than its "
                     f"{round(100 * level)}% interval.")
        for _, r in flagged.iterrows():
            uncertain.append(f"{tag}IsoFLOP budget {fmt_num(r['C'])} FLOPs: {r['note']}.")
    iso = g.fits.get("isoflop")
    if iso is not None and ch is not None and g.at_flops is not None:
        key = at_key("N_opt", g.at_flops)
        n2, n3 = iso.intervals.get(key), ch.intervals.get(key)
        if n2 is not None and n3 is not None and np.isfinite(n2.estimate) and np.isfinite(n3.estimate):
            agree = (n2.supported and n3.supported and n2.lo <= n3.hi and n3.lo <= n2.hi)
            why = []
            if b is not None and b["flag"].astype(bool).any():
                why.append("the IsoFLOP sampling biases some minima (above)")
            ratio = g.points["C"] / (6.0 * g.points["N"] * g.points["D"])
            if (ratio.sub(1).abs() > 0.1).any():
                why.append(f"Approach 3 allocates along C = 6ND while the budgets are measured FLOPs "
                           f"(C/6ND {ratio.min():.3g} to {ratio.max():.3g})")
            if ch.backtest and ch.backtest["mean_abs_rel_error"] > 0.05:
                why.append(f"the Chinchilla form misses held-out settings by {_pct(ch.backtest['mean_abs_rel_error'])}")
            why.append("Approach 2 reads each budget's minimum from its own sampled sizes, Approach 3 assumes one "
                       "L(N, D) form everywhere")
            parts.append(f"At the costliest budget ({fmt_num(g.at_flops)} FLOPs) Approach 2 puts N_opt at "
                         f"{fmt_interval(n2, decimals=None)} and Approach 3 at {fmt_interval(n3, decimals=None)} ("
                         f"{'their intervals overlap' if agree else 'their intervals do not overlap'}; they may differ "
                         f"because {'; '.join(why)}).")
    cov = g.holdout_coverage
    if cov is not None:
        runs = (f" and {cov['runs_inside']} of its {cov['runs_total']} single runs inside the new-run interval"
                if cov["runs_total"] else "")
        name = cov["law"] + (f"_{cov['x']}" if cov["x"] else "")
        parts.append(f"Held-out check of the {round(100 * cov['level'])}% prediction intervals: {name} refitted "
                     f"on the {cov['n_train']} settings up to {fmt_num(cov['holdout_above'])} FLOPs has "
                     f"{cov['mean_inside']} of the {cov['n_test']} costlier settings' seed means inside its mean-law "
                     f"interval{runs}.")
        if cov["mean_inside"] < 0.9 * cov["n_test"]:
            uncertain.append(f"{tag}the mean-law intervals of {name} cover only {cov['mean_inside']} of the "
                             f"{cov['n_test']} held-out seed means: beyond the fitted range the law's error is bias, "
                             "not fitting noise, so trust its extrapolations less than its intervals say.")
        if cov["runs_total"] and cov["runs_inside"] < 0.9 * cov["runs_total"]:
            uncertain.append(f"{tag}the new-run intervals cover only {cov['runs_inside']} of {cov['runs_total']} "
                             "held-out runs: the law's error beyond the fitted range exceeds its noise model.")
    return parts, uncertain


def law_selection_rows(a: StudyAnalysis) -> tuple[tuple[str, ...], ...]:
    rows = []
    for g in a.groups:
        sel = g.law_selection
        if sel is None:
            continue
        for law, r in sel.table.iterrows():
            rows.append((g.label, law + (" (chosen)" if law == sel.chosen else ""), str(int(r["n_params"])),
                         f"{int(r['n_splits'])}", fmt_num(r["mean_rmse_log"]), _pct(r["mean_abs_rel_error"]),
                         fmt_num(r["in_sample_rmse_log"])))
    return tuple(rows)


def approach23_rows(a: StudyAnalysis) -> tuple[tuple[str, ...], ...]:
    from scalinglab.fit.result import at_key

    rows = []
    for g in a.groups:
        for name, label in (("isoflop", "Approach 2 (IsoFLOP)"), ("chinchilla", "Approach 3 (Chinchilla)")):
            f = g.fits.get(name)
            if f is None or g.at_flops is None or at_key("N_opt", g.at_flops) not in f.intervals:
                continue
            rows.append((g.label, label, fmt_interval(f.intervals["a"]),
                         fmt_interval(f.intervals[at_key("N_opt", g.at_flops)], decimals=None),
                         fmt_interval(f.intervals[at_key("D_opt", g.at_flops)], decimals=None)))
    return tuple(rows)


def variant_text(a: StudyAnalysis) -> str:
    """The joint fit over the variant key, in words: each variant's compute multiplier and the exponent test."""
    v = a.variants
    if v is None:
        return ""
    lvl = round(100 * v.level)
    where = "along the compute-optimal frontier, in C = 6ND" if v.multiplier_of == "C" and v.law != "power" \
        else f"in {v.multiplier_of}"
    parts = []
    for _, r in v.table.iterrows():
        if r["variant"] == v.reference:
            continue
        exps = [c[2:] for c in v.table.columns if c.startswith("d_") and not c.endswith(("_lo", "_hi"))]
        diffs = ", ".join(f"Δ{e} = {fmt_dec(r[f'd_{e}'])} [{fmt_dec(r[f'd_{e}_lo'])}, {fmt_dec(r[f'd_{e}_hi'])}]"
                          for e in exps)
        verdict = "no evidence they differ" if r["exponent_p"] > 0.05 else "they differ"
        parts.append(f"{variant_label({v.variant: _plain(r['variant'])})} is worth {r['k']:.3g}× the compute of "
                     f"{variant_label({v.variant: _plain(v.reference)})} ({lvl}% interval {r['k_lo']:.3g} to "
                     f"{r['k_hi']:.3g}; below 1 it costs compute). Fitted alone, the exponents differ by {diffs} "
                     "(bootstrap p = "
                     f"{r['exponent_p']:.2g}, Bonferroni over the exponents: {verdict})")
    return (f"One joint {v.law} fit with the exponents and E shared across {v.variant} ({int(v.table['n_runs'].sum())} "
            f"settings; multiplier {where}, {v.n_resamples} resamples drawn within each variant): "
            + "; ".join(parts) + ".")


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
    separate = ("Comparing variants fitted separately: " + "; ".join(parts) + ".") if parts else ""
    return " ".join(t for t in (separate, variant_text(a)) if t)


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
            pi = g.frontier_intervals
            hit = pi[np.isclose(pi["C"], c, rtol=1e-9)] if pi is not None else pd.DataFrame()
            mean_iv, new_iv = (("—", "—") if hit.empty else
                               (f"{hit['mean_lo'].iloc[0]:.4f} to {hit['mean_hi'].iloc[0]:.4f}",
                                f"{hit['new_run_lo'].iloc[0]:.4f} to {hit['new_run_hi'].iloc[0]:.4f}"))
            rows.append((g.label, f"{fmt_num(c)} ({where})", fmt_num(n_opt), fmt_num(d_opt) + beyond, f"{loss:.4f}",
                         mean_iv, new_iv))
    cost = a.cost or {}
    spent, equivalent = cost.get("flops_spent"), cost.get("flops_equivalent")
    if spent and equivalent and spent < 0.99 * equivalent:  # e.g. cooldowns branched from shared trunks
        findings.append(f"Training cost: the runs spent {fmt_num(spent)} FLOPs in all, each run counted once; the "
                        f"runs behind the points, trained one by one, would have cost {fmt_num(equivalent)} "
                        f"({100 * spent / equivalent:.1f}% of that).")
    elif spent and equivalent and spent > 1.01 * equivalent:  # runs that are no points (e.g. fine-tunes)
        findings.append(f"Training cost: the runs spent {fmt_num(spent)} FLOPs in all, {fmt_num(equivalent)} of "
                        "them on the runs behind the points.")
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
                     "choices such as the training schedule or the hyperparameter grid. The new-run intervals add "
                     "the seed-to-seed and lack-of-fit noise (scalinglab.fit.noise).")
    n_runs = sum(a.status.values())
    title = (f"Study {a.study} ({a.family}): {n_runs} runs, {a.status.get('complete', 0)} complete; "
             f"{len(a.groups)} group{'s' if len(a.groups) != 1 else ''}")
    return Summary(title=title, findings=(*findings, *extra_findings),
                   allocation_columns=("group", "budget C (FLOPs)", "N_opt", "D_opt", "predicted loss",
                                       "mean law", "one new run"),
                   allocation=tuple(rows), comparison=_comparison(a), uncertain=tuple(uncertain),
                   tables=tuple(t for t in (
                       (LAW_CAPTION, ("group", "law", "params", "splits", "RMS log error", "mean |error|",
                                      "in-sample RMS log"), law_selection_rows(a)),
                       (ALLOCATION_23_CAPTION, ("group", "method", "a", "N_opt", "D_opt"), approach23_rows(a)),
                       (BACKTEST_CAPTION, ("group", "law", "params", "held out", "mean |error|", "max |error|"),
                        backtest_rows(a)))
                       if t[2]))

