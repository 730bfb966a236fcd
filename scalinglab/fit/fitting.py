"""``fit_law``: every scaling law of scalinglab through one function and one result.

    from scalinglab.fit import fit_law
    res = fit_law("runs.csv", "isoflop", isoflop_method="akima", at_flops=[1e21], holdout_above=1e20)
    res.derived["a"], res.intervals["N_opt@1e+21"].lo, res.tables["profiles"], res.warnings

``scalinglab fit`` calls it and prints ``FitResult.to_dict()``; the studies
and the report call it too, so every number agrees. The steps, each in one
place: load and select runs (:mod:`scalinglab.fit.table`, ``where``, the
mixed-experiment check and data warnings here); the law's point fit (its
:class:`Law` entry in ``LAWS``); its bootstrap (:mod:`scalinglab.fit.bootstrap`);
intervals and whether the data support them; the back-test along an axis.
A new law is one :class:`Law` subclass and one ``register_law`` call.
"""

from __future__ import annotations

import math
import warnings as _warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
import pandas as pd

from scalinglab.errors import DataError, FitError
from scalinglab.fit.backtest import backtest as _backtest_parametric
from scalinglab.fit.backtest import error_summary, split_runs
from scalinglab.fit.bootstrap import bootstrap, bootstrap_statistic, resolve_cluster
from scalinglab.fit.data_constrained import DataConstrainedFit
from scalinglab.fit.frontier import FrontierFit, approach1, compute_frontier
from scalinglab.fit.isoflop import budget_of_runs, isoflop_profiles
from scalinglab.fit.parametric import BrokenPowerLawFit, ChinchillaFit, ConvergenceWarning, KaplanFit, PowerLawFit
from scalinglab.fit.result import FitResult, Interval, at_key
from scalinglab.fit.table import drop_highest_loss, load_runs_selection

SUPPORT_MARGIN = 2      # an interval needs at least (free parameters + this many) points behind it
NOMINAL_TOLERANCE = 0.10


@dataclass(frozen=True)
class Settings:
    """What a law reads from ``fit_law``'s keyword arguments."""

    x: str = "C"
    at_flops: tuple[float, ...] = ()
    budget: str | None = None
    isoflop_method: str = "parabola"
    window_decades: float = 0.5
    include_outside: bool = False
    tolerance: float = 0.05
    fixed: dict | None = None
    tie: dict | None = None
    starts: Any = None
    exponents_of: tuple[str, ...] = ()
    d_derived: str = ""                   # how D was derived from N and C ("" when the table has its own)


@dataclass
class Point:
    """A law's full-data fit."""

    params: dict[str, float]
    estimator: Any
    n_points: int                         # points the parameters rest on (runs, frontier runs, budgets)
    n_free: int                           # parameters fitted from them
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    regression_se: dict[str, float] = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)


class Law:
    """One entry of the law table: how to fit, resample, derive from and back-test a law."""

    name: str = ""
    formula: str = ""
    axes: tuple[str, ...] = ("C",)        # back-test axes it can split along ("x": the law's input)
    columns: tuple[str, ...] = ("loss",)  # canonical columns the runs table must have

    def require(self, s: Settings) -> tuple[str, ...]:
        return self.columns

    def resolve(self, runs: pd.DataFrame, s: Settings) -> tuple[Law, Settings, dict]:
        """The law (and settings) that will actually be fitted, and what to record of the choice."""
        return self, s, {}

    def prepare(self, runs: pd.DataFrame, s: Settings) -> pd.DataFrame:
        """Fix anything resamples must share (e.g. budgets) before fitting."""
        return runs

    def fit(self, runs: pd.DataFrame, s: Settings) -> Point:
        raise NotImplementedError

    def resample(self, runs, point: Point, s: Settings, boot: dict) -> pd.DataFrame:
        """Bootstrap draws of the parameters (one row per resample, plus a bool 'converged')."""
        raise NotImplementedError

    def derived(self, p: dict[str, np.ndarray], s: Settings) -> dict[str, np.ndarray]:
        """Quantities computed from parameters (arrays: one value per draw)."""
        return {}

    def backtest(self, runs, s: Settings, threshold: float, axis: str) -> tuple[dict, pd.DataFrame]:
        raise FitError(f"the {self.name} law has no back-test")


LAWS: dict[str, Law] = {}


def register_law(law: Law) -> Law:
    """Add a law to the table ``fit_law`` and ``scalinglab fit --law`` choose from."""
    LAWS[law.name] = law
    return law


# ----------------------------------------------------------------- helpers

def _at_flops(values: dict[str, np.ndarray], flops, n_opt: Callable, d_opt: Callable,
              loss: Callable | None = None) -> dict[str, np.ndarray]:
    out = {}
    with np.errstate(all="ignore"):
        for C in flops:
            n, d = n_opt(C), d_opt(C)
            out[at_key("N_opt", C)] = n
            out[at_key("D_opt", C)] = d
            out[at_key("tokens_per_param", C)] = d / n
            if loss is not None:
                out[at_key("loss", C)] = loss(C, n, d)
    return out


def _capture(fn, *args, **kwargs):
    """Run ``fn``; return (result, messages of the UserWarnings it raised), de-duplicated."""
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)
                                   and not issubclass(w.category, ConvergenceWarning)))


