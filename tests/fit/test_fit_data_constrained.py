"""The data-constrained law (Muennighoff et al. 2023): published values, gradients, recovery, allocation."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad

from scalinglab.core import laws
from scalinglab.errors import FitError
from scalinglab.fit.allocate import PUBLISHED_LAWS, compute_optimal, load_law
from scalinglab.fit.bootstrap import bootstrap
from scalinglab.fit.data_constrained import MUENNIGHOFF2023, DataConstrainedFit, DataConstrainedLaw

TRUE = dict(E=1.8, A=500.0, B=1500.0, alpha=0.33, beta=0.36, R_D_star=12.0, R_N_star=4.0)


def synthetic_runs(params=TRUE, noise=0.002, seed=0):
    """6 sizes x 6 token budgets x 3 unique-data sizes: many runs repeat data, many exceed N_opt(U)."""
    rng = np.random.default_rng(seed)
    N, D, U = (a.ravel() for a in np.meshgrid(np.logspace(7, 9.3, 6), np.logspace(8.5, 11, 6), [3e8, 3e9, 3e10]))
    loss = laws.data_constrained(N, D, U, **params) * np.exp(noise * rng.standard_normal(N.size))
    return pd.DataFrame({"N": N, "D": D, "U": U, "loss": loss, "run": [f"r{i}" for i in range(N.size)]})


def test_reproduces_published_values_to_5_significant_digits():
    law = PUBLISHED_LAWS["muennighoff2023"].law
    got = law.loss(np.array([6.34e9, 8.67e9]), np.array([242e9, 178e9]), np.array([25e9, 25e9]))
    assert [float(f"{v:.6g}") for v in got] == [2.22564, 2.22696]
    assert load_law("muennighoff2023")[1] == law


def test_without_repetition_it_is_chinchilla():
    # D <= U and N below N_opt(U): nothing is discounted, so the law is Chinchilla's exactly.
    N, D = np.array([1e7, 3e7]), np.array([1e10, 3e10])
    p = MUENNIGHOFF2023
    chin = laws.chinchilla(N, D, p["E"], p["A"], p["B"], p["alpha"], p["beta"])
    np.testing.assert_allclose(laws.data_constrained(N, D, 2 * D, **p), chin, rtol=1e-12)
    # ...and repeating data (same D, a quarter as many unique tokens) costs loss.
    assert (laws.data_constrained(N, D, D / 4, **p) > chin).all()


rng = np.random.default_rng(1)
_N = np.logspace(7, 10, 20)
_D = np.logspace(9, 12, 20)[rng.permutation(20)]
_U = _D / rng.uniform(1, 60, 20)
_W = rng.uniform(0.5, 1.5, 20)


@pytest.mark.parametrize("p", [tuple(MUENNIGHOFF2023.values()), (1.8, 500.0, 2000.0, 0.3, 0.4, 10.0, 3.0)])
def test_gradient_natural_form(p):
    p = np.asarray(p, float)
    G = (p[3] * p[1] / (p[4] * p[2])) ** (1 / (p[3] + p[4]))
    capped = _N > G * (G * _U) ** (p[4] / p[3])  # U_N = N_opt(U_D): the gradient runs through U_N
    assert 0 < capped.sum() < len(_N)           # both branches are checked

    def f(q):
        return float(_W @ laws.data_constrained(_N, _D, _U, *q))

    def g(q):
        return laws.data_constrained_grad(_N, _D, _U, *q) @ _W
    err = check_grad(f, g, p, epsilon=1e-7 * np.abs(p))
    assert err <= 1e-6 * np.linalg.norm(g(p))


@pytest.mark.parametrize("theta", [[0.6254804, 6.255414, 7.3049974, 0.3526596, 0.3526596, math.log(15.4), math.log(5.3)],
                                   [0.5, 6.0, 7.5, 0.3, 0.4, math.log(10.0), math.log(3.0)]])
def test_gradient_log_form(theta):
    theta = np.asarray(theta)
    u = rng.standard_normal(20)
    logs = (np.log(_N), np.log(_D), np.log(_U))

    def f(t):
        return float(laws.data_constrained_log(t[None], *logs)[0][0] @ u)

    def g(t):
        return laws.data_constrained_log(t[None], *logs)[1](u[None])[0]
    assert check_grad(f, g, theta) < 1e-5 * np.linalg.norm(g(theta))


def test_recovers_known_parameters_with_intervals():
    runs = synthetic_runs()
    fit = DataConstrainedFit().fit(runs)
    assert fit.converged_
    for k, v in TRUE.items():
        assert fit.params_[k] == pytest.approx(v, rel=0.06), k
    boot = bootstrap(fit, runs, n_resamples=40, cluster=None)
    for k in ("alpha", "beta", "R_D_star", "R_N_star"):
        lo, hi = boot.ci[k]
        assert lo < hi and hi - lo < 0.3 * TRUE[k], k
    # A Chinchilla fit that ignores repetition predicts these runs much worse.
    from scalinglab.fit.parametric import ChinchillaFit
    chin = ChinchillaFit(starts="coarse").fit(runs)
    rms = lambda pred: float(np.sqrt(np.mean(np.log(pred / runs["loss"]) ** 2)))
    assert rms(fit.predict(runs)) < 0.2 * rms(chin.predict(runs))


def test_saved_fit_round_trip_and_allocation_law():
    runs = synthetic_runs()
    fit = DataConstrainedFit().fit(runs)
    again = DataConstrainedFit.from_dict(fit.to_dict())
    np.testing.assert_allclose(again.predict(runs), fit.predict(runs), rtol=1e-12)
    law = DataConstrainedLaw.from_fit_dict(fit.to_dict())
    np.testing.assert_allclose(law.loss(runs["N"], runs["D"], runs["U"]), fit.predict(runs), rtol=1e-12)


def test_allocation_with_scarce_data_favours_epochs_and_is_the_minimum():
    law = PUBLISHED_LAWS["muennighoff2023"].law
    C = 1e23
    free = compute_optimal(law, C)
    scarce_law = law.with_unique_tokens(free.D_opt / 6)
    scarce = compute_optimal(scarce_law, C)
    # Muennighoff et al. (Fig. 3): with scarce data, spend compute on repetitions before parameters.
    assert scarce.tokens_per_param > free.tokens_per_param
    N = np.exp(np.linspace(math.log(scarce.N_opt) - 1, math.log(scarce.N_opt) + 1, 2001))
    brute = scarce_law.loss(N, C / (6 * N), np.full_like(N, free.D_opt / 6))
    assert scarce.loss <= brute.min() + 1e-12
    with pytest.raises(FitError, match="unique tokens"):
        law.with_unique_tokens(-1)


def test_warns_without_repetition_and_needs_the_unique_column():
    runs = synthetic_runs()
    fresh = runs.assign(U=runs["D"] * 2)
    with pytest.warns(UserWarning, match="no run repeats data"):
        DataConstrainedFit().fit(fresh)
    with pytest.raises(FitError, match=r"needs columns \['U'\]"):
        DataConstrainedFit().fit(runs.drop(columns="U"))
    fit = DataConstrainedFit(unique="unique_tokens").fit(runs.rename(columns={"U": "unique_tokens"}))
    assert fit.params_["R_D_star"] == pytest.approx(TRUE["R_D_star"], rel=0.06)


def test_tied_exponents_as_in_the_published_fit_and_fixed_values():
    # Muennighoff et al.'s released fit has alpha = beta; tie them, and fix R*_N at its true value.
    true = dict(TRUE, beta=TRUE["alpha"])
    runs = synthetic_runs(params=true)
    fit = DataConstrainedFit(tie={"beta": "alpha"}, fixed={"R_N_star": 4.0}).fit(runs)
    assert fit.params_["beta"] == fit.params_["alpha"] == pytest.approx(true["alpha"], rel=0.02)
    assert fit.params_["R_N_star"] == 4.0
    assert fit.params_["R_D_star"] == pytest.approx(true["R_D_star"], rel=0.06)
