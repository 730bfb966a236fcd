"""Reproduce Besiroglu et al. 2024's refit of Hoffmann et al. 2022's Approach 3 on the published points.

Epoch AI's grid fit (Huber delta 1e-3 on log residuals, 4,500-start grid,
L-BFGS) on the 240 points left after dropping the 5 highest losses:
A = 477.8, B = 2143.9, E = 1.8172, alpha = 0.3473, beta = 0.3672; bootstrap
standard error of a = beta/(alpha+beta): 0.020.
"""

import pytest

from fit_synthetic import chinchilla_csv  # noqa: F401 (a fixture)
from scalinglab.fit import ChinchillaFit, bootstrap, drop_highest_loss, load_runs

EPOCH_GRID_FIT = {"A": 477.8, "B": 2143.9, "E": 1.8172, "alpha": 0.3473, "beta": 0.3672}


@pytest.fixture(scope="module")
def epoch_runs(chinchilla_csv):
    runs = drop_highest_loss(load_runs(chinchilla_csv), 5)
    assert len(runs) == 240
    return runs


@pytest.fixture(scope="module")
def epoch_fit(epoch_runs):
    return ChinchillaFit().fit(epoch_runs)          # the full 4,500-start Hoffmann grid


def test_reproduces_epoch_grid_fit(epoch_fit):
    assert epoch_fit.n_starts_ == 4500
    assert epoch_fit.converged_
    for name, published in EPOCH_GRID_FIT.items():
        assert epoch_fit.params_[name] == pytest.approx(published, rel=0.005), name


def test_bootstrap_standard_error_of_a(epoch_fit, epoch_runs):
    boot = bootstrap(epoch_fit, epoch_runs, n_resamples=300, random_state=0)
    assert boot.n_failed == 0
    assert 0.01 <= boot.se["a"] <= 0.04
    lo, hi = boot.ci["a"]
    assert lo < epoch_fit.a_ < hi