def _relative_table(label: dict[str, np.ndarray], measured, predicted) -> pd.DataFrame:
    measured, predicted = np.asarray(measured, float), np.asarray(predicted, float)
    return pd.DataFrame({**label, "measured": measured, "predicted": predicted,
                         "rel_error": (predicted - measured) / measured})


# --------------------------------------------------------- parametric laws

class _Parametric(Law):
    """Laws fitted by the multistart Huber estimators of :mod:`scalinglab.fit.parametric`."""

    estimator_class: type = PowerLawFit
    axes = ("C", "N", "D", "x")

    def make(self, s: Settings):
        kwargs: dict[str, Any] = {}
        if s.fixed:
            kwargs["fixed"] = dict(s.fixed)
        if s.tie:
            kwargs["tie"] = dict(s.tie)
        if s.starts is not None:
            kwargs["starts"] = s.starts
        try:
            return self.estimator_class(**kwargs, **self.extra(s))
        except TypeError as exc:
            raise FitError(f"the {self.name} law does not take {sorted(kwargs)} ({exc})") from None

    def extra(self, s: Settings) -> dict:
        return {}

    def fit(self, runs, s):
        est = self.make(s)
        est.fit(runs)
        diag = {k: v for k, v in est.to_dict()["fit"].items() if k not in ("fixed", "tie")}
        n_free = getattr(est, "n_free_params", len(est.param_names))
        return Point(params=dict(est.params_), estimator=est, n_points=int(est.n_points_), n_free=n_free,
                     warnings=list(est.convergence_warnings_), diagnostics=diag)

    def resample(self, runs, point, s, boot):
        res, notes = _capture(bootstrap, point.estimator, runs, **boot)
        samples = res.samples[[*point.estimator.param_names, "converged"]].copy()
        samples.attrs["notes"] = notes
        return samples

    def backtest(self, runs, s, threshold, axis):
        column = s.x if axis == "x" else axis
        bt = _backtest_parametric(self.make(s), runs, holdout_above=threshold, axis=column)
        return ({"axis": column, "holdout_above": threshold, "target": "loss", **bt.summary,
                 "fit_params": dict(bt.estimator.params_), "fit_warnings": list(bt.estimator.convergence_warnings_)},
                bt.predictions)


class PowerLaw(_Parametric):
    name = "power"
    formula = "L(x) = E + A x^-alpha"

    def require(self, s):
        return ("loss", s.x)

    def extra(self, s):
        return {"x": s.x}

    def derived(self, p, s):
        if s.x != "C":
            return {}
        law = self.estimator_class(x="C")
        with np.errstate(all="ignore"):
            return {at_key("loss", C): law._value([np.asarray(C, float)], p) for C in s.at_flops}


class BrokenPowerLaw(PowerLaw):
    name = "broken_power"
    formula = "L(x) = E + A x^-alpha (1 + (x/x_b)^(1/f))^(-c f) (one break, Caballero et al. 2022)"
    estimator_class = BrokenPowerLawFit


class DataConstrained(_Parametric):
    name = "data-constrained"
    formula = "L(N, D, U) of Muennighoff et al. 2023: repeated tokens and excess parameters discounted"
    columns = ("N", "D", "U", "loss")
    axes = ("C", "N", "D")
    estimator_class = DataConstrainedFit


class Chinchilla(_Parametric):
    name = "chinchilla"
    formula = "L(N, D) = E + A/N^alpha + B/D^beta"
    estimator_class = ChinchillaFit
    columns = ("N", "D", "loss")

    def derived(self, p, s):
        """Hoffmann et al. 2022, eq. 4, with C = 6 N D: N_opt = G (C/6)^a, D_opt = (C/6)^b / G."""
        with np.errstate(all="ignore"):
            al, be = p["alpha"], p["beta"]
            a, b = be / (al + be), al / (al + be)
            G = (al * p["A"] / (be * p["B"])) ** (1.0 / (al + be))
        out = {"a": a, "b": b, "G": G}
        out.update(_at_flops(p, s.at_flops, lambda C: G * (C / 6.0) ** a, lambda C: (C / 6.0) ** b / G,
                             lambda C, n, d: p["E"] + p["A"] * n ** -al + p["B"] * d ** -be))
        return out


class Kaplan(_Parametric):
    name = "kaplan"
    formula = "L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D"
    estimator_class = KaplanFit
    columns = ("N", "D", "loss")

    def derived(self, p, s):
        """The N minimising L(N, C/(6N)): N^(r+1) = r N_c^r C / (6 D_c), r = alpha_N / alpha_D."""
        with np.errstate(all="ignore"):
            r = p["alpha_N"] / p["alpha_D"]

            def n_opt(C):
                return (r * p["N_c"] ** r * C / (6.0 * p["D_c"])) ** (1.0 / (r + 1.0))
            out = {"a": 1.0 / (r + 1.0), "b": r / (r + 1.0)}
            out.update(_at_flops(p, s.at_flops, n_opt, lambda C: C / (6.0 * n_opt(C)),
                                 lambda C, n, d: ((p["N_c"] / n) ** r + p["D_c"] / d) ** p["alpha_D"]))
        return out


