"""Approach 2: IsoFLOP parabolas recover the allocation exponent and flag extrapolated minima."""

import numpy as np
import pandas as pd
import pytest

from fit_synthetic import CHINCHILLA_TRUE, isoflop_runs
from scalinglab.errors import FitError
from scalinglab.fit import group_budgets, isoflop_profiles


def test_recovers_allocation_exponent():
    res = isoflop_profiles(isoflop_runs(seed=0))
    true_a = CHINCHILLA_TRUE["beta"] / (CHINCHILLA_TRUE["alpha"] + CHINCHILLA_TRUE["beta"])
    assert len(res.profiles) == 7 and res.profiles["inside"].all() and res.warnings == []
    assert res.a == pytest.approx(true_a, abs=0.02)
    assert res.a + res.b == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(6 * res.profiles["N_opt"] * res.profiles["D_opt"], res.profiles["C"], rtol=1e-10)


def test_minimum_outside_sampled_range_is_flagged():
    runs = isoflop_runs(seed=1)
    low = runs["C"] == runs["C"].max()
    n_max = runs.loc[low, "N"].sort_values().iloc[2]      # keep the 3 smallest: all below the optimum
    runs = runs[~(low & (runs["N"] > n_max))]
    res = isoflop_profiles(runs)
    last = res.profiles.iloc[-1]
    assert not last["inside"]
    assert "minimum lies above the largest model size sampled" in last["note"]
    assert any("extrapolated" in w for w in res.warnings)
    assert res.n_used == 6
    assert isoflop_profiles(runs, include_outside=True).n_used == 7


def test_concave_profile_has_no_minimum():
    runs = pd.DataFrame({"N": [1e8, 2e8, 4e8, 1e8, 2e8, 4e8], "C": [1e19] * 3 + [1e20] * 3,
                         "loss": [3.0, 3.2, 3.0, 2.6, 2.5, 2.6]})
    res = isoflop_profiles(runs)
    assert np.isnan(res.profiles.loc[0, "N_opt"]) and "not convex" in res.profiles.loc[0, "note"]
    assert res.profiles.loc[1, "inside"]
    assert np.isnan(res.a) and any("at least 2" in w for w in res.warnings)


def test_grouping_by_compute_and_by_column():
    c = np.array([1e19, 1.05e19, 3e19, 2.9e19, 1e20])
    labels = group_budgets(c)
    assert labels.tolist() == [0, 0, 1, 1, 2]
    runs = isoflop_runs(seed=2).assign(budget=lambda d: d["C"])
    assert isoflop_profiles(runs, budget="budget").a == pytest.approx(isoflop_profiles(runs).a)


def test_no_profile_at_all_is_an_error():
    runs = pd.DataFrame({"N": [1e8, 2e8], "C": [1e19, 1e20], "loss": [3.0, 2.5]})
    with pytest.raises(FitError, match="no IsoFLOP profile has a minimum"):
        isoflop_profiles(runs)


def test_almost_flat_parabola_gives_a_note_not_a_crash():
    import numpy as np
    from scalinglab.fit.isoflop import _profile

    ln = np.log([1e3, 1e4, 1e5, 1e6])
    row = _profile(ln, 3.0 + 0.02 * ln + 1e-12 * ln ** 2, 1e15)
    assert np.isnan(row["N_opt"]) and "flat" in row["note"]
