"""Fixed and tied parameters, and per-run weights, in the multistart estimators."""

import numpy as np
import pandas as pd
import pytest

from fit_synthetic import CHINCHILLA_TRUE, chinchilla_runs
from scalinglab.core import laws
from scalinglab.errors import FitError
from scalinglab.fit import ChinchillaFit, KaplanFit, PowerLawFit, backtest, bootstrap


def test_fixed_E_recovers_the_rest():
    runs = chinchilla_runs(seed=4, noise=0.005)
    fit = ChinchillaFit(starts="coarse", fixed={"E": CHINCHILLA_TRUE["E"]}).fit(runs)
    assert fit.E_ == CHINCHILLA_TRUE["E"]                       # held exactly
    assert fit.converged_ and fit.n_free_params == 4
    assert fit.alpha_ == pytest.approx(CHINCHILLA_TRUE["alpha"], abs=0.01)
    assert fit.beta_ == pytest.approx(CHINCHILLA_TRUE["beta"], abs=0.01)
    assert fit.A_ == pytest.approx(CHINCHILLA_TRUE["A"], rel=0.15)
    assert fit.B_ == pytest.approx(CHINCHILLA_TRUE["B"], rel=0.15)
    # duplicates of the start grid that differed only in e were merged
    assert fit.n_starts_ == 243


def test_fixed_coefficient_with_free_exponent():
    """Fixing A while alpha is free: in the centred coordinates a depends on alpha; the fit must still hold A."""
    runs = chinchilla_runs(seed=5, noise=0.003)
    fit = ChinchillaFit(starts="coarse", fixed={"A": CHINCHILLA_TRUE["A"]}).fit(runs)
    assert fit.A_ == pytest.approx(CHINCHILLA_TRUE["A"], rel=1e-12)
    assert fit.alpha_ == pytest.approx(CHINCHILLA_TRUE["alpha"], abs=0.01)
    assert fit.E_ == pytest.approx(CHINCHILLA_TRUE["E"], rel=0.02)


def test_tied_exponents_recovered():
    true = dict(E=1.8, A=500.0, B=2000.0, alpha=0.32, beta=0.32)
    runs = chinchilla_runs(seed=6, noise=0.002, params=true)
    tied = ChinchillaFit(starts="coarse", tie={"beta": "alpha"}).fit(runs)
    assert tied.alpha_ == tied.beta_
    assert tied.alpha_ == pytest.approx(0.32, abs=0.01)
    assert tied.E_ == pytest.approx(1.8, rel=0.02)
    free = ChinchillaFit(starts="coarse").fit(runs)
    assert tied.objective_ >= free.objective_ - 1e-12          # a constrained fit cannot do better
    assert tied.objective_ < 1.5 * free.objective_               # and the true law satisfies the tie


def test_tie_kaplan_exponents_and_bootstrap_keeps_constraints():
    true = dict(N_c=8.8e13, D_c=5.4e13, alpha_N=0.09, alpha_D=0.09)
    N, D = np.meshgrid(np.logspace(7, 9.5, 6), np.logspace(8.5, 11.5, 6))
    N, D = N.ravel(), D.ravel()
    rng = np.random.default_rng(0)
    runs = pd.DataFrame({"N": N, "D": D, "loss": laws.kaplan(N, D, **true) * np.exp(0.003 * rng.standard_normal(36))})
    fit = KaplanFit(tie={"alpha_D": "alpha_N"}).fit(runs)
    assert fit.alpha_N_ == fit.alpha_D_ == pytest.approx(0.09, abs=0.005)
    boot = bootstrap(fit, runs, n_resamples=20)
    np.testing.assert_array_equal(boot.samples["alpha_N"], boot.samples["alpha_D"])
    assert boot.se["alpha_N"] > 0


def test_weight_column_weights_runs():
    """Runs from two laws; weighting one set to zero recovers the other set's law exactly."""
    x = np.logspace(15, 21, 30)
    good = laws.power_law(x, E=2.0, A=3e3, alpha=0.2) * np.exp(0.002 * np.random.default_rng(1).standard_normal(30))
    bad = laws.power_law(x, E=2.5, A=1e3, alpha=0.1)
    runs = pd.DataFrame({"C": np.r_[x, x], "loss": np.r_[good, bad], "weight": np.r_[np.ones(30), np.zeros(30)]})
    fit = PowerLawFit().fit(runs)
    alone = PowerLawFit().fit(runs[:30].drop(columns="weight"))
    assert fit.alpha_ == pytest.approx(alone.alpha_, rel=1e-6) and fit.E_ == pytest.approx(alone.E_, rel=1e-6)
    assert fit.alpha_ == pytest.approx(0.2, abs=0.01)
    unweighted = PowerLawFit().fit(runs.drop(columns="weight"))
    assert abs(unweighted.alpha_ - 0.2) > 0.01
    # bootstrap refits keep the weights: the zero-weight law never leaks in
    boot = bootstrap(fit, runs, n_resamples=20)
    assert np.allclose(boot.samples["alpha"], 0.2, atol=0.02) and boot.se["alpha"] > 0


def test_constraints_survive_clone_and_json():
    runs = chinchilla_runs(seed=7)
    fit = ChinchillaFit(starts="coarse", fixed={"E": 1.7}, tie={"beta": "alpha"})
    assert fit.get_params()["fixed"] == {"E": 1.7}
    bt = backtest(fit, runs.assign(C=6 * runs["N"] * runs["D"]), holdout_above=1e19)
    assert bt.estimator.E_ == 1.7 and bt.estimator.alpha_ == bt.estimator.beta_
    back = ChinchillaFit.from_dict(fit.fit(runs).to_dict())
    assert back.fixed == {"E": 1.7} and back.tie == {"beta": "alpha"}


@pytest.mark.parametrize("kwargs, match", [
    (dict(fixed={"gamma": 1.0}), "no parameter 'gamma'"),
    (dict(fixed={"E": -1.0}), "above 0"),
    (dict(tie={"beta": "A"}), "coefficient and the other an exponent"),
    (dict(tie={"beta": "alpha"}, fixed={"alpha": 0.3}), "neither fixed"),
    (dict(fixed={"E": 1, "A": 1, "B": 1, "alpha": 0.3, "beta": 0.3}), "leave at least one free"),
])
def test_bad_constraints_are_fit_errors(kwargs, match):
    with pytest.raises(FitError, match=match):
        ChinchillaFit(starts="coarse", **kwargs).fit(chinchilla_runs(seed=8, n=4))


def test_bad_weights_are_fit_errors():
    runs = chinchilla_runs(seed=9, n=4)
    with pytest.raises(FitError, match="weight has 1 negative"):
        ChinchillaFit(starts="coarse").fit(runs.assign(weight=np.r_[-1.0, np.ones(15)]))
    with pytest.raises(FitError, match="positive weight"):
        ChinchillaFit(starts="coarse").fit(runs.assign(weight=np.r_[np.ones(3), np.zeros(13)]))


def test_every_estimator_clones_from_get_params():
    from scalinglab.fit import FrontierFit
    from scalinglab.fit.data_constrained import DataConstrainedFit
    for est in (PowerLawFit(x="N", tie=None), FrontierFit(n_polish=3), ChinchillaFit(fixed={"E": 2.0}),
                DataConstrainedFit(unique="unique_tokens", n_polish=4)):
        clone = type(est)(**est.get_params())
        assert clone.get_params() == est.get_params()