def _approach1_params(runs: pd.DataFrame, exponents_of=()) -> dict[str, float]:
    a1 = approach1(runs)
    out = {"N_coef": a1.N_coef, "D_coef": a1.D_coef, "a": a1.a, "b": a1.b}
    if exponents_of:
        best = compute_frontier(runs)
        lc = np.log(best["C"].to_numpy(float))
        for col in exponents_of:
            out[f"a_{col}"] = float(np.polyfit(lc, np.log(best[col].to_numpy(float)), 1)[0])
    return out


def _approach1_derived(p, s):
    out = {k: p[k] for k in p if k == "a" or k == "b" or k.startswith("a_")}
    out.update(_at_flops(p, s.at_flops, lambda C: p["N_coef"] * C ** p["a"], lambda C: p["D_coef"] * C ** p["b"]))
    return out


def _approach1_backtest(runs, s, threshold):
    train, _ = split_runs(runs, threshold, "C")
    a1 = approach1(train)
    front = compute_frontier(runs)
    test = front[front["C"].to_numpy(float) > threshold]
    if len(test) == 0:
        raise FitError(f"no run above {threshold:.3g} FLOPs improves on the frontier below it; lower --holdout-above")
    c = test["C"].to_numpy(float)
    table = _relative_table({"run": test["run"].to_numpy(), "C": c}, test["N"], a1.n_opt(c))
    table["measured_D"], table["predicted_D"] = test["D"].to_numpy(float), a1.D_coef * c ** a1.b
    info = {"axis": "C", "holdout_above": threshold, "target": "N_opt", "n_train": int(len(train)),
            "n_test": int(len(test)), **error_summary(table["measured"], table["predicted"]),
            "fit_params": {"a": a1.a, "b": a1.b, "N_coef": a1.N_coef, "D_coef": a1.D_coef}}
    return info, table


class Frontier(_Parametric):
    name = "frontier"
    formula = "L(C) = E + A C^-alpha on the compute-efficient frontier; N_opt = N_coef C^a (Approach 1)"
    estimator_class = FrontierFit
    axes = ("C", "x")
    columns = ("C", "loss")

    def fit(self, runs, s):
        point = super().fit(runs, s)
        est = point.estimator
        point.n_points = len(est.frontier_)
        point.tables["frontier"] = est.frontier_
        if est.approach1_ is not None:
            point.params.update(_approach1_params(runs, s.exponents_of))
            point.regression_se.update({"a": est.approach1_.a_se, "b": est.approach1_.b_se})
            point.tables["approach1"] = est.approach1_.points
        return point

    def resample(self, runs, point, s, boot):
        samples = super().resample(runs, point, s, boot)
        if "N_coef" in point.params:
            a1 = bootstrap_statistic(lambda r: _approach1_params(r, s.exponents_of), runs,
                                     **{k: boot[k] for k in ("n_resamples", "level", "cluster", "random_state")})
            for k in a1.samples.columns.drop("converged"):
                samples[k] = a1.samples[k].to_numpy()
            samples["converged"] &= a1.samples["converged"].to_numpy()
        return samples

    def derived(self, p, s):
        out = {}
        if "N_coef" in p:
            out.update({k: v for k, v in p.items() if k in ("a", "b") or k.startswith("a_")})
            out.update(_approach1_derived(p, s))
        with np.errstate(all="ignore"):
            out.update({at_key("loss", C): p["E"] + p["A"] * C ** -p["alpha"] for C in s.at_flops})
        return out

    def backtest(self, runs, s, threshold, axis):
        info, table = super().backtest(runs, s, threshold, "C")
        if {"N", "D"} <= set(runs.columns):
            try:
                a1_info, a1_table = _approach1_backtest(runs, s, threshold)
                info["approach1"] = {k: v for k, v in a1_info.items() if k not in ("axis", "holdout_above")}
            except FitError as exc:
                info["approach1"] = {"note": str(exc)}
        return info, table


# ------------------------------------------------------ closed-form laws

class _Statistic(Law):
    """Laws refitted in a plain loop on each resample (cheap closed forms)."""

    def statistic(self, runs, s) -> dict[str, float]:
        raise NotImplementedError

    def resample(self, runs, point, s, boot):
        keys = ("n_resamples", "level", "cluster", "random_state")
        res, notes = _capture(bootstrap_statistic, lambda r: self.statistic(r, s), runs,
                              **{k: boot[k] for k in keys})
        samples = res.samples.copy()
        samples.attrs["notes"] = notes
        return samples


class Approach1(_Statistic):
    name = "approach1"
    formula = "N_opt = N_coef C^a, D_opt = D_coef C^b over the compute-efficient runs (Hoffmann et al. Approach 1)"
    columns = ("N", "D", "C", "loss")

    def statistic(self, runs, s):
        return _approach1_params(runs, s.exponents_of)

    def fit(self, runs, s):
        a1 = approach1(runs)
        p = self.statistic(runs, s)
        return Point(params=p, estimator=a1, n_points=len(a1.points), n_free=2,
                     tables={"frontier": a1.points}, regression_se={"a": a1.a_se, "b": a1.b_se})

    def derived(self, p, s):
        return _approach1_derived(p, s)

    def backtest(self, runs, s, threshold, axis):
        return _approach1_backtest(runs, s, threshold)


