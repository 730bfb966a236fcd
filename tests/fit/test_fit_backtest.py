"""Back-tests: fit below a compute threshold, predict above."""

import numpy as np
import pytest

from fit_synthetic import chinchilla_runs
from scalinglab.errors import FitError
from scalinglab.fit import ChinchillaFit, FrontierFit, PowerLawFit, backtest


def test_chinchilla_backtest_predicts_held_out_runs():
    runs = chinchilla_runs(seed=7, noise=0.003)
    thr = np.quantile(runs["C"], 0.75)
    res = backtest(ChinchillaFit(starts="coarse"), runs, holdout_above=thr)
    assert res.summary["n_train"] + res.summary["n_test"] == len(runs)
    assert (res.predictions["C"] > thr).all() and res.summary["n_test"] == len(res.predictions)
    assert list(res.predictions.columns) == ["run", "C", "N", "D", "measured", "predicted", "rel_error"]
    np.testing.assert_allclose(res.predictions["rel_error"],
                               res.predictions["predicted"] / res.predictions["measured"] - 1)
    assert res.summary["mean_abs_rel_error"] < 0.02
    assert res.estimator.n_points_ == res.summary["n_train"]


def test_frontier_backtest_scores_frontier_runs():
    runs = chinchilla_runs(seed=8, n=10)
    res = backtest(FrontierFit(), runs, holdout_above=np.quantile(runs["C"], 0.8))
    assert res.summary["n_test"] >= 1 and (np.diff(res.predictions["measured"]) < 0).all()


def test_nothing_to_predict():
    runs = chinchilla_runs(seed=9)
    with pytest.raises(FitError, match="no runs above"):
        backtest(PowerLawFit(), runs, holdout_above=runs["C"].max())
    with pytest.raises(FitError, match="no runs at or below"):
        backtest(PowerLawFit(), runs, holdout_above=runs["C"].min() / 2)


def test_frontier_backtest_with_nothing_new_above_the_threshold_is_a_clear_error():
    import pandas as pd
    import pytest

    from scalinglab.errors import FitError
    from scalinglab.fit import FrontierFit, backtest

    runs = pd.DataFrame({"C": [1e9, 2e9, 4e9, 8e9, 1.6e10, 3.2e10],
                         "loss": [2.0, 1.5, 1.2, 1.0, 1.1, 1.05], "run": list("abcdef")})
    with pytest.raises(FitError, match="nothing to predict"):
        backtest(FrontierFit(), runs, holdout_above=1e10)
