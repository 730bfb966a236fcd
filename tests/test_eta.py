"""The sweep ETA: stable from the first finished run, never swinging by 10x as runs finish."""

import numpy as np
import pytest

from scalinglab.sweep.eta import EtaModel


def _sweep(n=40, seed=0):
    """Runs longest-first, timed by a law unlike the defaults (5x faster FLOPs, 3x slower steps), with noise."""
    rng = np.random.default_rng(seed)
    flops = np.sort(10 ** rng.uniform(9, 13, n))[::-1]
    steps = np.round(flops / 1e9) + 50
    truth = flops / 100e9 + 6e-3 * steps + 0.3
    times = truth * rng.lognormal(0.0, 0.15, n)
    return [EtaModel.features(f, s) for f, s in zip(flops, steps)], times


@pytest.mark.parametrize("seed", range(5))
def test_eta_after_each_run_stays_within_a_factor_of_the_true_remaining_time(seed):
    x, t = _sweep(seed=seed)
    eta = EtaModel(capacity=1)
    ratios = []
    for i in range(len(t) - 1):
        eta.observe(x[i], t[i])
        ratios.append(eta.remaining(x[i + 1:]) / t[i + 1:].sum())
    ratios = np.array(ratios)
    assert np.all((ratios > 0.45) & (ratios < 2.0)), ratios.round(2)
    # consecutive estimates move smoothly: no 10x swing as the runs finish
    assert np.max(np.abs(np.diff(np.log(ratios)))) < np.log(1.5)


def test_three_noisy_runs_do_not_take_over_the_model():
    """The old model refitted three free coefficients to three runs; noise then set the ETA."""
    x, t = _sweep(seed=3)
    eta = EtaModel(capacity=2)
    for i in range(3):
        eta.observe(x[i], t[i] * (2.0 if i == 1 else 1.0))
    left = eta.remaining(x[3:])
    loads_truth = t[3:].sum() / 2
    assert 0.4 < left / loads_truth < 2.5


def test_first_guess_until_a_run_finishes():
    eta = EtaModel()
    assert eta.guessing
    eta.observe(EtaModel.features(1e9, 10), 1.0)
    assert not eta.guessing