class IsoFlop(_Statistic):
    name = "isoflop"
    formula = "per budget, the minimum of loss in log N; N_opt = N_coef C^a, D_opt = D_coef C^b (Approach 2)"
    columns = ("N", "C", "loss")

    def prepare(self, runs, s):
        if s.budget is not None:
            return runs.assign(_budget=runs[s.budget].to_numpy(float))
        return runs.assign(_budget=budget_of_runs(runs["C"].to_numpy(float), tolerance=s.tolerance))

    def profiles(self, runs, s):
        return isoflop_profiles(runs, budget="_budget", include_outside=s.include_outside, method=s.isoflop_method,
                                window_decades=s.window_decades)

    def statistic(self, runs, s):
        r = self.profiles(runs, s)
        return {"N_coef": r.N_coef, "D_coef": r.D_coef, "a": r.a, "b": r.b}

    def fit(self, runs, s):
        r = self.profiles(runs, s)
        tables, notes = {"profiles": r.profiles}, list(r.warnings)
        bias = self.sampling_bias(r, runs, s)
        if bias is not None:
            tables["sampling_bias"] = bias
            notes += [f"budget {row.C:.3g} FLOPs: {row.note}" for row in bias.itertuples() if row.flag]
        return Point(params={"N_coef": r.N_coef, "D_coef": r.D_coef, "a": r.a, "b": r.b}, estimator=r,
                     n_points=r.n_used, n_free=2, tables=tables, warnings=notes,
                     regression_se={"a": r.a_se, "b": r.b_se},
                     diagnostics={"n_budgets": int(len(r.profiles)), "n_budgets_used": r.n_used,
                                  "D_opt_from": "the runs' D, interpolated in log N at N_opt" if not s.d_derived
                                  else f"D = {s.d_derived} (the table has no D of its own), at N_opt"})

    @staticmethod
    def sampling_bias(r, runs, s):
        """Per budget, the minimum's shift caused by where the sizes were sampled, judged on a smooth
        Chinchilla surface (:func:`scalinglab.fit.select.isoflop_bias`); None where no surface can be fitted."""
        from scalinglab.fit.select import isoflop_bias

        if s.isoflop_method != "parabola" or len(runs) < 6:
            return None  # the diagnostic is of the parabola's bias; window and Akima minima are local
        try:
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore")
                return isoflop_bias(r, runs)
        except (FitError, DataError, ValueError, np.linalg.LinAlgError):
            return None

    def derived(self, p, s):
        return _approach1_derived(p, s)

    def backtest(self, runs, s, threshold, axis):
        """Fit the exponents on budgets <= threshold; predict N_opt at the larger budgets' measured minima."""
        prof = self.profiles(runs, s).profiles
        ok = prof["N_opt"].notna() & (prof["inside"] | s.include_outside)
        train, test = prof[ok & (prof["C"] <= threshold)], prof[ok & (prof["C"] > threshold)]
        if len(test) == 0:
            raise FitError(f"no budget above {threshold:.4g} FLOPs has a measured minimum to predict; "
                           "lower --holdout-above")
        if len(train) < 2:
            raise FitError(f"only {len(train)} budget(s) at or below {threshold:.4g} FLOPs have a minimum; the "
                           "exponent fit needs 2: raise --holdout-above")
        from scalinglab.fit.frontier import _loglog
        a, ia, _ = _loglog(train["C"].to_numpy(float), train["N_opt"].to_numpy(float))
        b, ib, _ = _loglog(train["C"].to_numpy(float), train["D_opt"].to_numpy(float))
        c = test["C"].to_numpy(float)
        table = _relative_table({"C": c}, test["N_opt"], np.exp(ia) * c ** a)
        table["measured_D"], table["predicted_D"] = test["D_opt"].to_numpy(float), np.exp(ib) * c ** b
        info = {"axis": "C", "holdout_above": threshold, "target": "N_opt", "n_train": int(len(train)),
                "n_test": int(len(test)), **error_summary(table["measured"], table["predicted"]),
                "fit_params": {"a": a, "b": b, "N_coef": float(np.exp(ia)), "D_coef": float(np.exp(ib))}}
        return info, table


class Auto(Law):
    """The law that extrapolates best: ``compare_laws``'s rolling back-test over compute levels picks it."""

    name = "auto"
    formula = "chosen by a rolling back-test over compute levels (scalinglab.fit.select.compare_laws)"
    CHOICES = {"power_C": ("power", "C"), "power_N": ("power", "N"), "power_D": ("power", "D"),
               "broken_power_C": ("broken_power", "C"), "chinchilla": ("chinchilla", None),
               "kaplan": ("kaplan", None), "data-constrained": ("data-constrained", None)}

    def resolve(self, runs, s):
        from scalinglab.fit.select import compare_laws
        comparison, notes = _capture(compare_laws, runs)
        law, x = self.CHOICES[comparison.chosen]
        record = {"requested": "auto", "chosen": comparison.chosen, "reason": comparison.reason,
                  "metric": comparison.metric, "table": comparison.table.reset_index(), "notes": notes}
        return LAWS[law], replace(s, x=x or s.x), record


for _law in (PowerLaw(), Frontier(), Approach1(), IsoFlop(), Chinchilla(), Kaplan(), BrokenPowerLaw(),
             DataConstrained(), Auto()):
    register_law(_law)


# ------------------------------------------------------ table checks

_NOT_LABELS = {"N", "D", "C", "loss", "run", "seed", "weight", "_budget"}


