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
    assert res.selection["derived"]["D"] == "C / (6 N)" and "no D of its own" in res.diagnostics["D_opt_from"]
    prof = res.tables["profiles"]
    np.testing.assert_allclose(prof["D_opt"], prof["C"] / (6 * prof["N_opt"]), rtol=1e-12)


def test_budget_centres_are_rounded_to_the_digits_given():
    runs = isoflop_runs(seed=5, budgets=[6e18, 5.76e23])
    assert np.exp(np.log(runs["C"][runs["C"] == 6e18]).mean()) != 6e18        # the naive geometric mean
    assert isoflop_profiles(runs).profiles["C"].tolist() == [6e18, 5.76e23]
    runs["C"] = np.where(runs["C"] == 6e18, np.tile([5.9e18, 6.1e18], len(runs))[:len(runs)], runs["C"])
    assert isoflop_profiles(runs).profiles["C"].iloc[0] == pytest.approx(6e18, rel=0.01)
    assert repr(isoflop_profiles(runs).profiles["C"].iloc[0]).count("9999") == 0


def wide_sweep(width=3.0, k=13, shift=(0.5, -0.5), params=CHINCHILLA_TRUE):
    """7 budgets, k sizes over `width` decades, centred `shift` decades off the optimum (from + to -)."""
    from scalinglab.core import laws

    s = params["alpha"] + params["beta"]
    G = (params["alpha"] * params["A"] / (params["beta"] * params["B"])) ** (1 / s)
    budgets, rows = np.logspace(18, 21, 7), []
    for C, sh in zip(budgets, np.linspace(*shift, budgets.size)):
        n_opt = G * (C / 6) ** (params["beta"] / s)
        for N in n_opt * 10 ** (sh + np.linspace(-width / 2, width / 2, k)):
            rows.append({"N": N, "D": C / (6 * N), "C": C, "loss": laws.chinchilla(N, C / (6 * N), **params)})
    return pd.DataFrame(rows), lambda c: G * (np.asarray(c) / 6) ** (params["beta"] / s)


def test_wide_sweep_biases_the_global_parabola_but_not_the_window_or_akima():
    """Loss is not a parabola in log N three decades wide: its minimum drifts (+0.018 decades here)."""
    runs, truth = wide_sweep()
    bias = {}
    for method in ("parabola", "window", "akima"):
        prof = isoflop_profiles(runs, method=method).profiles
        assert prof["inside"].all()
        bias[method] = np.log10(prof["N_opt"] / truth(prof["C"])).to_numpy()
    assert np.mean(bias["parabola"]) > 0.012
    assert np.abs(bias["window"]).max() < 0.005 and np.abs(bias["akima"]).max() < 0.005
    # each budget says how its sizes sit around the minimum: +0.33 (more above) to -0.33 (more below)
    asym = isoflop_profiles(runs, method="akima").profiles["asymmetry"].to_numpy()
    np.testing.assert_allclose(asym, np.linspace(0.333, -0.333, 7), atol=0.01)


def test_akima_minimum_at_the_edge_is_flagged():
    runs, _ = wide_sweep(width=1.0, k=5, shift=(1.0, 0.0))     # the first budget's sizes all lie above N_opt
    prof = isoflop_profiles(runs, method="akima").profiles
    assert not prof["inside"].iloc[0] and "smallest model size" in prof["note"].iloc[0]
    assert prof["inside"].iloc[-1]


def test_window_keeps_sizes_near_the_lowest_loss():
    runs, _ = wide_sweep()
    prof = isoflop_profiles(runs, method="window", window_decades=0.5).profiles
    assert (prof["n_sizes_used"] == 5).all()               # 13 sizes over 3 decades: 0.25 apart, +-0.5 -> 5
    with pytest.raises(FitError, match="unknown IsoFLOP method"):
        isoflop_profiles(runs, method="spline")
