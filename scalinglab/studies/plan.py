"""Plan the next runs: the (N, D) settings that most shrink the interval of one answer per FLOP.

``plan_runs(points, question="a", target_flops=C*, budget_flops=B, candidates=...)``
fits the law (:func:`scalinglab.fit.fit_law`, with its bootstrap interval of
the answer) and reads what each candidate run would teach from the bootstrap
draws of the law: per draw, the answer and the run's predicted log loss. A
run's outcome is that prediction plus a new run's noise
(:func:`scalinglab.fit.noise.noise_model`: seed variance and lack of fit), so
observing it removes Cov(answer, outcome)^2 / (Var(outcome) + sigma^2) of the
answer's variance (Gaussian conditioning on the draws' joint covariance: an
ensemble Kalman update, no refit per candidate). The run removing the most
variance per FLOP is taken, the covariance conditioned on it, and the search
repeats until the budget is spent (greedy; a setting can be chosen again with
its next seed). The expected interval is the current one scaled by the ratio
of standard deviations.

Why not refit per simulated outcome: with 48 bootstrap refits per candidate,
the Monte-Carlo noise of the simulated interval width (10-30%) exceeded the
effect of one run (1-5%), so the ranking was noise (docs/planning.md).

The answer is one of: ``a`` (the allocation exponent, N_opt ~ C^a), ``n_opt``
(N_opt at C*) or ``loss`` (the loss at C*), as the law derives them
(Chinchilla and Kaplan: with C = 6 N D). Widths are absolute for ``a`` and
``loss`` and in natural log for ``n_opt`` (a factor).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from scalinglab.errors import ConfigError, FitError
from scalinglab.fit.result import at_key

QUESTIONS = ("a", "n_opt", "loss")
PLANNABLE_LAWS = ("chinchilla", "kaplan")
DEFAULT_SEEDS = (0, 1, 2)
MIN_DRAWS = 10                     # bootstrap draws the covariances need at the least
CLIP_Q = (1.0, 99.0)               # answers of the draws are clipped to these percentiles
MIN_GAIN = 1e-4                    # a run must remove at least this share of the answer's variance


def answer_key(question: str, target_flops: float) -> str:
    """The fit's name of the quantity a question asks for (``a``, ``N_opt@C*``, ``loss@C*``)."""
    if question not in QUESTIONS:
        raise ConfigError(f"question {question!r} is unknown; ask one of: {', '.join(QUESTIONS)}")
    return {"a": "a", "n_opt": at_key("N_opt", target_flops), "loss": at_key("loss", target_flops)}[question]


def interval_width(question: str, lo: float, hi: float) -> float:
    """Width of an interval as the planner compares them: natural-log width for N_opt, else hi - lo."""
    if question == "n_opt":
        return float(math.log(hi / lo)) if lo > 0 and hi > 0 else math.nan
    return float(hi - lo)


@dataclass
class Plan:
    """Proposed runs, in the order chosen, with the interval of the answer expected after each."""

    question: str
    key: str                      # the fit's name of the answer
    law: str
    target_flops: float
    budget_flops: float
    estimate: float
    current: tuple[float, float]  # the current interval (lo, hi)
    current_width: float
    table: pd.DataFrame           # one row per proposed run
    isoflop: pd.DataFrame         # sizes spread in log N around the predicted optimum, per budget
    notes: list[str] = field(default_factory=list)

    @property
    def spent_flops(self) -> float:
        return float(self.table["cost_flops"].sum()) if len(self.table) else 0.0

    @property
    def expected_width(self) -> float:
        return float(self.table["expected_width"].iloc[-1]) if len(self.table) else self.current_width

    def configs(self) -> list[dict]:
        """The run configs of the proposed runs (family candidates only)."""
        return [dict(c) for c in self.table["config"]] if "config" in self.table else []

    def to_dict(self) -> dict[str, Any]:
        from scalinglab.fit.result import clean

        return clean({"question": self.question, "quantity": self.key, "law": self.law,
                      "target_flops": self.target_flops, "budget_flops": self.budget_flops,
                      "estimate": self.estimate, "current": {"lo": self.current[0], "hi": self.current[1],
                                                             "width": self.current_width},
                      "expected_width": self.expected_width, "spent_flops": self.spent_flops,
                      "runs": self.table, "isoflop": self.isoflop, "notes": self.notes})

    def describe(self) -> str:
        lo, hi = self.current
        unit = " (log width)" if self.question == "n_opt" else ""
        lines = [f"{self.key} = {self.estimate:.4g}, interval [{lo:.4g}, {hi:.4g}], width {self.current_width:.3g}"
                 f"{unit} ({self.law} fit)"]
        if len(self.table):
            cols = [c for c in ("N", "D", "seed", "cost_flops", "expected_width", "reason") if c in self.table]
            shown = self.table[cols].copy()
            lines += [f"{len(self.table)} proposed run(s), {self.spent_flops:.3g} of {self.budget_flops:.3g} FLOPs; "
                      f"expected width after them {self.expected_width:.3g} (now {self.current_width:.3g}):",
                      shown.to_string(index=False, float_format=lambda v: f"{v:.4g}")]
        else:
            lines.append("no run proposed")
        if len(self.isoflop):
            iso = self.isoflop[self.isoflop["C"] == self.target_flops]
            lines.append(f"IsoFLOP design at {self.target_flops:.3g} FLOPs centred on the fit's N_opt "
                         f"{iso['N_opt'].iloc[0]:.4g}: N = " + ", ".join(f"{n:.3g}" for n in iso["N"])
                         + " (D = C / 6N)")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