def _setting(runs: pd.DataFrame, selection: dict) -> tuple[str, ...]:
    """The columns that define a run's setting: (N, D) when both are the table's own, else (C, N)."""
    own = set(selection.get("columns", {}))
    if {"N", "D"} <= own and {"N", "D"} <= set(runs.columns):
        return ("N", "D")
    return tuple(k for k in ("C", "N") if k in runs.columns) or tuple(k for k in ("D",) if k in runs.columns)


def check_table(runs: pd.DataFrame, selection: dict, *, group_by: str | None = None,
                budget: str | None = None) -> list[str]:
    """Warnings about silent choices; DataError when the table evidently mixes experiments.

    A table mixes experiments when settings repeat and a label column (text,
    true/false, category) with repeating values tells the copies apart: it
    names the column. A numeric column that does so is a hyperparameter (e.g.
    several learning rates per setting): a warning.
    """
    notes: list[str] = []
    setting = _setting(runs, selection)
    skip = _NOT_LABELS | {group_by, budget} | set(selection.get("columns", {}).values())
    if setting and len(runs) > 1:
        # the grouping (or variant) column tells its groups' copies of a setting apart by design
        keys = runs[[*setting, *([group_by] if group_by in runs.columns else [])]]
        keys = keys.round(decimals=12) if group_by is None else keys.apply(
            lambda col: col.round(12) if col.dtype.kind in "fc" else col)
        dup = keys.duplicated(keep=False).to_numpy()
        if dup.any():
            groups = keys[dup].astype(str).agg("|".join, axis=1)
            n_settings = int(groups.nunique())
            explained = False
            for col in runs.columns:
                if col in skip or runs[col].isna().all():
                    continue
                values = runs[col]
                if values.nunique(dropna=False) > max(1, len(runs) // 2) or values.nunique(dropna=False) < 2:
                    continue                      # a per-run value (a metric, an id) or a constant
                try:
                    differs = values[dup].groupby(groups).nunique(dropna=False) > 1
                except TypeError:
                    continue
                if not differs.any():
                    continue
                explained = True
                shown = ", ".join(map(repr, values.dropna().unique()[:4])) + (", ..." if values.nunique() > 4 else "")
                what = f"{int(differs.sum())} of the {n_settings} repeated ({', '.join(setting)}) settings"
                if values.dtype.kind in "biufc" and values.dtype.kind != "b":
                    notes.append(f"several rows per setting differ in {col!r} ({shown}): {what}; the fit pools "
                                 f"them (choose one with --where, e.g. the best per setting, or --group-by {col})")
                else:
                    first = values.dropna().iloc[0]
                    raise DataError(f"the table mixes experiments: {what} appear with different {col!r} "
                                    f"({shown}); fit them one at a time (--group-by {col}) or pick one "
                                    f"(--where \"{col} == {first!r}\")")
            if not explained and "seed" not in runs.columns:
                notes.append(f"{int(dup.sum())} runs repeat {n_settings} ({', '.join(setting)}) settings and no "
                             "column tells them apart; they are fitted as replicates")
    own = set(selection.get("columns", {}))
    nominal = [c for c in (budget, "C" if "C" in own else None) if c is not None]
    if {"N", "D"} <= own and selection.get("flops_per_token", "6 N") == "6 N":
        for col in nominal:
            ratio = runs[col].to_numpy(float) / (6.0 * runs["N"].to_numpy(float) * runs["D"].to_numpy(float))
            off = np.abs(ratio - 1.0) > NOMINAL_TOLERANCE
            if off.any():
                notes.append(f"{'the budgets' if col == budget else 'the FLOPs C'} differ from 6 N D by more than "
                             f"{NOMINAL_TOLERANCE:.0%} in {int(off.sum())} of {len(ratio)} runs ({col} / 6ND from "
                             f"{ratio.min():.3g} to {ratio.max():.3g}); fits in C use {col} as given, the "
                             "Chinchilla allocation assumes C = 6ND")
    return notes


# ------------------------------------------------------ intervals

def _intervals(point_values: dict[str, float], samples: pd.DataFrame | None, regression_se: dict[str, float],
               level: float, n_resamples: int, support_note: str) -> dict[str, Interval]:
    from scipy.stats import norm

    out: dict[str, Interval] = {}
    z = float(norm.ppf(0.5 + level / 2))
    ok = samples["converged"].to_numpy(bool) if samples is not None else None
    for k, est in point_values.items():
        if samples is not None and k in samples.columns:
            v = samples[k].to_numpy(float)[ok]
            v = v[np.isfinite(v)]
            n_failed = int(n_resamples - v.size)
            if v.size >= 2:
                se = float(np.std(v, ddof=1))
                lo, hi = (float(q) for q in np.percentile(v, [50 * (1 - level), 50 * (1 + level)]))
            else:
                se, lo, hi = math.nan, math.nan, math.nan
            note, supported = support_note, not support_note
            if supported and v.size < max(2, n_resamples // 2):
                supported, note = False, f"only {v.size} of {n_resamples} resamples gave a value"
            elif supported and v.size >= 2 and hi - lo <= 1e-12 * max(1.0, abs(est)):
                supported, note = False, ("every resample gave the same value: the data cannot show the "
                                          "uncertainty (too few distinct runs for the parameters)")
            out[k] = Interval(est, se, lo, hi, level, "bootstrap", n_resamples, n_failed, supported, note)
        elif k in regression_se and math.isfinite(regression_se[k]):
            se = regression_se[k]
            out[k] = Interval(est, se, est - z * se, est + z * se, level, "regression",
                              supported=not support_note, note=support_note)
        else:
            out[k] = Interval(est, level=level, supported=not support_note, note=support_note)
    return out


# ------------------------------------------------------ the entry points

def fit_law(runs, law: str = "chinchilla", *, x: str | None = None, n_resamples: int = 200, level: float = 0.95,
            cluster: str | None = "auto", random_state: int | None = 0, n_jobs: int = 1, at_flops=(),
            holdout_above: float | None = None, holdout_axis: str = "C", budget: str | None = None,
            isoflop_method: str = "parabola", window_decades: float = 0.5, include_outside: bool = False,
            fixed: dict[str, float] | None = None, tie: dict[str, str] | None = None, weight: str | None = None,
            where: str | None = None, drop_highest: int = 0, starts: Any = None, exponents_of: tuple[str, ...] = (),
            columns: dict[str, str] | None = None, flops_per_token=None, check_mixed: bool = True,
            group_by: str | None = None, study: str | None = None) -> FitResult:
    """Fit ``law`` (a key of ``LAWS``) to ``runs`` (a path or DataFrame) with intervals, back-test and checks.

    ``n_resamples`` bootstrap draws (0: regression intervals where the law has
    them); ``at_flops`` budgets for N_opt, D_opt, loss; ``holdout_above`` /
    ``holdout_axis`` a back-test; ``budget``, ``isoflop_method``,
    ``window_decades`` IsoFLOP settings; ``fixed``/``tie``/``weight``
    constraints and per-run weights of the multistart laws; ``where`` a
    pandas query on the table; ``columns`` maps n, d, c, loss, seed to the
    table's names; ``flops_per_token`` as in :func:`load_runs`; ``study`` keeps
    one study's runs of a run store. Use
    :func:`fit_groups` for one fit per value of a column.
    """
    if group_by is not None:
        raise FitError("fit_law fits one table; use fit_groups(runs, law, group_by=...) for one fit per group")
    spec = _law(law)
    s = _settings(spec, x=x, at_flops=at_flops, budget=budget, isoflop_method=isoflop_method,
                  window_decades=window_decades, include_outside=include_outside, fixed=fixed, tie=tie,
                  starts=starts, exponents_of=tuple(exponents_of))
    frame, selection = select_runs(runs, spec, s, columns=columns, weight=weight, where=where,
                                   drop_highest=drop_highest, flops_per_token=flops_per_token, study=study)
    return _fit_selected(frame, selection, spec, s, n_resamples=n_resamples, level=level, cluster=cluster,
                         random_state=random_state, n_jobs=n_jobs, holdout_above=holdout_above,
                         holdout_axis=holdout_axis, check_mixed=check_mixed)


def fit_groups(runs, law: str = "chinchilla", *, group_by: str, where: str | None = None,
               columns: dict[str, str] | None = None, weight: str | None = None, drop_highest: int = 0,
               flops_per_token=None, study: str | None = None, **options) -> dict[Any, FitResult]:
    """One :func:`fit_law` per value of column ``group_by`` (after ``where``), in sorted order of the values."""
    spec = _law(law)
    s = _settings(spec, **{k: options.pop(k) for k in list(options) if k in Settings.__dataclass_fields__
                           and k != "d_derived"})
    frame, selection = select_runs(runs, spec, s, columns=columns, weight=weight, where=where,
                                   drop_highest=0, flops_per_token=flops_per_token, study=study, group_by=group_by)
    if group_by not in frame.columns:
        raise DataError(f"--group-by column {group_by!r} is not in the table; columns are: "
                        + ", ".join(map(str, frame.columns)))
    if frame[group_by].isna().any():
        raise DataError(f"column {group_by!r} is empty in {int(frame[group_by].isna().sum())} rows; fill them or "
                        f"leave those rows out with --where \"{group_by} == {group_by}\"")
    out = {}
    for value, part in sorted(frame.groupby(group_by, sort=False), key=lambda kv: _sort_key(kv[0])):
        part = drop_highest_loss(part.reset_index(drop=True), drop_highest)
        sel = {**selection, "group": {"column": group_by, "value": value}, "n_runs": int(len(part)),
               "dropped": {**selection["dropped"], **({"highest_loss": drop_highest} if drop_highest else {})}}
        try:
            out[value] = _fit_selected(part, sel, spec, s, **options)
        except (FitError, DataError) as exc:
            raise type(exc)(f"group {group_by} = {value!r}: {exc}") from None
    return out


def compare_variants(runs, law: str = "chinchilla", *, variant: str, reference=None, where: str | None = None,
                     columns: dict[str, str] | None = None, weight: str | None = None, flops_per_token=None,
                     x: str | None = None, study: str | None = None, **options):
    """Variants of a recipe as compute multipliers (:func:`scalinglab.fit.variants.fit_variants`) on a
    table selected as :func:`fit_law` selects it; the variant column is the one allowed to repeat settings."""
    from scalinglab.fit.variants import fit_variants

    spec = _law(law)
    s = _settings(spec, x=x)
    frame, selection = select_runs(runs, spec, s, columns=columns, weight=weight, where=where,
                                   flops_per_token=flops_per_token, study=study)
    if variant not in frame.columns:
        raise DataError(f"--variant column {variant!r} is not in the table; columns are: "
                        + ", ".join(map(str, frame.columns)))
    notes = check_table(frame, selection, group_by=variant)
    comparison, caught = _capture(fit_variants, frame, law, variant, reference, x=s.x, **options)
    return comparison, [*notes, *caught]


def _sort_key(v):
    return (0, float(v), "") if isinstance(v, (int, float, np.integer, np.floating)) else (1, 0.0, str(v))


def _law(name: str) -> Law:
    if name not in LAWS:
        raise FitError(f"unknown law {name!r}; use one of {', '.join(LAWS)}")
    return LAWS[name]


def _settings(spec: Law, *, x=None, at_flops=(), **kw) -> Settings:
    if x is not None and not isinstance(spec, PowerLaw):
        raise FitError("x (--x) is only for the power laws")
    flops = []
    for v in ([at_flops] if np.isscalar(at_flops) or at_flops is None else list(at_flops)):
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise FitError(f"--at-flops takes numbers of FLOPs, got {v!r}") from None
        if not math.isfinite(f) or f <= 0:
            raise FitError(f"--at-flops must be positive, finite numbers of FLOPs, got {v!r}")
        flops.append(f)
    return Settings(x=x or "C", at_flops=tuple(dict.fromkeys(flops)), **kw)


def select_runs(runs, spec: Law, s: Settings, *, columns=None, weight=None, where=None, drop_highest=0,
                flops_per_token=None, study: str | None = None,
                group_by: str | None = None) -> tuple[pd.DataFrame, dict]:
    """Load ``runs``, keep ``study``'s runs (a run store), apply ``where`` and ``drop_highest``; return the
    frame and the selection record. Runs of several studies are refused unless grouped or selected."""
    opts = dict(columns or {})
    unknown = set(opts) - {"n", "d", "c", "loss", "seed"}
    if unknown:
        raise FitError(f"columns takes n, d, c, loss, seed; got {sorted(unknown)}")
    require = tuple(k for k in spec.require(s) if k)
    frame, selection = load_runs_selection(runs, **opts, x=s.x if isinstance(spec, PowerLaw) else None,
                                           budget=s.budget, weight=weight, flops_per_token=flops_per_token,
                                           require=require)
    if weight is None and "weight" in frame.columns:
        frame = frame.rename(columns={"weight": "weight (unused)"})
    dropped = {}
    if study is not None:
        if "study" not in frame.columns:
            raise DataError(f"--study {study!r}: the table has no study column (only a scalinglab run store has one)")
        member = frame["study"].fillna("").astype(str).str.split(",").apply(lambda names: study in names)
        if not member.any():
            names = sorted({n for v in frame["study"].dropna().astype(str) for n in v.split(",") if n})
            raise DataError(f"no runs of study {study!r}; the store holds: {', '.join(names) or 'none'}")
        dropped["study"] = int((~member).sum())
        frame = frame[member.to_numpy()].reset_index(drop=True)
    if where:
        try:
            kept = frame.query(where)
        except Exception as exc:               # pandas raises many kinds for a bad expression
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"--where {where!r} failed ({first}); columns are: "
                            + ", ".join(map(str, frame.columns))) from None
        if not isinstance(kept, pd.DataFrame) or len(kept) == 0:
            raise DataError(f"--where {where!r} keeps no runs of {len(frame)}")
        dropped["where"] = int(len(frame) - len(kept))
        frame = kept.reset_index(drop=True)
    if study is None and group_by != "study" and "study" in frame.columns:
        names = sorted({n for v in frame["study"].dropna().astype(str) for n in v.split(",") if n})
        if len(names) > 1:
            raise DataError(f"the runs belong to {len(names)} studies ({', '.join(names)}); fit one with "
                            "--study NAME, or each with --group-by study")
    if drop_highest:
        frame = drop_highest_loss(frame, drop_highest)
        dropped["highest_loss"] = int(drop_highest)
    selection.update(where=where, dropped=dropped, n_runs=int(len(frame)))
    if study is not None:
        selection["study"] = study
    if weight is not None:
        selection["weight"] = weight
    return frame, selection


def _fit_selected(frame: pd.DataFrame, selection: dict, spec: Law, s: Settings, *, n_resamples: int = 200,
                  level: float = 0.95, cluster: str | None = "auto", random_state: int | None = 0,
                  n_jobs: int = 1, holdout_above: float | None = None, holdout_axis: str = "C",
                  check_mixed: bool = True) -> FitResult:
    if n_resamples < 0 or n_resamples == 1:
        raise FitError(f"the bootstrap needs 0 (none) or at least 2 resamples, got {n_resamples}")
    if not 0 < level < 1:
        raise FitError(f"the interval level must be between 0 and 1, got {level}")
    s = replace(s, d_derived=selection.get("derived", {}).get("D", ""))
    notes = check_table(frame, selection, budget=s.budget) if check_mixed else []
    if "weight (unused)" in frame.columns:
        notes.append("the table's 'weight' column is not used as fit weights; pass --weight weight to use it")
    spec, s, choice = spec.resolve(frame, s)
    runs = spec.prepare(frame, s)
    if s.at_flops and isinstance(spec, PowerLaw) and s.x != "C":
        notes.append(f"--at-flops: a power law in {s.x} cannot answer at a FLOP budget; fit --law power --x C")
    point, fit_notes = _capture(spec.fit, runs, s)
    notes.extend(fit_notes)
    notes.extend(point.warnings)

    def values(p):
        arrays = {k: np.array([v], dtype=float) for k, v in p.items()}
        return {**p, **{k: float(np.asarray(v).ravel()[0]) for k, v in spec.derived(arrays, s).items()}}
    estimates = values(point.params)
    derived = {k: v for k, v in estimates.items() if k not in point.params or k in ("a", "b")
               or k.startswith("a_")}
    params = {k: v for k, v in point.params.items() if k not in derived}
    support = ""
    if point.n_points < point.n_free + SUPPORT_MARGIN:
        support = (f"{point.n_points} point(s) behind {point.n_free} free parameter(s): too few for an interval "
                   f"(needs at least {point.n_free + SUPPORT_MARGIN}); add runs")
    samples, boot_info = None, {}
    if n_resamples > 0 and not support:
        clu = resolve_cluster(runs, cluster)
        boot = {"n_resamples": n_resamples, "level": level, "cluster": clu, "random_state": random_state,
                "n_jobs": n_jobs}
        draws = spec.resample(runs, point, s, boot)
        notes.extend(draws.attrs.get("notes", []))
        arrays = {c: draws[c].to_numpy(float) for c in draws.columns if c != "converged"}
        samples = pd.DataFrame({**arrays, **spec.derived(arrays, s)})
        samples["converged"] = draws["converged"].to_numpy(bool)
        n_failed = int((~samples["converged"]).sum())
        if n_failed:
            notes.append(f"{n_failed} of {n_resamples} bootstrap resamples failed (did not converge, or had no "
                         "fit) and are left out of the intervals")
        boot_info = {"n_resamples": n_resamples, "cluster": clu,
                     "n_clusters": int(runs[clu].nunique()) if clu else int(len(runs)), "interval": "percentile",
                     "random_state": random_state}
    intervals = _intervals(estimates, samples, point.regression_se, level, n_resamples, support)
    if support and n_resamples > 0:
        notes.append(f"intervals not supported: {support}")
    for k, v in (s.fixed or {}).items():
        if k in intervals:
            intervals[k] = Interval(float(v), 0.0, float(v), float(v), level, "none", note="fixed at this value")
    bad = [k for k, iv in intervals.items() if not iv.supported and iv.note != support]
    if bad:
        notes.append(f"intervals of {', '.join(bad)} are not supported: {intervals[bad[0]].note}")

    result = FitResult(law=spec.name, params=params, derived=derived, intervals=intervals,
                       tables=dict(point.tables), warnings=list(dict.fromkeys(notes)), selection=selection,
                       method={"level": level, "bootstrap": boot_info or None, "at_flops": list(s.at_flops),
                               **_law_method(spec, s)},
                       diagnostics=point.diagnostics, formula=spec.formula, estimator=point.estimator,
                       samples=samples, runs=runs)
    if choice:
        result.tables["law_selection"] = choice.pop("table")
        result.warnings.extend(f"law selection: {m}" for m in choice.pop("notes"))
        result.method["law_selection"] = choice
    if s.at_flops:
        result.tables["compute_optimal"] = _at_flops_table(result, s.at_flops)
    if holdout_above is not None:
        if holdout_axis not in spec.axes:
            raise FitError(f"the {spec.name} law back-tests along {', '.join(spec.axes)}, not {holdout_axis!r}")
        (info, table), bt_notes = _capture(spec.backtest, runs, s, float(holdout_above), holdout_axis)
        result.backtest = info
        result.tables["backtest"] = table
        result.warnings.extend(f"back-test: {m}" for m in [*bt_notes, *info.get("fit_warnings", [])])
    return result


def _law_method(spec: Law, s: Settings) -> dict:
    out: dict[str, Any] = {}
    if isinstance(spec, _Parametric):
        out.update(objective="huber on log residuals, summed", starts=s.starts if isinstance(s.starts, str) else
                   ("default" if s.starts is None else "custom"), fixed=s.fixed or {}, tie=s.tie or {})
        if isinstance(spec, PowerLaw):
            out["x"] = s.x
    if spec.name == "isoflop":
        out.update(isoflop_method=s.isoflop_method, include_outside=s.include_outside,
                   budgets=f"column {s.budget!r}" if s.budget else f"FLOPs grouped within {s.tolerance:g} decades")
        if s.isoflop_method == "window":
            out["window_decades"] = s.window_decades
    if spec.name in ("chinchilla", "kaplan") and s.at_flops:
        out["allocation"] = "C = 6 N D"
    return out


def _at_flops_table(result: FitResult, flops) -> pd.DataFrame:
    rows = []
    for C in flops:
        row: dict[str, Any] = {"C": C}
        for q in ("N_opt", "D_opt", "tokens_per_param", "loss"):
            k = at_key(q, C)
            if k in result.derived:
                iv = result.intervals.get(k)
                row[q] = result.derived[k]
                row[f"{q}_lo"], row[f"{q}_hi"] = (iv.lo, iv.hi) if iv else (math.nan, math.nan)
        rows.append(row)
    return pd.DataFrame(rows)
