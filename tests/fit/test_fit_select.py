"""Law selection by rolling back-test picks the form that generated the data; the broken power law fits."""

import numpy as np
import pandas as pd
import pytest

from fit_synthetic import CHINCHILLA_TRUE, KAPLAN_TRUE
from scalinglab.core import laws
from scalinglab.errors import FitError
from scalinglab.fit.parametric import BrokenPowerLawFit
from scalinglab.fit.select import applicable_laws, compare_laws, compute_levels

BROKEN_TRUE = dict(E=1.0, A=60.0, x_b=1e19, f=0.5, alpha=0.03, c=0.3)


def grid_runs(law, seed=0, noise=0.005, n=6):
    rng = np.random.default_rng(seed)
    N, D = np.meshgrid(np.logspace(7, 9.5, n), np.logspace(8.5, 11.5, n))
    N, D = N.ravel(), D.ravel()
    C = 6 * N * D
    return pd.DataFrame({"N": N, "D": D, "C": C, "loss": law(N, D, C) * np.exp(noise * rng.standard_normal(N.size))})


FORMS = {
    "chinchilla": lambda N, D, C: laws.chinchilla(N, D, **CHINCHILLA_TRUE),
    "kaplan": lambda N, D, C: laws.kaplan(N, D, **KAPLAN_TRUE),
    "power_C": lambda N, D, C: laws.power_law(C, E=1.5, A=3e3, alpha=0.18),
    "broken_power_C": lambda N, D, C: laws.broken_power_law(C, **BROKEN_TRUE),
}


@pytest.mark.parametrize("true_form", list(FORMS))
def test_selection_picks_the_true_form(true_form):
    runs = grid_runs(FORMS[true_form], seed=list(FORMS).index(true_form))
    cmp = compare_laws(runs, max_levels=5)
    assert set(cmp.table.index) == {"power_C", "power_N", "power_D", "broken_power_C", "chinchilla", "kaplan"}
    assert cmp.chosen == true_form, cmp.table.to_string()
    assert cmp.reason.startswith(true_form) and "back-test" in cmp.reason
    assert cmp.fit.law == cmp.fits[true_form].law
    assert (cmp.errors["status"] == "ok").mean() > 0.9


def test_in_sample_fit_does_not_choose():
    """Data from a plain power law: the broken law (a superset) fits the runs it saw at least as well,
    but extrapolates worse; the back-test picks the power law and says so."""
    cmp = compare_laws(grid_runs(FORMS["power_C"], seed=2), laws=["power_C", "broken_power_C"], max_levels=5)
    t = cmp.table
    assert t.loc["broken_power_C", "in_sample_rmse_log"] <= t.loc["power_C", "in_sample_rmse_log"] * 1.001
    assert cmp.chosen == "power_C"
    assert "not used to choose" in cmp.reason
    d = cmp.to_dict()
    assert d["chosen"] == "power_C" and len(d["laws"]) == 2 and d["splits"]


def test_levels_and_applicability():
    runs = grid_runs(FORMS["chinchilla"])
    assert applicable_laws(runs[["C", "loss"]]) == ["power_C", "broken_power_C"]
    lv = compute_levels(runs, max_levels=5)
    assert lv.max() == 4
    order = np.argsort(runs["C"].to_numpy())
    assert (np.diff(lv[order]) >= 0).all()                    # levels rise with compute
    budget = runs.assign(budget=np.repeat([1e17, 1e18, 1e19, 1e20, 1e21, 1e22], 6))
    assert compute_levels(budget).max() == 5


def test_errors_are_clear():
    runs = grid_runs(FORMS["chinchilla"])
    with pytest.raises(FitError, match="unknown law 'bogus'"):
        compare_laws(runs, laws=["bogus"])
    with pytest.raises(FitError, match="needs columns"):
        compare_laws(runs[["C", "loss"]], laws=["chinchilla"])
    with pytest.raises(FitError, match="only 3 compute level"):
        compare_laws(runs, max_levels=3)


def test_broken_power_law_recovers_parameters_and_gradients_agree():
    rng = np.random.default_rng(0)
    x = np.logspace(15, 21, 40)
    y = laws.broken_power_law(x, **BROKEN_TRUE) * np.exp(0.003 * rng.standard_normal(40))
    fit = BrokenPowerLawFit().fit(pd.DataFrame({"C": x, "loss": y}))
    assert fit.converged_
    assert fit.alpha_ == pytest.approx(BROKEN_TRUE["alpha"], abs=0.01)
    assert fit.c_ == pytest.approx(BROKEN_TRUE["c"], abs=0.02)
    assert np.log10(fit.x_b_) == pytest.approx(19, abs=0.15)
    assert fit.E_ == pytest.approx(1.0, rel=0.03)
    # natural-form gradient against central differences
    p = dict(BROKEN_TRUE)
    g = laws.broken_power_law_grad(x, **p)
    for i, k in enumerate(laws.BROKEN_POWER_PARAMS):
        h = 1e-5 * abs(p[k])
        fd = (laws.broken_power_law(x, **{**p, k: p[k] + h}) - laws.broken_power_law(x, **{**p, k: p[k] - h})) / (2 * h)
        np.testing.assert_allclose(g[i], fd, rtol=1e-5, atol=1e-7, err_msg=k)
    # log-space VJP against central differences
    theta = BrokenPowerLawFit._to_theta(fit.params_array()[None])
    ll, vjp = laws.broken_power_law_log(theta, np.log(x))
    np.testing.assert_allclose(ll[0], np.log(fit.predict(x)), rtol=1e-12)
    up = rng.standard_normal(ll.shape)
    for j in range(6):
        d = np.zeros_like(theta)
        d[0, j] = 1e-6
        fd = ((laws.broken_power_law_log(theta + d, np.log(x))[0]
               - laws.broken_power_law_log(theta - d, np.log(x))[0]) * up).sum() / 2e-6
        assert vjp(up)[0, j] == pytest.approx(fd, rel=1e-5, abs=1e-9)
