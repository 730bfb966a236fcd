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


def test_d_opt_comes_from_the_runs_own_examples_not_6n():
    """FLOPs per example 50 N^1.15 (a CNN-like cost, not 6N): D_opt is the runs' D at N_opt and b != 1 - a."""
    from scalinglab.core import laws
    from scalinglab.fit import fit_law

    rng = np.random.default_rng(0)
    rows = []
    for C in np.logspace(15, 18, 6):
        for N in np.logspace(4, 7, 9):
            D = C / (50 * N ** 1.15)
            rows.append({"N": N, "D": D, "C": C, "loss": float(laws.chinchilla(N, D, **CHINCHILLA_TRUE))
                         * np.exp(0.001 * rng.standard_normal())})
    runs = pd.DataFrame(rows)
    res = fit_law(runs, "isoflop", n_resamples=0)
    prof = res.tables["profiles"]
    used = prof[prof["inside"]]
    assert len(used) >= 4
    # the D trained at N_opt by this table's own cost: C / (50 N_opt^1.15), not C / (6 N_opt)
    np.testing.assert_allclose(used["D_opt"], used["C"] / (50 * used["N_opt"] ** 1.15), rtol=1e-9)
    assert not np.allclose(used["D_opt"], used["C"] / (6 * used["N_opt"]), rtol=0.5)
    a, b = res.derived["a"], res.derived["b"]
    assert b == pytest.approx(1 - 1.15 * a, abs=1e-9) and abs(b - (1 - a)) > 0.05
    assert "interpolated" in res.diagnostics["D_opt_from"]


def test_without_d_the_table_falls_back_to_6n_and_says_so():
    from scalinglab.fit import fit_law

    runs = isoflop_runs(seed=4).drop(columns="D")
    res = fit_law(runs, "isoflop", n_resamples=0)
    assert res.selection["derived"]["D"] == "C / (6 N)" and "6 N_opt" in res.diagnostics["D_opt_from"]
    prof = res.tables["profiles"]
    np.testing.assert_allclose(prof["D_opt"], prof["C"] / (6 * prof["N_opt"]), rtol=1e-12)


def test_budget_centres_are_rounded_to_the_digits_given():
    runs = isoflop_runs(seed=5, budgets=[6e18, 5.76e23])
    assert np.exp(np.log(runs["C"][runs["C"] == 6e18]).mean()) != 6e18        # the naive geometric mean
    assert isoflop_profiles(runs).profiles["C"].tolist() == [6e18, 5.76e23]
    runs["C"] = np.where(runs["C"] == 6e18, np.tile([5.9e18, 6.1e18], len(runs))[:len(runs)], runs["C"])
    assert isoflop_profiles(runs).profiles["C"].iloc[0] == pytest.approx(6e18, rel=0.01)
    assert repr(isoflop_profiles(runs).profiles["C"].iloc[0]).count("9999") == 0
