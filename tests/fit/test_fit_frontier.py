"""The compute-efficient frontier, its power-law fit, and Approach 1."""

import numpy as np
import pandas as pd
import pytest

from fit_synthetic import CHINCHILLA_TRUE, chinchilla_runs
from scalinglab.core import laws
from scalinglab.errors import FitError
from scalinglab.fit import FrontierFit, approach1, compute_frontier, resample_counts


def test_frontier_is_the_running_minimum():
    runs = pd.DataFrame({"C": [1, 2, 2, 3, 4, 5, 6], "loss": [5.0, 4.0, 4.5, 4.2, 3.0, 3.0, 2.5],
                         "run": list("abcdefg")})
    front = compute_frontier(runs.sample(frac=1, random_state=0))       # input order does not matter
    assert front["run"].tolist() == ["a", "b", "e", "g"]
    assert (np.diff(front["loss"]) < 0).all() and (np.diff(front["C"]) > 0).all()


def test_ties_in_compute_keep_the_lower_loss():
    runs = pd.DataFrame({"C": [1.0, 1.0, 2.0], "loss": [3.0, 2.0, 2.5]})
    assert compute_frontier(runs)["loss"].tolist() == [2.0]


def test_bootstrap_frontier_weights_match_recomputing_the_frontier():
    runs = chinchilla_runs(seed=4, n=6)
    fit = FrontierFit()
    counts = resample_counts(len(runs), 20, np.random.default_rng(0))
    w = fit.resample_weights(counts, runs)
    for r in range(20):
        sample = runs.iloc[np.repeat(np.arange(len(runs)), counts[r])]
        expected = set(compute_frontier(sample)["run"])
        assert set(runs["run"][w[r] > 0]) == expected


def test_frontier_fit_recovers_compute_optimal_loss_curve():
    """Runs sampled densely around the optimum: the frontier follows L(N_opt(C), D_opt(C))."""
    rng = np.random.default_rng(5)
    p = CHINCHILLA_TRUE
    s = p["alpha"] + p["beta"]
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / s)
    C = np.logspace(17, 22, 60)
    N = G * (C / 6) ** (p["beta"] / s) * np.exp(0.05 * rng.standard_normal(C.size))
    D = C / (6 * N)
    runs = pd.DataFrame({"N": N, "D": D, "C": C, "loss": laws.chinchilla(N, D, **p)})
    fit = FrontierFit().fit(runs)
    assert fit.E_ == pytest.approx(p["E"], rel=0.1)
    assert fit.approach1_.a == pytest.approx(p["beta"] / s, abs=0.03)
    assert fit.approach1_.a + fit.approach1_.b == pytest.approx(1.0, abs=1e-9)      # C = 6 N D
    assert np.all(np.abs(fit.predict(C) / runs["loss"] - 1) < 0.01)


def test_approach1_bins():
    runs = chinchilla_runs(seed=6)
    res = approach1(runs, bins=6)
    assert len(res.points) <= 6 and np.isfinite(res.a)
    np.testing.assert_allclose(res.n_opt(res.points["C"]), res.N_coef * res.points["C"] ** res.a)


def test_too_few_frontier_points():
    runs = pd.DataFrame({"C": [1e18, 1e19, 1e20], "loss": [3.0, 3.1, 3.2]})
    with pytest.raises(FitError, match="only 1 run"):
        FrontierFit().fit(runs)
