"""The shared rank-range rule: exact power laws, bent curves, bad input."""

import math

import numpy as np
import pytest

from scalinglab.analysis.powerlaw_fit import (MAX_DRIFT, fit_rank_power_law, local_exponents, log_grid,
                                              percentile_interval)
from scalinglab.errors import FitError


def test_exact_power_law_is_recovered_over_its_whole_range():
    r = np.arange(1, 2001)
    fit = fit_rank_power_law(7.0 * r ** -0.8)
    assert fit.exponent == pytest.approx(0.8, abs=1e-9)
    assert fit.prefactor == pytest.approx(7.0, rel=1e-9)
    assert (fit.rank_min, fit.rank_max) == (1, 2000)  # a straight sequence picks its widest range
    plausible, reason = fit.verdict()
    assert plausible and "misses by at most" in reason


def test_range_stops_where_the_curve_bends():
    """Power law r^-1 up to rank 300, then an exponential cut-off: the range must stay below the bend."""
    r = np.arange(1, 3001, dtype=float)
    y = r ** -1.0 * np.exp(-np.maximum(r - 300, 0) / 60)
    fit = fit_rank_power_law(y)
    assert fit.exponent == pytest.approx(1.0, abs=0.02)
    assert fit.rank_max <= 400
    assert fit.decades >= 1.0


def test_scale_and_noise_do_not_move_the_exponent():
    rng = np.random.default_rng(3)
    r = np.arange(1, 5001, dtype=float)
    y = r ** -0.6 * np.exp(0.01 * rng.standard_normal(r.size))
    a, b = fit_rank_power_law(y), fit_rank_power_law(1e6 * y)
    assert a.exponent == pytest.approx(b.exponent, rel=1e-12)
    assert a.exponent == pytest.approx(0.6, abs=0.01)


def test_quarter_circle_spectrum_is_not_a_power_law():
    """Singular values of a large square Gaussian matrix (quarter-circle law) bend in log-log space."""
    k = 1000
    q = (np.arange(1, k + 1) - 0.5) / k
    # rank-r value of the quarter-circle law on [0, 2]: invert its CDF numerically
    grid = np.linspace(0, 2, 20001)
    cdf = np.cumsum(np.sqrt(4 - grid ** 2)) / np.sum(np.sqrt(4 - grid ** 2))
    values = np.interp(1 - q, cdf, grid)
    fit = fit_rank_power_law(values[values > 0])
    plausible, reason = fit.verdict()
    assert not plausible
    assert fit.drift > MAX_DRIFT and "bends" in reason


def test_flat_sequence_has_no_falling_range():
    fit = fit_rank_power_law(np.ones(100))
    assert math.isinf(fit.deviation)
    plausible, reason = fit.verdict()
    assert not plausible and "does not fall" in reason


@pytest.mark.parametrize("values, message", [
    (np.ones(5), "at least 10 values"),
    (np.array([3.0, 2.0, 0.0] + [1.0] * 20), "positive"),
    (np.ones((4, 4)), "1-D"),
])
def test_bad_sequences_raise_fit_errors(values, message):
    with pytest.raises(FitError, match=message):
        fit_rank_power_law(values)


def test_log_grid_and_local_exponents():
    g = log_grid(1000, 10)
    assert g[0] == 1 and g[-1] == 1000 and np.all(np.diff(g) > 0)
    ranks, slopes = local_exponents(np.arange(1, 1001, dtype=float) ** -1.3)
    assert np.allclose(slopes, 1.3)
    assert ranks.size == g.size - 1


def test_percentile_interval_ignores_failed_replicates():
    lo, hi = percentile_interval([1.0, 2.0, np.nan, 3.0, 4.0, 5.0], level=0.5)
    assert (lo, hi) == (2.0, 4.0)
    assert all(math.isnan(v) for v in percentile_interval([np.nan, 1.0]))
