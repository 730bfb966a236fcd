"""Bootstrap uncertainty for fits: standard errors and percentile intervals.

A resample draws runs with replacement -- or, when the table has a ``seed``
column with several values, whole seeds (a cluster/block bootstrap: every run
of a drawn seed comes along, so correlated runs stay together). A resample is
a vector of counts per run, which becomes the point weights of the summed
Huber objective, so all resamples are fitted at once by the batched L-BFGS
(each starting from the full-data fit, as Besiroglu et al. 2024 do).
``n_jobs > 1`` splits the resamples over processes.

Reported per parameter and derived quantity (e.g. a = beta/(alpha+beta), or
N_opt at a given C): the full-data estimate, the bootstrap standard error
(sample s.d.) and the percentile interval at ``level``.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from scalinglab.errors import FitError
from scalinglab.fit.parametric import _LawFit


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    """Bootstrap samples and their summary; ``samples`` has one row per resample."""

    samples: pd.DataFrame             # parameter and derived values per resample, plus 'converged'
    estimate: dict[str, float]        # full-data values
    se: dict[str, float]              # bootstrap standard errors
    ci: dict[str, tuple[float, float]]
    level: float
    n_resamples: int
    n_failed: int                     # resamples whose fit did not converge (left out of se and ci)
    cluster: str | None               # column resampled as blocks, None for run-level
    n_clusters: int

    def summary(self) -> pd.DataFrame:
        """One row per quantity: estimate, se, lo, hi."""
        names = list(self.se)
        return pd.DataFrame({"estimate": [self.estimate.get(k, np.nan) for k in names],
                             "se": [self.se[k] for k in names],
                             "lo": [self.ci[k][0] for k in names],
                             "hi": [self.ci[k][1] for k in names]}, index=pd.Index(names, name="quantity"))

    def to_dict(self) -> dict[str, Any]:
        def clean(v):
            return None if not np.isfinite(v) else float(v)
        return {"se": {k: clean(v) for k, v in self.se.items()},
                "ci": {k: [clean(lo), clean(hi)] for k, (lo, hi) in self.ci.items()},
                "bootstrap": {"n_resamples": self.n_resamples, "n_failed": self.n_failed, "level": self.level,
                              "cluster": self.cluster, "n_clusters": self.n_clusters,
                              "interval": "percentile"}}


def resolve_cluster(runs: pd.DataFrame, cluster: str | None) -> str | None:
    """``cluster='auto'`` means 'seed' when that column exists and has more than one value."""
    if cluster == "auto":
        return "seed" if "seed" in runs.columns and runs["seed"].nunique() > 1 else None
    if cluster is not None and cluster not in runs.columns:
        raise FitError(f"cluster column {cluster!r} is not in the runs table")
    return cluster


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator,
                    clusters: np.ndarray | None = None) -> np.ndarray:
    """(R, n) counts: how often each run appears in each resample (whole clusters when given)."""
    if clusters is None:
        return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples)
    _, idx = np.unique(clusters, return_inverse=True)
    k = idx.max() + 1
    per_cluster = rng.multinomial(k, np.full(k, 1.0 / k), size=n_resamples)    # (R, k)
    return per_cluster[:, idx]


def _summarise(values: dict[str, np.ndarray], ok: np.ndarray, level: float):
    lo_q, hi_q = 50 * (1 - level), 50 * (1 + level)
    se, ci = {}, {}
    for k, v in values.items():
        v = np.asarray(v, dtype=float)[ok]
        v = v[np.isfinite(v)]
        if v.size >= 2:
            se[k] = float(np.std(v, ddof=1))
            ci[k] = (float(np.percentile(v, lo_q)), float(np.percentile(v, hi_q)))
        else:
            se[k], ci[k] = float("nan"), (float("nan"), float("nan"))
    return se, ci


def _refit(est: _LawFit, log_inputs, log_y, starts, weights, k: int):
    """Best refit per resample: ``starts`` holds k consecutive starts for each row of ``weights``."""
    n = weights.shape[0]
    return est._multistart(log_inputs, log_y, starts, row_group=np.repeat(np.arange(n), k), n_groups=n,
                           weights=weights)


def bootstrap(estimator: _LawFit, runs: pd.DataFrame, *, n_resamples: int = 1000, level: float = 0.95,
              cluster: str | None = "auto", random_state: int | None = 0, at_flops=(), starts: str = "fit",
              n_jobs: int = 1) -> BootstrapResult:
    """Bootstrap a parametric fit (power, Chinchilla, Kaplan or frontier) on ``runs``.

    ``estimator`` is fitted on ``runs`` first if it is not yet. ``starts='fit'``
    starts every resample at the full-data optimum; ``'grid'`` re-runs the
    estimator's whole start grid per resample (slower). ``at_flops`` adds
    derived allocation quantities at those budgets (Chinchilla).
    """
    if n_resamples < 2:
        raise FitError(f"a bootstrap needs at least 2 resamples, got {n_resamples}")
    if not 0 < level < 1:
        raise FitError(f"level must be between 0 and 1, got {level}")
    if not hasattr(estimator, "params_"):
        estimator.fit(runs)
    cluster = resolve_cluster(runs, cluster)
    rng = np.random.default_rng(random_state)
    clusters = runs[cluster].to_numpy() if cluster else None
    n_clusters = int(pd.Series(clusters).nunique()) if cluster else len(runs)
    if cluster and n_clusters < 10:
        warnings.warn(f"cluster bootstrap over only {n_clusters} values of {cluster!r}: the intervals will be "
                      "coarse; add seeds, or resample single runs (cluster=None; --seed none)", UserWarning, stacklevel=2)
    counts = resample_counts(len(runs), n_resamples, rng, clusters)
    weights = estimator.resample_weights(counts, runs)

    inputs, y = estimator._split_xy(runs, None)
    log_inputs, log_y = [np.log(v) for v in inputs], np.log(y)
    if starts == "fit":
        per = estimator.theta_[None]
    elif starts == "grid":
        per = estimator._start_array(log_inputs, log_y)
    else:
        raise FitError(f"starts must be 'fit' or 'grid', got {starts!r}")
    k = per.shape[0]
    theta0 = np.tile(per, (n_resamples, 1))
    chunks = np.array_split(np.arange(n_resamples), max(1, min(n_jobs, n_resamples)))
    if len(chunks) == 1:
        parts = [_refit(estimator, log_inputs, log_y, theta0, weights, k)]
    else:
        with ProcessPoolExecutor(max_workers=len(chunks)) as pool:
            futs = [pool.submit(_refit, estimator, log_inputs, log_y,
                                theta0[ch[0] * k:(ch[-1] + 1) * k], weights[ch], k) for ch in chunks]
            parts = [f.result() for f in futs]
    x = np.concatenate([p.x for p in parts])
    ok = np.concatenate([p.converged for p in parts])
    unmoved = np.concatenate([p.n_iter for p in parts]) == 0
    if starts == "fit" and unmoved.mean() > 0.5:
        warnings.warn(f"{int(unmoved.sum())} of {n_resamples} bootstrap refits stopped where they started: the "
                      "objective is flat at the full-data optimum (with delta 1e-3 the Huber loss acts like "
                      "absolute error, whose minimum is not unique when runs repeat the same N and D), so the "
                      "intervals understate the uncertainty; fit one run per setting or use starts='grid'",
                      UserWarning, stacklevel=2)
    ok &= (weights > 0).sum(1) >= getattr(estimator, "n_free_params", len(estimator.param_names))

    params = estimator._to_params(x)
    values = {name: params[:, j] for j, name in enumerate(estimator.param_names)}
    values.update(estimator.derived(values, at_flops))
    est_params = {k: np.array([v]) for k, v in estimator.params_.items()}
    estimate = {**estimator.params_,
                **{k: float(v[0]) for k, v in estimator.derived(est_params, at_flops).items()}}
    se, ci = _summarise(values, ok, level)
    samples = pd.DataFrame(values)
    samples["converged"] = ok
    return BootstrapResult(samples=samples, estimate=estimate, se=se, ci=ci, level=level,
                           n_resamples=n_resamples, n_failed=int((~ok).sum()), cluster=cluster,
                           n_clusters=n_clusters)


def bootstrap_statistic(statistic: Callable[[pd.DataFrame], dict[str, float]], runs: pd.DataFrame, *,
                        n_resamples: int = 200, level: float = 0.95, cluster: str | None = "auto",
                        random_state: int | None = 0) -> BootstrapResult:
    """Bootstrap any statistic of a runs table by refitting it on each resample (a plain loop).

    Used for the IsoFLOP and Approach 1 exponents, whose fits are cheap
    closed forms. A resample on which ``statistic`` raises or returns
    non-finite values counts as failed.
    """
    if n_resamples < 2:
        raise FitError(f"a bootstrap needs at least 2 resamples, got {n_resamples}")
    if not 0 < level < 1:
        raise FitError(f"level must be between 0 and 1, got {level}")
    estimate = statistic(runs)
    cluster = resolve_cluster(runs, cluster)
    rng = np.random.default_rng(random_state)
    clusters = runs[cluster].to_numpy() if cluster else None
    counts = resample_counts(len(runs), n_resamples, rng, clusters)
    rows, ok = [], np.ones(n_resamples, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(n_resamples):
            try:
                vals = statistic(runs.iloc[np.repeat(np.arange(len(runs)), counts[r])].reset_index(drop=True))
            except (FitError, np.linalg.LinAlgError, ValueError):
                vals = {k: np.nan for k in estimate}
            rows.append(vals)
            ok[r] = all(np.isfinite(v) for v in vals.values())
    samples = pd.DataFrame(rows, columns=list(estimate))
    se, ci = _summarise({k: samples[k].to_numpy() for k in estimate}, ok, level)
    samples["converged"] = ok
    return BootstrapResult(samples=samples, estimate=dict(estimate), se=se, ci=ci, level=level,
                           n_resamples=n_resamples, n_failed=int((~ok).sum()), cluster=cluster,
                           n_clusters=int(pd.Series(clusters).nunique()) if cluster else len(runs))