# ------------------------------------------------------------------ candidates

def grid_candidates(points: pd.DataFrame, *, optimum: tuple[float, float] | None = None,
                    n_values: int = 8) -> pd.DataFrame:
    """Candidates without a family: a log grid in N and D over the data's range (stretched out to the
    ``optimum`` (N_opt, D_opt) at C*), each costing C = 6 N D."""
    n, d = points["N"].to_numpy(float), points["D"].to_numpy(float)
    n_hi, d_hi = n.max(), d.max()
    if optimum is not None:
        n_hi, d_hi = max(n_hi, optimum[0]), max(d_hi, optimum[1])
    ns, ds = np.geomspace(n.min(), n_hi, n_values), np.geomspace(d.min(), d_hi, n_values)
    grid = pd.DataFrame([(a, b) for a in ns for b in ds], columns=["N", "D"])
    grid["cost_flops"] = 6.0 * grid["N"] * grid["D"]
    return grid


def family_candidates(family, configs: list[dict], *, size: Callable[[dict], tuple[float, float]]) -> pd.DataFrame:
    """Candidates from a family's run configs (seed left out): N and D from ``size``, cost from ``family.cost``."""
    rows = []
    for c in configs:
        n, d = size(c)
        rows.append({"N": float(n), "D": float(d), "cost_flops": float(family.cost(c)), "config": dict(c)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------- fitting

def _points(runs) -> pd.DataFrame:
    """The runs of a table (path or frame) in the canonical columns N, D, loss (and seed where given)."""
    from scalinglab.errors import DataError
    from scalinglab.fit.table import load_runs_selection

    try:
        frame, _ = load_runs_selection(runs, require=("N", "D", "loss"))
    except DataError as exc:
        if str(exc).startswith("no column for"):
            raise FitError(f"a plan needs every run's N, D and loss (how compute is split between them is the "
                           f"question): {exc}") from None
        raise
    return frame


def _setting_means(frame: pd.DataFrame) -> pd.DataFrame:
    """One point per (N, D), sorted: the mean loss over the runs repeating it, with their s.d. and count.

    Sorted so that the fit and its bootstrap depend on the set of runs, not on the order they were read in."""
    if frame.duplicated(["N", "D"]).any():
        frame = frame.groupby(["N", "D"], as_index=False).agg(loss=("loss", "mean"), loss_sd=("loss", "std"),
                                                              n_seeds=("loss", "size"))
    return frame.sort_values(["N", "D", "loss"]).reset_index(drop=True)


def _ensemble(fit, key: str, question: str, candidates: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per bootstrap draw of the law: the answer (log N_opt for ``n_opt``) and every candidate's log loss."""
    draws = fit.samples[fit.samples["converged"]]
    g = draws[key].to_numpy(float)
    params = {k: draws[k].to_numpy(float)[:, None] for k in fit.estimator.param_names}
    inputs = [candidates[c].to_numpy(float)[None, :] for c in ("N", "D")]
    with np.errstate(all="ignore"):
        if question == "n_opt":
            g = np.log(g)
        y = np.log(np.asarray(fit.estimator._value(inputs, params), dtype=float))       # (R, K)
    keep = np.isfinite(g) & np.isfinite(y).all(axis=1)
    if keep.sum() < MIN_DRAWS:
        raise FitError(f"only {int(keep.sum())} bootstrap draws give a finite {key}; too few to plan from "
                       f"(needs {MIN_DRAWS}); add runs or raise n_resamples")
    g, y = g[keep], y[keep]
    lo, hi = np.percentile(g, CLIP_Q)                   # a few wild draws should not set the covariances
    return np.clip(g, lo, hi), y


def _setting(n: float, d: float) -> tuple[float, float]:
    """(N, D) to 9 significant digits: a run's recorded counts match the candidate it was planned from."""
    return float(f"{n:.9g}"), float(f"{d:.9g}")


def _next_seed(used: dict, n: float, d: float, seeds) -> int | None:
    taken = used.get(_setting(n, d), set())
    return next((s for s in seeds if s not in taken), None)


def _used_seeds(frame: pd.DataFrame) -> dict:
    """Seeds already run at each (N, D): the seed column where present, else 0..count-1."""
    used: dict = {}
    for (n, d), part in frame.groupby(["N", "D"]):
        if "seed" in part:
            used[_setting(n, d)] = set(int(s) for s in part["seed"].dropna())
        else:
            k = int(part["n_seeds"].sum()) if "n_seeds" in part else len(part)
            used[_setting(n, d)] = set(range(k))
    return used


def plan_runs(runs_or_points, *, question: str = "a", target_flops: float, budget_flops: float,
              candidates: pd.DataFrame | None = None, law: str = "chinchilla", n_resamples: int = 200,
              seeds=DEFAULT_SEEDS, max_runs: int | None = None, random_state: int = 0,
              fit_options: dict | None = None) -> Plan:
    """Propose the runs whose expected reduction of the answer's interval per FLOP is largest (module doc).

    ``runs_or_points``: a table (path or frame) with N, D and loss, one row
    per run or per setting (``loss_sd``/``n_seeds`` columns for seed means).
    ``candidates``: columns N, D, cost_flops (and ``config`` for a family's
    runs); None: a log grid in N and D costing 6 N D. ``seeds``: the seeds a
    setting may be repeated with. ``n_resamples``: bootstrap draws of the law;
    ``fit_options`` more :func:`fit_law` arguments (e.g. ``starts``).
    Deterministic given the runs and ``random_state``.
    """
    check_question(question, target_flops, budget_flops)
    frame = _points(runs_or_points)
    fit = current_fit(frame, question=question, law=law, target_flops=target_flops, n_resamples=n_resamples,
                      random_state=random_state, fit_options=fit_options)
    return plan_from_fit(fit, frame, question=question, target_flops=target_flops, budget_flops=budget_flops,
                         candidates=candidates, seeds=seeds, max_runs=max_runs)


def check_question(question: str, target_flops: float, budget_flops: float) -> None:
    answer_key(question, target_flops)
    for name, v in (("target_flops", target_flops), ("budget_flops", budget_flops)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ConfigError(f"{name} must be a positive number of FLOPs, got {v!r}")


def current_fit(frame: pd.DataFrame, *, question: str, law: str, target_flops: float, n_resamples: int = 200,
                random_state: int = 0, fit_options: dict | None = None):
    """The law fitted to the setting means of ``frame``, with a supported bootstrap interval of the answer."""
    from scalinglab.fit.fitting import fit_law

    key = answer_key(question, target_flops)
    if law not in PLANNABLE_LAWS:
        raise FitError(f"the planner conditions a law of N and D; use law {' or '.join(PLANNABLE_LAWS)}, not {law!r}")
    points = _setting_means(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_law(points[["N", "D", "loss", *[c for c in ("loss_sd", "n_seeds") if c in points]]], law,
                      at_flops=[target_flops], n_resamples=n_resamples, cluster=None, random_state=random_state,
                      check_mixed=False, **(fit_options or {}))
    iv = fit.intervals.get(key)
    if iv is None or not iv.supported or not np.isfinite(iv.lo) or fit.samples is None:
        why = iv.note if iv is not None and iv.note else "no interval"
        raise FitError(f"no interval for {key} yet ({why}); run a seed design of at least "
                       f"{fit.estimator.n_free_params + 2} distinct (N, D) settings first")
    return fit


def plan_from_fit(fit, frame: pd.DataFrame, *, question: str, target_flops: float, budget_flops: float,
                  candidates: pd.DataFrame | None = None, seeds=DEFAULT_SEEDS, max_runs: int | None = None) -> Plan:
    """:func:`plan_runs` from a fit :func:`current_fit` made of ``frame``."""
    key = answer_key(question, target_flops)
    iv = fit.intervals[key]
    points = fit.runs.reset_index(drop=True)
    notes = []
    if candidates is None:
        opt = tuple(fit.derived.get(at_key(k, target_flops)) for k in ("N_opt", "D_opt"))
        candidates = grid_candidates(points, optimum=opt if all(np.isfinite(v or np.nan) for v in opt) else None)
        notes.append("no family given: candidates are a log grid in N and D costing C = 6 N D each")
    candidates = candidates.reset_index(drop=True)
    if len(candidates) == 0:
        raise ConfigError("no candidate runs to choose from")
    cheapest = candidates.loc[candidates["cost_flops"].idxmin()]
    if cheapest["cost_flops"] > budget_flops:
        raise ConfigError(f"the budget of {budget_flops:.3g} FLOPs is below the cheapest candidate run "
                          f"({cheapest['cost_flops']:.3g} FLOPs at N={cheapest['N']:.4g}, D={cheapest['D']:.4g}); "
                          "raise --budget-flops")
    from scalinglab.fit.noise import noise_model

    sigma = noise_model(fit.estimator, points).sigma_new_run
    g, y = _ensemble(fit, key, question, candidates)
    cov = np.cov(np.column_stack([g, y]), rowvar=False)        # answer first, then the candidates' log losses
    var_now = float(cov[0, 0])
    current_width = interval_width(question, iv.lo, iv.hi)
    if not var_now > 0:
        raise FitError(f"the bootstrap draws of {key} do not vary; nothing to plan")
    used = _used_seeds(frame)
    cost = candidates["cost_flops"].to_numpy(float)
    chosen, left = [], float(budget_flops)
    while max_runs is None or len(chosen) < max_runs:
        seed_of = [_next_seed(used, float(n), float(d), seeds) for n, d in zip(candidates["N"], candidates["D"])]
        open_ = np.array([s is not None for s in seed_of]) & (cost <= left)
        if not open_.any():
            break
        noise = np.diag(cov)[1:] + sigma ** 2
        drop = cov[0, 1:] ** 2 / noise                         # variance of the answer the run removes
        gain = np.where(open_, drop / cost, -np.inf)
        j = int(np.argmax(gain))
        if not drop[j] > MIN_GAIN * cov[0, 0]:
            notes.append("no affordable run is expected to narrow the interval further")
            break
        before = math.sqrt(cov[0, 0])
        cov = cov - np.outer(cov[:, j + 1], cov[j + 1, :]) / noise[j]   # condition on the run's outcome
        factor = math.sqrt(max(cov[0, 0], 0.0)) / before
        row, seed = candidates.loc[j], seed_of[j]
        n, d = float(row["N"]), float(row["D"])
        used.setdefault(_setting(n, d), set()).add(seed)
        left -= cost[j]
        entry = {"N": n, "D": d, "seed": seed, "cost_flops": cost[j],
                 "expected_width": current_width * math.sqrt(max(cov[0, 0], 0.0) / var_now),
                 "reason": f"interval x{factor:.3f}"}
        if "config" in candidates:
            entry["config"] = {**row["config"], "seed": seed}
        chosen.append(entry)
    if not chosen and not notes:
        notes.append("every candidate setting has used all its seeds or costs more than the budget left")
    table = pd.DataFrame(chosen, columns=["N", "D", "seed", "cost_flops", "expected_width", "reason",
                                          *(["config"] if "config" in candidates else [])])
    table["cumulative_flops"] = table["cost_flops"].cumsum()
    return Plan(question=question, key=key, law=fit.law, target_flops=float(target_flops),
                budget_flops=float(budget_flops), estimate=float(fit.value(key)), current=(iv.lo, iv.hi),
                current_width=current_width, table=table, isoflop=centred_isoflop(fit, [float(target_flops)]),
                notes=notes)


def centred_isoflop(fit, budgets_flops, *, n_sizes: int = 5, span_decades: float = 1.0) -> pd.DataFrame:
    """An IsoFLOP design centred by a fit: per budget, ``n_sizes`` sizes evenly spaced in log N over
    ``span_decades`` around the fit's N_opt there, each with D = C / (6 N), so the minimum falls inside."""
    from scalinglab.fit.fitting import LAWS, Settings

    p = {k: np.array([v]) for k, v in fit.params.items()}
    derived = LAWS[fit.law].derived(p, Settings(at_flops=tuple(budgets_flops)))
    rows = []
    for C in budgets_flops:
        n_opt = float(derived[at_key("N_opt", C)][0])
        for n in n_opt * np.logspace(-span_decades / 2, span_decades / 2, n_sizes):
            rows.append({"C": float(C), "N": float(n), "D": float(C) / (6.0 * n), "N_opt": n_opt})
    return pd.DataFrame(rows)
