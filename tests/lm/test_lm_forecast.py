"""Learning-curve forecasting recovers known curves."""

import numpy as np
import pytest

from scalinglab.errors import FitError
from scalinglab.fit.forecast import fit_power_law_offset, forecast_final_loss


def test_recovers_exact_power_law_with_offset():
    t = np.geomspace(50, 20_000, 40)
    fit = fit_power_law_offset(t, 1.7 + 9.0 * t ** -0.45)
    assert fit.L_inf == pytest.approx(1.7, abs=1e-6)
    assert fit.alpha == pytest.approx(0.45, rel=1e-5)
    assert fit.A == pytest.approx(9.0, rel=1e-4)


def test_forecast_from_first_half_recovers_L_inf_and_final_loss():
    rng = np.random.default_rng(1)
    t = np.linspace(100, 40_000, 40)
    truth = 2.3 + 6.0 * t ** -0.6
    curve = np.column_stack([t, truth + rng.normal(0, 2e-4, t.size)])
    f = forecast_final_loss(curve, fit_fraction=0.5)
    assert f.fit.t_max <= 20_000
    assert f.fit.L_inf == pytest.approx(2.3, abs=0.02)
    assert f.predicted == pytest.approx(truth[-1], abs=5e-3)
    assert abs(f.relative_error) < 0.003


def test_forecast_beyond_the_curve_has_no_actual():
    t = np.linspace(10, 1000, 20)
    f = forecast_final_loss(np.column_stack([t, 1 + t ** -0.5]), t_final=1e5)
    assert f.actual is None and f.error is None
    assert f.predicted == pytest.approx(1 + 1e5 ** -0.5, rel=1e-3)


def test_too_few_points_is_a_fit_error():
    with pytest.raises(FitError, match="at least 4"):
        fit_power_law_offset([1, 2, 3], [3, 2, 1])
    with pytest.raises(FitError, match="fit_fraction"):
        forecast_final_loss([[1, 2], [2, 1.5], [3, 1.2], [4, 1.1]], fit_fraction=0)
