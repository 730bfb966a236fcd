"""Variants of a recipe (dropout, optimiser, dataset, precision) compared as effective compute.

``fit_variants(runs, law, variant="dropout")`` fits one joint law in which the
exponents and E are shared by every variant and each variant has its own
coefficients (A for a power law; A and B for Chinchilla; N_c and D_c for
Kaplan). A variant is then a compute multiplier k: L_variant(C) =
L_reference(k C), taken along the compute-optimal frontier for L(N, D) laws
(with shared exponents the frontier losses are offset power laws in C with a
common exponent, so k does not depend on C). k > 1: the variant is worth
more compute than the reference.

Beside it, every variant is fitted alone (everything free). Whether the
exponents differ is tested by the bootstrap: each variant's runs are
resampled independently (whole seeds when there is a seed column), each
variant refitted alone, and the distribution of exponent differences from the
reference gives an interval and a two-sided bootstrap p-value. Resamples draw
configurations (all seeds of a setting together) by default. The interval
of k comes from refitting the joint law on the same kind of resamples (runs
drawn within each variant), all resamples at once by the batched L-BFGS.
Separate fits alone are ill-conditioned for this question: their
coefficients and exponents trade off against each other, so two variants'
curves can be told apart far better by a shared-exponent fit than by eye.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scalinglab.core import laws as core_laws
from scalinglab.core.losses import huber_objective
from scalinglab.core.optim import lbfgs
from scalinglab.errors import FitError
from scalinglab.fit.bootstrap import bootstrap, resample_counts, resolve_cluster
from scalinglab.fit.parametric import MAX_STEP, _LawFit
from scalinglab.fit.varpro import fit_varpro

VARIANT_LAWS = ("power", "chinchilla", "kaplan")


def frontier_loss(law: str, p: dict[str, np.ndarray], C) -> np.ndarray:
    """Loss along the compute-optimal frontier at C = 6 N D (for a power law: the law itself in its input)."""
    with np.errstate(all="ignore"):
        if law == "power":
            return core_laws.power_law(C, p["E"], p["A"], p["alpha"])
        if law == "chinchilla":
            al, be = p["alpha"], p["beta"]
            G = (al * p["A"] / (be * p["B"])) ** (1.0 / (al + be))
            n = G * (C / 6.0) ** (be / (al + be))
            return core_laws.chinchilla(n, C / (6.0 * n), p["E"], p["A"], p["B"], al, be)
        r = p["alpha_N"] / p["alpha_D"]          # Kaplan: N^(r+1) = r N_c^r C / (6 D_c) minimises L(N, C/(6N))
        n = (r * p["N_c"] ** r * C / (6.0 * p["D_c"])) ** (1.0 / (r + 1.0))
        return core_laws.kaplan(n, C / (6.0 * n), p["N_c"], p["D_c"], p["alpha_N"], p["alpha_D"])


def compute_multiplier(law: str, ref: dict[str, np.ndarray], var: dict[str, np.ndarray], C0: float) -> np.ndarray:
    """k with L_ref(k C0) = L_var(C0) along the frontier, by bisection in log k (vectorised over draws)."""
    target = frontier_loss(law, var, C0)
    lo, hi = np.full(np.shape(target), -60.0), np.full(np.shape(target), 60.0)
    for _ in range(80):                       # frontier loss falls with compute: bisect on the sign
        mid = 0.5 * (lo + hi)
        above = frontier_loss(law, ref, C0 * np.exp(mid)) > target
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    k = np.exp(0.5 * (lo + hi))
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(target) & (np.abs(lo) < 59.9) & (np.abs(hi) < 59.9), k, np.nan)


class _JointLaw:
    """A law with some parameters shared by all variants and the rest per variant, as one batched objective."""

    def __init__(self, est: _LawFit, codes: np.ndarray, n_variants: int, log_inputs, log_y):
        self.est, self.V = est, n_variants
        P = len(est.param_names)
        self.shared = [j for j in range(P) if j >= est.n_log or est.param_names[j] == "E"]
        self.own = [j for j in range(P) if j not in self.shared]
        self.shifts = [float(np.median(v)) for v in log_inputs]
        self.idx = [np.flatnonzero(codes == v) for v in range(n_variants)]
        self.inputs = [[(x - m)[i] for x, m in zip(log_inputs, self.shifts)] for i in self.idx]
        self.log_y = [log_y[i] for i in self.idx]

    @property
    def size(self) -> int:
        return len(self.shared) + self.V * len(self.own)

    def split(self, x: np.ndarray, v: int) -> np.ndarray:
        """Theta rows (in the law's order) of variant v from joint rows x."""
        P = len(self.shared) + len(self.own)
        theta = np.empty((x.shape[0], P))
        theta[:, self.shared] = x[:, :len(self.shared)]
        k = len(self.shared) + v * len(self.own)
        theta[:, self.own] = x[:, k:k + len(self.own)]
        return theta

    def join(self, thetas: list[np.ndarray]) -> np.ndarray:
        """Joint rows from per-variant theta rows (shared columns averaged)."""
        shared = np.mean([t[:, self.shared] for t in thetas], axis=0)
        return np.column_stack([shared, *[t[:, self.own] for t in thetas]])

    def centre(self, x: np.ndarray, sign: float) -> np.ndarray:
        return self.join([self.est._shift_theta(self.split(x, v), self.shifts, sign) for v in range(self.V)])

    def objective(self, weights: list[np.ndarray] | None = None, row_group: np.ndarray | None = None):
        """fun(x (k, size), rows) -> (f, g): the summed Huber objective over all variants' runs."""
        ns, no = len(self.shared), len(self.own)

        def fun(x, rows):
            f, g = np.zeros(x.shape[0]), np.zeros_like(x)
            with np.errstate(all="ignore"):
                for v in range(self.V):
                    log_l, vjp = self.est._log_law(self.split(x, v), *self.inputs[v])
                    w = None if weights is None else weights[v][row_group[rows]]
                    fv, psi = huber_objective(log_l, self.log_y[v], self.est.delta, w)
                    gv = vjp(psi)
                    f += fv
                    g[:, :ns] += gv[:, self.shared]
                    k = ns + v * no
                    g[:, k:k + no] += gv[:, self.own]
            return f, g
        return fun


@dataclass(frozen=True, slots=True)
class VariantComparison:
    """Joint fit with shared exponents, per-variant multipliers with intervals, and the exponent test."""

    law: str
    variant: str
    reference: Any
    table: pd.DataFrame            # one row per variant: runs, own coefficients, k, interval, exponent test
    shared: dict[str, float]       # shared parameters of the joint fit
    separate: dict[Any, dict[str, float]]   # each variant fitted alone (everything free)
    objective_joint: float
    objective_separate: float
    level: float
    n_resamples: int
    multiplier_of: str             # "C" along the compute-optimal frontier, or the power law's input

    def summary(self) -> str:
        ref = self.reference.item() if isinstance(self.reference, np.generic) else self.reference
        lines = [f"{self.law} law, variants of {self.variant!r} against {ref!r}: shared "
                 + ", ".join(f"{k} = {v:.4g}" for k, v in self.shared.items())]
        for _, r in self.table.iterrows():
            if r["variant"] == self.reference:
                continue
            lines.append(f"  {r['variant']}: worth {r['k']:.3g}x {self.multiplier_of} "
                         f"({self.level:.0%} interval {r['k_lo']:.3g}-{r['k_hi']:.3g}); exponents differ from the "
                         f"reference? bootstrap p = {r['exponent_p']:.2g}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.law, "variant": self.variant, "reference": self.reference,
                "multiplier_of": self.multiplier_of, "level": self.level, "n_resamples": self.n_resamples,
                "shared": self.shared, "objective_joint": self.objective_joint,
                "objective_separate": self.objective_separate,
                "separate": {str(k): v for k, v in self.separate.items()},
                "variants": self.table.replace({np.nan: None}).to_dict(orient="records")}


def _same_number(a, b) -> bool:
    """True when a and b read as the same number ("0" from a command line and 0.0 in the table)."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _stratified_counts(codes: np.ndarray, V: int, R: int, rng, clusters) -> np.ndarray:
    """(R, n) resample counts drawn within each variant (whole clusters when given)."""
    counts = np.zeros((R, codes.size), dtype=int)
    for v in range(V):
        i = np.flatnonzero(codes == v)
        counts[:, i] = resample_counts(i.size, R, rng, None if clusters is None else clusters[i])
    return counts


def fit_variants(runs: pd.DataFrame, law: str = "chinchilla", variant: str = "variant", reference: Any = None,
                 *, x: str = "C", n_resamples: int = 200, level: float = 0.95, cluster: str | None = "config",
                 random_state: int | None = 0, max_iter: int = 2000) -> VariantComparison:
    """Joint fit with exponents and E shared across the values of column ``variant``; see the module docstring.

    ``reference`` is the variant the others are measured against (default: the first in sorted order).
    ``cluster``: what a resample draws -- ``"config"`` (default) draws configurations (the law's inputs)
    with all their seeds together, a column name draws that column's values, None single runs.
    """
    if law not in VARIANT_LAWS:
        raise FitError(f"variant comparison covers the {', '.join(VARIANT_LAWS)} laws, not {law!r}")
    if variant not in runs.columns:
        raise FitError(f"variant column {variant!r} is not in the runs table (columns: {', '.join(map(str, runs.columns))})")
    runs = runs.reset_index(drop=True)
    values = sorted(runs[variant].dropna().unique(), key=str)
    if len(values) < 2:
        raise FitError(f"column {variant!r} has {len(values)} value(s); comparing variants needs at least two")
    if runs[variant].isna().any():
        raise FitError(f"column {variant!r} is empty in {int(runs[variant].isna().sum())} run(s); give every run a variant")
    if reference is None:
        reference = values[0]
    matches = [v for v in values if v == reference or str(v) == str(reference) or _same_number(v, reference)]
    if not matches:
        raise FitError(f"reference {reference!r} is not a value of {variant!r} (values: {', '.join(map(str, values))})")
    reference = matches[0]
    values = [reference] + [v for v in values if v != reference]
    codes = np.array([values.index(v) for v in runs[variant]])
    V = len(values)

    settings = {"x": x} if law == "power" else {}
    with warnings.catch_warnings():              # separate and pooled fits by variable projection (same optimum)
        warnings.simplefilter("ignore")
        separate = [fit_varpro(runs[codes == v].reset_index(drop=True), law, **settings) for v in range(V)]
        pooled = fit_varpro(runs, law, **settings)
    est = separate[0]
    inputs, y = est._split_xy(runs, None)
    log_inputs, log_y = [np.log(v) for v in inputs], np.log(y)
    joint = _JointLaw(est, codes, V, log_inputs, log_y)

    starts = np.vstack([joint.join([s.theta_[None] for s in separate]),
                        joint.join([pooled.theta_[None]] * V)])
    res = lbfgs(joint.objective(), joint.centre(starts, -1.0), max_iter=max_iter, ftol=0.0, max_step=MAX_STEP)
    best = int(np.argmin(np.where(np.isfinite(res.fun), res.fun, np.inf)))
    x_opt = joint.centre(res.x[best:best + 1], 1.0)
    if not res.converged[best]:
        warnings.warn(f"joint {law} fit over {variant!r} did not converge ({res.message(best)}); the multipliers "
                      "may not be at the optimum", UserWarning, stacklevel=2)

    def params_of(xrows: np.ndarray, v: int) -> dict[str, np.ndarray]:
        p = est._to_params(joint.split(xrows, v))
        return {k: p[:, j] for j, k in enumerate(est.param_names)}

    C0 = float(np.median(inputs[0] if law == "power" else 6.0 * inputs[0] * inputs[1]))   # k is the same at any C
    k_hat = [float(compute_multiplier(law, params_of(x_opt, 0), params_of(x_opt, v), C0)[0]) for v in range(V)]

    # bootstrap: joint refits for k; separate refits for the exponent differences
    if cluster == "config":
        runs = runs.assign(_config=runs.groupby(list(est.input_names)).ngroup())
        cluster = "_config"
    cluster = resolve_cluster(runs, cluster)
    clusters = runs[cluster].to_numpy() if cluster else None
    rng = np.random.default_rng(random_state)
    counts = _stratified_counts(codes, V, n_resamples, rng, clusters)
    row_w = est._row_weights(runs)
    weights = counts if row_w is None else counts * row_w
    w_by_v = [weights[:, i] for i in joint.idx]
    boot = lbfgs(joint.objective(w_by_v, np.arange(n_resamples)),
                 np.repeat(joint.centre(x_opt, -1.0), n_resamples, axis=0), max_iter=max_iter, ftol=0.0,
                 max_step=MAX_STEP)
    xb = joint.centre(boot.x, 1.0)
    ok = boot.converged
    lo_q, hi_q = 50 * (1 - level), 50 * (1 + level)
    exps = list(est.param_names[est.n_log:])
    sep_boot = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for v in range(V):
            sub = runs[codes == v].reset_index(drop=True)
            sep_boot.append(bootstrap(separate[v], sub, n_resamples=n_resamples, level=level, cluster=cluster,
                                      random_state=None if random_state is None else random_state + 1 + v).samples)

    rows = []
    for v, value in enumerate(values):
        ks = compute_multiplier(law, params_of(xb, 0), params_of(xb, v), C0)
        ks = ks[ok & np.isfinite(ks)]
        row: dict[str, Any] = {"variant": value, "n_runs": int((codes == v).sum())}
        own = params_of(x_opt, v)
        row.update({name: float(own[name][0]) for name in (est.param_names[j] for j in joint.own)})
        row.update(k=k_hat[v], k_lo=float(np.percentile(ks, lo_q)) if v and ks.size else 1.0,
                   k_hi=float(np.percentile(ks, hi_q)) if v and ks.size else 1.0)
        for e in exps:
            row[f"{e}_alone"] = separate[v].params_[e]
        if v:
            both = sep_boot[0]["converged"].to_numpy() & sep_boot[v]["converged"].to_numpy()
            ps = []
            for e in exps:
                d = (sep_boot[v][e].to_numpy() - sep_boot[0][e].to_numpy())[both]
                row[f"d_{e}"] = separate[v].params_[e] - separate[0].params_[e]
                row[f"d_{e}_lo"], row[f"d_{e}_hi"] = (float(np.percentile(d, lo_q)), float(np.percentile(d, hi_q)))
                ps.append(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean())) if d.size else np.nan)
            row["exponent_p"] = float(min(1.0, min(ps) * len(ps)))      # Bonferroni over the exponents
        else:
            row["exponent_p"] = np.nan
        rows.append(row)
    shared_p = params_of(x_opt, 0)
    return VariantComparison(
        law=law, variant=variant, reference=reference, table=pd.DataFrame(rows),
        shared={est.param_names[j]: float(shared_p[est.param_names[j]][0]) for j in joint.shared},
        separate={values[v]: dict(s.params_) for v, s in enumerate(separate)},
        objective_joint=float(res.fun[best]), objective_separate=float(sum(s.objective_ for s in separate)),
        level=level, n_resamples=n_resamples, multiplier_of="C" if law != "power" else x)
