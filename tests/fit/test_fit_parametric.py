"""Estimators recover known laws from noisy synthetic runs, round-trip through JSON, and refuse bad input."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from fit_synthetic import CHINCHILLA_TRUE, KAPLAN_TRUE, POWER_TRUE, chinchilla_runs
from scalinglab.core import laws
from scalinglab.errors import FitError
from scalinglab.fit import ChinchillaFit, ConvergenceWarning, KaplanFit, PowerLawFit, fit_chinchilla


@pytest.fixture(scope="module")
def chin_runs():
    return chinchilla_runs(seed=1)


@pytest.fixture(scope="module")
def chin_fit(chin_runs):
    return ChinchillaFit(starts="coarse").fit(chin_runs)


def test_chinchilla_recovers_parameters(chin_fit):
    p = chin_fit.params_
    assert p["alpha"] == pytest.approx(CHINCHILLA_TRUE["alpha"], abs=0.02)
    assert p["beta"] == pytest.approx(CHINCHILLA_TRUE["beta"], abs=0.02)
    assert p["E"] == pytest.approx(CHINCHILLA_TRUE["E"], rel=0.03)
    assert p["A"] == pytest.approx(CHINCHILLA_TRUE["A"], rel=0.25)
    assert p["B"] == pytest.approx(CHINCHILLA_TRUE["B"], rel=0.25)
    true_a = CHINCHILLA_TRUE["beta"] / (CHINCHILLA_TRUE["alpha"] + CHINCHILLA_TRUE["beta"])
    assert chin_fit.a_ == pytest.approx(true_a, abs=0.02)
    assert chin_fit.converged_ and chin_fit.convergence_warnings_ == []
    assert chin_fit.n_starts_ == 243 and chin_fit.n_starts_at_best_ >= 1
    assert chin_fit.alpha_ == p["alpha"]                       # sklearn-style fitted attributes


def test_power_law_recovers_parameters():
    rng = np.random.default_rng(2)
    x = np.logspace(15, 21, 40)
    y = laws.power_law(x, **POWER_TRUE) * np.exp(0.005 * rng.standard_normal(x.size))
    fit = PowerLawFit(x="C").fit(pd.DataFrame({"C": x, "loss": y}))
    assert fit.alpha_ == pytest.approx(POWER_TRUE["alpha"], abs=0.01)
    assert fit.E_ == pytest.approx(POWER_TRUE["E"], rel=0.02)
    assert fit.A_ == pytest.approx(POWER_TRUE["A"], rel=0.2)
    np.testing.assert_allclose(fit.predict(x), laws.power_law(x, **POWER_TRUE), rtol=0.01)


def test_kaplan_recovers_parameters():
    rng = np.random.default_rng(3)
    N, D = np.meshgrid(np.logspace(7, 9.5, 7), np.logspace(8.5, 11.5, 7))
    N, D = N.ravel(), D.ravel()
    y = laws.kaplan(N, D, **KAPLAN_TRUE) * np.exp(0.003 * rng.standard_normal(N.size))
    fit = KaplanFit().fit(np.column_stack([N, D]), y)
    assert fit.alpha_N_ == pytest.approx(KAPLAN_TRUE["alpha_N"], abs=0.005)
    assert fit.alpha_D_ == pytest.approx(KAPLAN_TRUE["alpha_D"], abs=0.01)
    assert np.log10(fit.N_c_) == pytest.approx(np.log10(KAPLAN_TRUE["N_c"]), abs=0.3)
    assert np.log10(fit.D_c_) == pytest.approx(np.log10(KAPLAN_TRUE["D_c"]), abs=0.3)


def test_rescaling_N_only_moves_A(chin_runs, chin_fit):
    """Scale invariance: N -> 10 N leaves E, B and the exponents alone and multiplies A by 10^alpha."""
    scaled = ChinchillaFit(starts=chin_fit.theta_[None] + [0, chin_fit.alpha_ * np.log(10), 0, 0, 0]).fit(
        chin_runs.assign(N=chin_runs["N"] * 10))
    for k in ("E", "B", "alpha", "beta"):
        assert scaled.params_[k] == pytest.approx(chin_fit.params_[k], rel=1e-4)
    assert scaled.A_ == pytest.approx(chin_fit.A_ * 10 ** chin_fit.alpha_, rel=1e-3)


def test_json_round_trip(chin_fit, chin_runs):
    d = json.loads(json.dumps(chin_fit.to_dict()))
    assert d["law"] == "chinchilla" and set(laws.CHINCHILLA_PARAMS) <= set(d)
    assert d["derived"]["a"] == pytest.approx(chin_fit.a_)
    back = ChinchillaFit.from_dict(d)
    np.testing.assert_allclose(back.predict(chin_runs), chin_fit.predict(chin_runs), rtol=1e-12)
    assert back.params_ == chin_fit.params_ and back.converged_ is True
    with pytest.raises(FitError, match="not 'kaplan'"):
        KaplanFit.from_dict(d)


def test_compute_optimal_satisfies_c_equals_6nd(chin_fit):
    table = chin_fit.compute_optimal([1e20, 1e22, 1e24])
    np.testing.assert_allclose(6 * table["N_opt"] * table["D_opt"], table["flops"], rtol=1e-10)
    # it is the minimum of L(N, C/(6N)) along the budget
    for C, n in zip(table["flops"], table["N_opt"]):
        ns = n * np.array([0.9, 1.0, 1.1])
        losses = chin_fit.predict(np.column_stack([ns, C / (6 * ns)]))
        assert losses[1] < losses[0] and losses[1] < losses[2]


def test_convergence_problems_are_warned_and_stored(chin_runs):
    with pytest.warns(ConvergenceWarning, match="none of the 1 starts converged"):
        fit = ChinchillaFit(starts=[[0.0, 0.0, 0.0, 0.5, 0.5]], max_iter=2).fit(chin_runs)
    assert not fit.converged_ and "max_iter" in fit.convergence_warnings_[0]
    assert fit.to_dict()["fit"]["warnings"] == fit.convergence_warnings_


def test_not_fitted_error():
    with pytest.raises(FitError, match="not fitted yet. Call 'fit'"):
        ChinchillaFit().predict(np.ones((2, 2)))


@pytest.mark.parametrize("mutate, match", [
    (lambda r: r.head(4), "5 parameters but only 4"),
    (lambda r: r.assign(N=1e8), "N is constant"),
    (lambda r: r.assign(loss=np.r_[np.nan, r["loss"].to_numpy()[1:]]), "loss has 1 non-positive or NaN"),
    (lambda r: r.assign(D=-r["D"]), "D has 64 non-positive"),
    (lambda r: r.drop(columns="D"), r"needs columns \['D'\]"),
])
def test_bad_input_is_a_fit_error(chin_runs, mutate, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FitError, match=match):
            fit_chinchilla(mutate(chin_runs), starts="coarse")


def test_starts_validation(chin_runs):
    with pytest.raises(FitError, match="5 columns"):
        ChinchillaFit(starts=np.zeros((3, 4))).fit(chin_runs)
    with pytest.raises(FitError, match="unknown start grid"):
        ChinchillaFit(starts="bogus").fit(chin_runs)
