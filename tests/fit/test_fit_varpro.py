"""Variable projection reaches the multistart's optimum: on the published Chinchilla points and on synthetic laws."""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import nnls

from fit_synthetic import CHINCHILLA_TRUE, KAPLAN_TRUE, POWER_TRUE, chinchilla_csv, chinchilla_runs  # noqa: F401
from scalinglab.core import laws
from scalinglab.errors import FitError
from scalinglab.fit import ChinchillaFit, KaplanFit, PowerLawFit, drop_highest_loss, load_runs
from scalinglab.fit.varpro import _nonneg_lstsq, fit_varpro, profile


def same_optimum(a, b, rel=2e-3):
    assert a.objective_ == pytest.approx(b.objective_, rel=1e-7)
    for k in a.param_names:
        assert a.params_[k] == pytest.approx(b.params_[k], rel=rel), k


@pytest.fixture(scope="module")
def epoch_runs(chinchilla_csv):
    return drop_highest_loss(load_runs(chinchilla_csv), 5)


def test_chinchilla_on_epoch_data_matches_the_4500_start_fit(epoch_runs):
    multistart = ChinchillaFit().fit(epoch_runs)
    vp = fit_varpro(epoch_runs, "chinchilla")
    same_optimum(vp, multistart)
    assert vp.converged_ and vp.n_starts_ <= 6
    assert vp.params_["alpha"] == pytest.approx(0.3473, abs=5e-4)    # Epoch's published refit


def test_kaplan_on_epoch_data_matches_the_multistart(epoch_runs):
    same_optimum(fit_varpro(epoch_runs, "kaplan"), KaplanFit().fit(epoch_runs))


def test_synthetic_laws_recovered_and_matched():
    runs = chinchilla_runs(seed=3, noise=0.005)
    vp = fit_varpro(runs, "chinchilla")
    same_optimum(vp, ChinchillaFit().fit(runs))
    assert vp.alpha_ == pytest.approx(CHINCHILLA_TRUE["alpha"], abs=0.02)

    rng = np.random.default_rng(4)
    N, D = np.meshgrid(np.logspace(7, 9.5, 7), np.logspace(8.5, 11.5, 7))
    N, D = N.ravel(), D.ravel()
    kap = pd.DataFrame({"N": N, "D": D, "loss": laws.kaplan(N, D, **KAPLAN_TRUE) * np.exp(0.003 * rng.standard_normal(49))})
    vp = fit_varpro(kap, "kaplan")
    same_optimum(vp, KaplanFit().fit(kap))
    assert vp.alpha_N_ == pytest.approx(KAPLAN_TRUE["alpha_N"], abs=0.005)

    x = np.logspace(15, 21, 40)
    pw = pd.DataFrame({"C": x, "loss": laws.power_law(x, **POWER_TRUE) * np.exp(0.005 * rng.standard_normal(40))})
    vp = fit_varpro(pw, "power")
    same_optimum(vp, PowerLawFit().fit(pw))
    assert vp.alpha_ == pytest.approx(POWER_TRUE["alpha"], abs=0.01)


def test_tied_exponents_search_the_diagonal():
    true = dict(E=1.8, A=500.0, B=2000.0, alpha=0.32, beta=0.32)
    runs = chinchilla_runs(seed=6, noise=0.003, params=true)
    vp = fit_varpro(runs, "chinchilla", tie={"beta": "alpha"})
    same_optimum(vp, ChinchillaFit(starts="coarse", tie={"beta": "alpha"}).fit(runs))
    assert vp.alpha_ == vp.beta_


def test_projection_at_the_optimal_exponents_gives_the_optimal_objective(epoch_runs):
    """The inner IRLS solve is a Huber solve: with the exponents at the optimum, the projected coefficients
    reach (almost) the optimum objective, much closer than a plain least-squares projection."""
    fit = ChinchillaFit().fit(epoch_runs)
    log_in = [np.log(epoch_runs[c].to_numpy()) for c in ("N", "D")]
    log_y = np.log(epoch_runs["loss"].to_numpy())
    exps = np.array([[fit.alpha_, fit.beta_]])
    f_ls, _ = profile("chinchilla", exps, log_in, log_y, irls_steps=0)
    f_irls, theta = profile("chinchilla", exps, log_in, log_y, irls_steps=30)
    assert f_irls[0] == pytest.approx(fit.objective_, rel=0.01)
    assert f_irls[0] - fit.objective_ < 0.2 * (f_ls[0] - fit.objective_)
    assert np.exp(theta[0, 0]) == pytest.approx(fit.E_, rel=0.01)


def test_nonnegative_solve_matches_scipy_nnls():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 30, 3)) * [1.0, 1e3, 1e-3]     # badly scaled columns
    t = rng.standard_normal((50, 30))
    ours = _nonneg_lstsq(X.transpose(0, 2, 1) @ X, np.einsum("snk,sn->sk", X, t))
    for s in range(50):
        ref, _ = nnls(X[s], t[s])
        np.testing.assert_allclose(ours[s], ref, rtol=1e-6, atol=1e-9 * np.abs(ref).max())


def test_unknown_law_is_a_fit_error():
    with pytest.raises(FitError, match="variable projection covers"):
        fit_varpro(chinchilla_runs(n=4), "broken")
