"""Seed noise apart from lack of fit, and mean-law vs new-run intervals, on synthetic laws with seed noise."""

import numpy as np
import pandas as pd
import pytest

from scalinglab.core import laws
from scalinglab.fit import PowerLawFit
from scalinglab.fit.noise import noise_model, prediction_intervals

POWER = dict(E=2.0, A=3.0e3, alpha=0.2)
SIGMA = 0.02


def seeded_runs(seed=0, n_cfg=10, n_seeds=3, sigma=SIGMA, law=None):
    rng = np.random.default_rng(seed)
    C = np.repeat(np.logspace(15, 20, n_cfg), n_seeds)
    mean = laws.power_law(C, **POWER) if law is None else law(C)
    return pd.DataFrame({"C": C, "seed": np.tile(np.arange(n_seeds), n_cfg),
                         "loss": mean * np.exp(sigma * rng.standard_normal(C.size))})


def seed_means(runs):
    g = runs.groupby("C")["loss"]
    return pd.DataFrame({"C": g.mean().index, "loss": g.mean().to_numpy(), "loss_sd": g.std().to_numpy(),
                         "n_seeds": g.size().to_numpy()})


def test_seed_variance_from_replicates_and_from_seed_means():
    runs = seeded_runs(seed=1, n_cfg=12, n_seeds=4)
    m = noise_model(PowerLawFit().fit(runs), runs)
    assert m.source == "replicates" and m.seed_df == 12 * 3
    assert m.sigma_seed == pytest.approx(SIGMA, rel=0.3)
    assert m.sigma_lack_of_fit < 0.5 * SIGMA                 # the law is right: little lack of fit
    means = seed_means(runs)
    m2 = noise_model(PowerLawFit().fit(means), means)
    assert m2.source == "loss_sd" and m2.sigma_seed == pytest.approx(m.sigma_seed, rel=0.05)


def test_lack_of_fit_is_separated_from_seed_noise():
    """Data from a broken power law, fitted by a plain one: the misfit shows as lack of fit, not seed noise."""
    bend = lambda C: laws.broken_power_law(C, E=1.0, A=60.0, x_b=1e17, f=0.3, alpha=0.02, c=0.4)
    runs = seeded_runs(seed=2, n_cfg=12, n_seeds=3, sigma=0.005, law=bend)
    m = noise_model(PowerLawFit().fit(runs), runs)
    assert m.sigma_seed == pytest.approx(0.005, rel=0.35)
    assert m.sigma_lack_of_fit > 3 * m.sigma_seed


def test_no_replicates_falls_back_to_residual_scatter():
    runs = seeded_runs(seed=3, n_seeds=1, n_cfg=20)
    m = noise_model(PowerLawFit().fit(runs), runs)
    assert m.source == "none" and m.sigma_seed is None
    assert m.sigma_new_run == m.sigma_residual == pytest.approx(SIGMA, rel=0.4)


def test_new_run_interval_contains_mean_interval_and_is_wider():
    runs = seeded_runs(seed=4)
    fit = PowerLawFit().fit(runs)
    X = pd.DataFrame({"C": [1e16, 1e21]})
    iv = prediction_intervals(fit, runs, X, n_resamples=200)
    assert (iv["new_run_lo"] < iv["mean_lo"]).all() and (iv["mean_hi"] < iv["new_run_hi"]).all()
    assert (iv["mean_lo"] < iv["predicted"]).all() and (iv["predicted"] < iv["mean_hi"]).all()
    width = np.log(iv["new_run_hi"] / iv["new_run_lo"])
    assert width.iloc[0] == pytest.approx(2 * 1.96 * SIGMA, rel=0.5)      # dominated by the seed noise in range


@pytest.mark.slow
def test_interval_coverage_on_synthetic_laws():
    """Nominal 95% intervals, 200 synthetic studies (10 settings x 3 seeds, sigma 0.02): the mean-law
    interval covers the true law and the new-run interval a fresh run, in range (C = 3e17) and one
    decade beyond the largest run (C = 1e21); each should cover 90-98%."""
    X = pd.DataFrame({"C": [3e17, 1e21]})
    truth = laws.power_law(X["C"].to_numpy(), **POWER)
    hits_mean, hits_new, trials = np.zeros(2), np.zeros(2), 200
    for t in range(trials):
        runs = seeded_runs(seed=1000 + t)
        iv = prediction_intervals(PowerLawFit().fit(runs), runs, X, n_resamples=300, random_state=t)
        new = truth * np.exp(SIGMA * np.random.default_rng(t).standard_normal(2))
        hits_mean += (iv["mean_lo"] <= truth) & (truth <= iv["mean_hi"])
        hits_new += (iv["new_run_lo"] <= new) & (new <= iv["new_run_hi"])
    cov_mean, cov_new = hits_mean / trials, hits_new / trials
    print("coverage mean law", cov_mean, "new run", cov_new)
    assert (0.88 <= cov_mean).all() and (cov_mean <= 0.99).all(), cov_mean
    assert (0.88 <= cov_new).all() and (cov_new <= 0.99).all(), cov_new
