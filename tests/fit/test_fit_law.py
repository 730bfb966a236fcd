"""fit_law and FitResult: one schema for every law, intervals the data support, selection recorded."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fit_synthetic import CHINCHILLA_TRUE, POWER_TRUE, chinchilla_runs, isoflop_runs
from scalinglab.core import laws
from scalinglab.errors import FitError
from scalinglab.fit import LAWS, FitResult, fit_law


def test_import_does_not_load_torch():
    code = "import scalinglab.fit, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("law", ["power", "frontier", "approach1", "isoflop", "chinchilla", "kaplan"])
def test_every_law_gives_the_same_schema(law):
    runs = isoflop_runs(seed=1) if law == "isoflop" else chinchilla_runs(seed=1, n=6)
    res = fit_law(runs, law, n_resamples=10, at_flops=[1e22], starts="coarse" if law == "chinchilla" else None)
    d = res.to_dict()
    assert set(d) == {"schema_version", "law", "formula", "params", "derived", "intervals", "tables", "backtest",
                      "warnings", "selection", "method", "diagnostics"}
    assert d["schema_version"] == 1 and d["law"] == law
    assert set(d["intervals"]) == set(d["params"]) | set(d["derived"])
    assert all(iv["method"] == "bootstrap" for iv in d["intervals"].values())
    if law != "power":                         # a power law in C answers the loss only
        assert "N_opt@1e+22" in d["derived"] and "a" in d["derived"] and "a" not in d["params"]
    assert "loss@1e+22" in d["derived"] or law in ("approach1", "isoflop")
    json.dumps(d)                              # plain JSON: no NaN, no numpy types
    back = FitResult.from_dict(json.loads(json.dumps(d)))
    assert back.params == pytest.approx(res.params) and back.intervals.keys() == res.intervals.keys()


def test_law_table_is_one_entry_per_law():
    assert set(LAWS) >= {"power", "frontier", "approach1", "isoflop", "chinchilla", "kaplan"}
    with pytest.raises(FitError, match="unknown law 'nope'"):
        fit_law(chinchilla_runs(n=4), "nope")


def test_approach1_exponents_get_bootstrap_intervals_and_recover_the_truth():
    rng = np.random.default_rng(3)
    N, D = (a.ravel() for a in np.meshgrid(np.logspace(7, 9.5, 14), np.logspace(8.5, 11.5, 14)))
    loss = laws.chinchilla(N, D, **CHINCHILLA_TRUE) * np.exp(0.001 * rng.standard_normal(N.size))
    res = fit_law(pd.DataFrame({"N": N, "D": D, "loss": loss}), "approach1", n_resamples=50)
    true_a = CHINCHILLA_TRUE["beta"] / (CHINCHILLA_TRUE["alpha"] + CHINCHILLA_TRUE["beta"])
    iv = res.intervals["a"]
    assert iv.method == "bootstrap" and iv.lo < res.derived["a"] < iv.hi
    assert res.derived["a"] == pytest.approx(true_a, abs=0.05)


def test_three_noisy_points_and_three_parameters_get_no_interval():
    """Issue 16 case 2: the bootstrap gave a zero-width '95% interval' around a wrong alpha."""
    rng = np.random.default_rng(0)
    x = np.array([1e8, 1e9, 1e10])
    runs = pd.DataFrame({"C": x, "loss": laws.power_law(x, **POWER_TRUE) * np.exp(0.02 * rng.standard_normal(3))})
    res = fit_law(runs, "power", n_resamples=50)
    assert not res.supported
    iv = res.intervals["alpha"]
    assert not iv.supported and np.isnan(iv.lo) and "too few" in iv.note
    assert any("not supported" in w for w in res.warnings)


def test_identical_resamples_are_flagged_not_reported_as_a_zero_width_interval():
    from scalinglab.fit.fitting import _intervals

    samples = pd.DataFrame({"alpha": np.full(20, 0.3108), "converged": True})
    iv = _intervals({"alpha": 0.3108}, samples, {}, 0.95, 20, "")["alpha"]
    assert not iv.supported and "same value" in iv.note


def test_regression_intervals_without_bootstrap():
    res = fit_law(isoflop_runs(seed=2), "isoflop", n_resamples=0)
    iv = res.intervals["a"]
    assert iv.method == "regression" and iv.lo < res.derived["a"] < iv.hi
    assert iv.se == pytest.approx(res.estimator.a_se)
    assert res.intervals["E" if "E" in res.intervals else "N_coef"].method == "none"


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "x"])
def test_at_flops_must_be_positive_and_finite(bad):
    with pytest.raises(FitError, match="--at-flops"):
        fit_law(isoflop_runs(seed=2), "isoflop", n_resamples=0, at_flops=[bad])
