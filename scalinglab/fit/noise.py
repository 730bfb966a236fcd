"""Noise-aware uncertainty: seed-to-seed variance apart from lack of fit, and two intervals per prediction.

Two things make a measured loss differ from a fitted law: the run's own
noise (another seed gives another loss) and the law being wrong (lack of
fit). Replicates separate them. ``noise_model(fit, runs)`` estimates

* the seed variance of log loss, pooled within configurations: from raw runs
  sharing a configuration (the law's inputs; a ``seed`` column tells them
  apart), or from seed-mean points with ``loss_sd`` and ``n_seeds`` columns
  (var log L ~ (sd / mean)^2);
* the lack-of-fit variance: what the configuration means scatter about the
  law beyond the seed noise left in a mean (sigma_seed^2 / n_seeds).

``prediction_intervals(fit, runs, X)`` gives, for each row of X, two
intervals: for the **mean law** (where the average over seeds lies), by a
bootstrap that draws configurations with all their seeds together and refits;
and for **one new run** at that setting, which adds a fresh seed's noise and
the lack of fit: exp(log L_hat +- t_df sqrt(se_mean^2 + sigma_seed^2 +
sigma_lof^2)), with the t quantile at the seed variance's degrees of freedom.
Without replicates the two noise sources cannot be told apart and the new-run
interval uses the residual scatter of the runs about the law.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from scalinglab.errors import FitError
from scalinglab.fit.bootstrap import bootstrap
from scalinglab.fit.parametric import _LawFit


@dataclass(frozen=True, slots=True)
class NoiseModel:
    """Seed and lack-of-fit standard deviations of log loss, with what they rest on."""

    sigma_seed: float | None      # None when the table has no replicates
    seed_df: int                  # degrees of freedom of the seed variance (0 without replicates)
    sigma_lack_of_fit: float | None
    sigma_residual: float         # RMS log residual of the runs about the law (dof-corrected)
    n_configs: int
    source: str                   # "replicates", "loss_sd", or "none"

    @property
    def sigma_new_run(self) -> float:
        """Standard deviation of a new run's log loss about the mean law (seed + lack of fit)."""
        if self.sigma_seed is None:
            return self.sigma_residual
        return float(np.hypot(self.sigma_seed, self.sigma_lack_of_fit or 0.0))

    def to_dict(self) -> dict:
        return {"sigma_seed": self.sigma_seed, "seed_df": self.seed_df, "sigma_lack_of_fit": self.sigma_lack_of_fit,
                "sigma_residual": self.sigma_residual, "sigma_new_run": self.sigma_new_run,
                "n_configs": self.n_configs, "source": self.source}


def configurations(runs: pd.DataFrame, inputs) -> np.ndarray:
    """Configuration id of each run: runs with the same law inputs (all seeds of a setting) share one."""
    return runs.groupby(list(inputs), sort=False).ngroup().to_numpy()


def noise_model(fit: _LawFit, runs: pd.DataFrame) -> NoiseModel:
    """Split the runs' scatter about ``fit`` into seed noise and lack of fit (see the module docstring)."""
    fit._check_fitted()
    runs = runs.reset_index(drop=True)
    cfg = configurations(runs, fit.input_names)
    log_res = np.log(runs["loss"].to_numpy(float)) - np.log(fit.predict(runs))
    n_cfg = int(cfg.max()) + 1
    p = fit.n_free_params
    sizes = np.bincount(cfg, minlength=n_cfg)
    mean_res = np.bincount(cfg, weights=log_res, minlength=n_cfg) / sizes
    sigma_res = float(np.sqrt(np.sum(log_res ** 2) / max(len(runs) - p, 1)))

    seed_means = {"loss_sd", "n_seeds"} <= set(runs.columns)
    if seed_means:       # seed-mean points of one seed each carry no seed variance: as a table without replicates
        sd, k = runs["loss_sd"].to_numpy(float), runs["n_seeds"].to_numpy(float)
        ok = np.isfinite(sd) & (k >= 2)
        seed_means = bool(ok.any())
    if seed_means:
        rel_var = (sd / runs["loss"].to_numpy(float)) ** 2          # var of log L, to first order
        df = int(np.sum(k[ok] - 1))
        seed_var = float(np.sum((k[ok] - 1) * rel_var[ok]) / df)
        left_in_mean = seed_var * np.mean(1.0 / np.maximum(k, 1))   # seed noise still in a seed-mean point
        resid_var = float(np.sum(log_res ** 2) / max(len(runs) - p, 1))
        source = "loss_sd"
    elif (sizes >= 2).any():
        within = log_res - mean_res[cfg]
        df = int(np.sum(sizes - 1))
        seed_var = float(np.sum(within ** 2) / df)
        left_in_mean = seed_var * np.mean(1.0 / sizes)
        resid_var = float(np.sum(mean_res ** 2) / max(n_cfg - p, 1))
        source = "replicates"
    else:
        return NoiseModel(sigma_seed=None, seed_df=0, sigma_lack_of_fit=None, sigma_residual=sigma_res,
                          n_configs=n_cfg, source="none")
    lof = float(np.sqrt(max(resid_var - left_in_mean, 0.0)))
    return NoiseModel(sigma_seed=float(np.sqrt(seed_var)), seed_df=df, sigma_lack_of_fit=lof,
                      sigma_residual=sigma_res, n_configs=n_cfg, source=source)


def prediction_intervals(fit: _LawFit, runs: pd.DataFrame, X: pd.DataFrame, *, level: float = 0.95,
                         n_resamples: int = 400, random_state: int | None = 0) -> pd.DataFrame:
    """Per row of X: predicted loss, an interval for the mean law and one for a single new run.

    The mean-law interval is the percentile interval of bootstrap predictions, each resample drawing
    configurations with their seeds together; the new-run interval adds the noise model's seed and
    lack-of-fit variance (module docstring).
    """
    if not 0 < level < 1:
        raise FitError(f"level must be between 0 and 1, got {level}")
    fit._check_fitted()
    runs = runs.reset_index(drop=True)
    model = noise_model(fit, runs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boot = bootstrap(fit, runs.assign(_config=configurations(runs, fit.input_names)),
                         n_resamples=n_resamples, level=level, cluster="_config", random_state=random_state)
    samples = boot.samples[boot.samples["converged"]]
    params = {k: samples[k].to_numpy()[:, None] for k in fit.param_names}
    inputs = [X[c].to_numpy(float)[None, :] for c in fit.input_names]
    with np.errstate(all="ignore"):
        log_draws = np.log(np.asarray(fit._value(inputs, params), dtype=float))     # (R, m)
    point = fit.predict(X)
    lo_q, hi_q = 50 * (1 - level), 50 * (1 + level)
    se_mean = np.nanstd(log_draws, axis=0, ddof=1)
    df = model.seed_df if model.sigma_seed is not None else max(len(runs) - fit.n_free_params, 1)
    half = stats.t.ppf(0.5 + level / 2, df) * np.sqrt(se_mean ** 2 + model.sigma_new_run ** 2)
    return pd.DataFrame({
        "predicted": point,
        "mean_lo": np.exp(np.nanpercentile(log_draws, lo_q, axis=0)),
        "mean_hi": np.exp(np.nanpercentile(log_draws, hi_q, axis=0)),
        "new_run_lo": point * np.exp(-half),
        "new_run_hi": point * np.exp(half),
    }, index=X.index)
