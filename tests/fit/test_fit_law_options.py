"""fit_law's options on synthetic tables with known answers: groups, filters, derived columns, budgets,
back-tests along any axis, answers at budgets, fixed and tied parameters, weights, and warnings."""

import json

import numpy as np
import pandas as pd
import pytest

from fit_synthetic import CHINCHILLA_TRUE, chinchilla_runs, isoflop_runs, store_db
from scalinglab.cli import main
from scalinglab.core import laws
from scalinglab.errors import DataError, FitError
from scalinglab.fit import budget_of_runs, fit_groups, fit_law

TRUE_A = CHINCHILLA_TRUE["beta"] / (CHINCHILLA_TRUE["alpha"] + CHINCHILLA_TRUE["beta"])


def two_experiments(seed=0):
    """Two experiments on the same compute grid, L = E + A C^-alpha with alpha 0.2 and 0.35."""
    rng = np.random.default_rng(seed)
    c = np.logspace(15, 20, 12)
    parts = []
    for name, alpha in (("small-vocab", 0.2), ("big-vocab", 0.35)):
        loss = laws.power_law(c, 1.5, 3e3 if alpha == 0.2 else 3e6, alpha) * np.exp(0.002 * rng.standard_normal(c.size))
        parts.append(pd.DataFrame({"C": c, "loss": loss, "experiment": name}))
    return pd.concat(parts, ignore_index=True)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_mixed_experiments_are_refused_naming_the_column():
    with pytest.raises(DataError, match="mixes experiments.*'experiment'.*--group-by experiment"):
        fit_law(two_experiments(), "power", n_resamples=0)


def test_groups_recover_their_own_exponents(capsys, tmp_path):
    fits = fit_groups(two_experiments(), "power", group_by="experiment", n_resamples=20)
    assert list(fits) == ["big-vocab", "small-vocab"]
    assert fits["small-vocab"].params["alpha"] == pytest.approx(0.2, abs=0.01)
    assert fits["big-vocab"].params["alpha"] == pytest.approx(0.35, abs=0.01)
    assert fits["big-vocab"].selection["group"] == {"column": "experiment", "value": "big-vocab"}
    path = tmp_path / "two.csv"
    two_experiments().to_csv(path, index=False)
    code, out, err = run(capsys, "fit", path, "--law", "power", "--group-by", "experiment", "--bootstrap", 20,
                         "--json", "--plot", tmp_path / "groups.png")
    assert code == 0, err
    d = json.loads(out)
    assert d["group_by"] == "experiment" and set(d["groups"]) == {"small-vocab", "big-vocab"}
    assert d["groups"]["small-vocab"]["params"]["alpha"] == pytest.approx(fits["small-vocab"].params["alpha"])
    assert (tmp_path / "groups.png").stat().st_size > 1000
    code, out, err = run(capsys, "fit", path, "--law", "power", "--group-by", "experiment", "--bootstrap", 0)
    assert code == 0 and "small-vocab" in out and "big-vocab" in out
    code, out, err = run(capsys, "fit", path, "--law", "power", "--bootstrap", 0)
    assert code == 2 and "--group-by experiment" in err


def test_where_drops_flagged_runs():
    runs = chinchilla_runs(seed=3, noise=0.002, n=6)
    runs["outlier"] = False
    runs.loc[[3, 17, 30], "outlier"] = True
    runs.loc[runs["outlier"], "loss"] *= 1.5
    res = fit_law(runs, "chinchilla", starts="coarse", n_resamples=0, where="outlier == False")
    assert res.selection["dropped"]["where"] == 3 and res.selection["n_runs"] == len(runs) - 3
    assert res.params["alpha"] == pytest.approx(CHINCHILLA_TRUE["alpha"], abs=0.02)
    with pytest.raises(DataError, match="--where 'nosuch > 1' failed"):
        fit_law(runs, "chinchilla", n_resamples=0, where="nosuch > 1")
    with pytest.raises(DataError, match="keeps no runs"):
        fit_law(runs, "chinchilla", n_resamples=0, where="loss < 0")


def test_several_learning_rates_per_setting_give_a_warning():
    runs = chinchilla_runs(seed=4, n=5)
    lrs = pd.concat([runs.assign(lr=lr, loss=runs["loss"] * f) for lr, f in ((1e-3, 1.0), (3e-3, 1.02))])
    res = fit_law(lrs.reset_index(drop=True), "chinchilla", starts="coarse", n_resamples=0)
    assert any("differ in 'lr'" in w for w in res.warnings)


def test_tokens_and_budgets_without_n():
    """The form several LM papers publish IsoFLOP points in: budget and tokens, no parameter count."""
    runs = isoflop_runs(seed=6).drop(columns="N").rename(columns={"D": "tokens", "C": "flops"})
    res = fit_law(runs, "isoflop", n_resamples=0)
    assert res.selection["derived"] == {"N": "C / (6 D)"}
    assert res.derived["a"] == pytest.approx(TRUE_A, abs=0.02)


def test_budget_column_groups_runs_whose_flops_scatter(tmp_path, capsys):
    """Nominal budgets with actual FLOPs 0.8x-1.25x off: grouping by FLOPs splits them, --budget does not."""
    runs = isoflop_runs(seed=7).rename(columns={"C": "budget"})
    runs["C"] = runs["budget"] * np.tile([0.7, 1.0, 1.4, 0.75, 1.0, 1.35, 1.0], len(runs) // 7)
    assert len(np.unique(budget_of_runs(runs["C"].to_numpy()))) > 7        # grouping by FLOPs splits budgets
    res = fit_law(runs, "isoflop", n_resamples=0, budget="budget")
    assert len(res.tables["profiles"]) == 7
    assert res.tables["profiles"]["C"].tolist() == sorted(runs["budget"].unique())
    assert res.derived["a"] == pytest.approx(TRUE_A, abs=0.03)
    assert any("the FLOPs C differ from 6 N D" in w and "0.7 to 1.4" in w for w in res.warnings)
    assert not any("the budgets differ" in w for w in res.warnings)
    path = tmp_path / "budgets.csv"
    runs.to_csv(path, index=False)
    code, out, err = run(capsys, "fit", path, "--law", "isoflop", "--budget", "budget", "--bootstrap", 0, "--json")
    assert code == 0, err
    assert json.loads(out)["derived"]["a"] == pytest.approx(res.derived["a"])
    assert "differ from 6 N D" in err


def test_flops_per_token_derives_tokens():
    runs = isoflop_runs(seed=8)
    runs["D"] = runs["C"] / (8 * runs["N"])
    res = fit_law(runs.drop(columns="D"), "isoflop", n_resamples=0, flops_per_token=8.0)
    assert res.selection["derived"]["D"] == "C / (8 N)"
    np.testing.assert_allclose(res.tables["profiles"]["D_opt"],
                               res.tables["profiles"]["C"] / (8 * res.tables["profiles"]["N_opt"]), rtol=1e-9)


def test_isoflop_backtest_predicts_n_opt_at_held_out_budgets():
    res = fit_law(isoflop_runs(seed=9), "isoflop", n_resamples=0, holdout_above=3e20)
    bt, table = res.backtest, res.tables["backtest"]
    assert bt["target"] == "N_opt" and bt["n_train"] == 5 and bt["n_test"] == 2
    assert (table["C"] > 3e20).all() and bt["mean_abs_rel_error"] < 0.05


def test_frontier_and_approach1_backtests():
    runs = chinchilla_runs(seed=10, n=10)
    res = fit_law(runs, "frontier", n_resamples=0, holdout_above=float(np.quantile(runs["C"], 0.8)))
    assert res.backtest["target"] == "loss" and res.backtest["n_test"] >= 1
    assert "mean_abs_rel_error" in res.backtest["approach1"]
    a1 = fit_law(runs, "approach1", n_resamples=0, holdout_above=float(np.quantile(runs["C"], 0.8)))
    assert a1.backtest["target"] == "N_opt"


def test_learning_curve_backtest_along_examples():
    """Loss against examples seen: fit the early points, predict the late ones (axis D)."""
    d = np.logspace(4, 8, 30)
    curve = pd.DataFrame({"D": d, "loss": laws.power_law(d, 0.1, 20.0, 0.3)})
    res = fit_law(curve, "power", x="D", n_resamples=0, holdout_above=1e7, holdout_axis="D")
    assert res.backtest["axis"] == "D" and res.backtest["n_test"] == int((d > 1e7).sum())
    assert res.backtest["max_abs_rel_error"] < 1e-3
    with pytest.raises(FitError, match="back-tests along C"):
        fit_law(isoflop_runs(seed=2), "isoflop", n_resamples=0, holdout_above=1e8, holdout_axis="N")


def test_at_flops_answers_every_law_that_can_with_intervals():
    for law, runs in (("isoflop", isoflop_runs(seed=11)), ("frontier", chinchilla_runs(seed=11, n=7))):
        res = fit_law(runs, law, n_resamples=20, at_flops=[1e21])
        for q in ("N_opt", "D_opt"):
            iv = res.intervals[f"{q}@1e+21"]
            assert iv.method == "bootstrap" and iv.lo <= res.derived[f"{q}@1e+21"] <= iv.hi
        row = res.tables["compute_optimal"].iloc[0]
        assert row["C"] == 1e21 and row["N_opt_lo"] <= row["N_opt"] <= row["N_opt_hi"]
    assert "loss@1e+21" in res.intervals


def test_fixed_tied_and_weighted_fits():
    truth = dict(CHINCHILLA_TRUE, beta=CHINCHILLA_TRUE["alpha"])
    runs = chinchilla_runs(seed=12, noise=0.002, n=6, params=truth)
    res = fit_law(runs, "chinchilla", starts="coarse", n_resamples=10, fixed={"E": truth["E"]},
                  tie={"beta": "alpha"})
    assert res.params["E"] == truth["E"] and res.params["beta"] == res.params["alpha"]
    assert res.params["alpha"] == pytest.approx(truth["alpha"], abs=0.01)
    assert res.intervals["E"].note == "fixed at this value" and res.method["tie"] == {"beta": "alpha"}
    bad = runs.copy()
    bad.loc[:4, "loss"] *= 1.3
    bad["w"] = np.where(bad.index <= 4, 0.0, 1.0)
    weighted = fit_law(bad, "chinchilla", starts="coarse", n_resamples=0, weight="w")
    assert weighted.selection["weight"] == "w"
    assert weighted.params["alpha"] == pytest.approx(truth["alpha"], abs=0.02)


def test_cli_fix_tie_and_unsupported_intervals(tmp_path, capsys):
    truth = dict(CHINCHILLA_TRUE, beta=CHINCHILLA_TRUE["alpha"])
    path = tmp_path / "tied.csv"
    chinchilla_runs(seed=13, noise=0.002, n=6, params=truth).to_csv(path, index=False)
    code, out, err = run(capsys, "fit", path, "--grid", "coarse", "--bootstrap", 0, "--fix", "E=1.7",
                         "--tie", "beta=alpha", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["params"]["E"] == 1.7 and d["params"]["beta"] == d["params"]["alpha"]
    code, out, err = run(capsys, "fit", path, "--fix", "E", "--bootstrap", 0)
    assert code == 2 and "--fix takes NAME=VALUE" in err
    three = tmp_path / "three.csv"
    three.write_text("C,loss\n1e8,3.1\n1e9,2.8\n1e10,2.75\n")
    code, out, err = run(capsys, "fit", three, "--law", "power", "--bootstrap", 50)
    assert code == 1 and "unsupported" in out and "not supported" in err


def test_outside_minimum_warning_is_stored():
    runs = isoflop_runs(seed=1)
    top = runs["C"] == runs["C"].max()
    runs = runs[~(top & (runs["N"] > runs.loc[top, "N"].sort_values().iloc[2]))]
    res = fit_law(runs, "isoflop", n_resamples=0)
    assert any("minimum lies above the largest model size sampled" in w for w in res.warnings)
    assert "minimum lies above" in json.dumps(res.to_dict()["warnings"])


def test_frontier_takes_a_fixed_offset():
    runs = chinchilla_runs(seed=14, n=8)
    res = fit_law(runs, "frontier", n_resamples=0, fixed={"E": 1.9})
    assert res.params["E"] == 1.9 and res.estimator.get_params()["fixed"] == {"E": 1.9}


def test_auto_picks_the_law_that_extrapolates_and_says_why(tmp_path, capsys):
    """A bend in L(C) (Caballero et al.'s broken power law) is chosen over a plain power law in C."""
    c = np.logspace(14, 22, 40)
    loss = laws.broken_power_law(c, E=1.0, A=300.0, alpha=0.12, x_b=1e18, f=0.5, c=0.25)
    res = fit_law(pd.DataFrame({"C": c, "loss": loss}), "auto", n_resamples=0)
    assert res.law == "broken_power" and res.method["law_selection"]["chosen"] == "broken_power_C"
    assert "law_selection" in res.tables and res.method["law_selection"]["reason"]
    path = tmp_path / "bend.csv"
    pd.DataFrame({"C": c, "loss": loss}).to_csv(path, index=False)
    code, out, err = run(capsys, "fit", path, "--law", "auto", "--bootstrap", 0, "--json")
    assert code == 0, err
    assert json.loads(out)["law"] == "broken_power"


def test_variant_column_through_the_cli(tmp_path, capsys):
    """Two dropout settings, the second worth 2x compute: the CLI reports k near 2 (H4's fit_variants)."""
    c = np.logspace(15, 20, 10)
    rows = [pd.DataFrame({"C": c * k, "loss": laws.power_law(c, 1.5, 3e3, 0.2), "dropout": d})
            for d, k in ((0.0, 1.0), (0.1, 0.5))]               # dropout 0.1 reaches a loss with half the compute
    path = tmp_path / "variants.csv"
    pd.concat(rows).to_csv(path, index=False)
    code, out, err = run(capsys, "fit", path, "--law", "power", "--variant", "dropout", "--bootstrap", 20, "--json")
    assert code == 0, err
    table = json.loads(out)["variant_comparison"]["variants"]
    assert table[1]["variant"] == 0.1 and table[1]["k"] == pytest.approx(2.0, rel=0.05)


def test_a_store_with_two_studies_is_not_pooled(tmp_path, capsys):
    runs = chinchilla_runs(seed=15, n=5)
    both = pd.concat([runs.assign(loss=runs["loss"] * 1.1), runs], ignore_index=True)
    n = len(runs)
    path = store_db(tmp_path / "runs.db", both, [{"seed": 0, "grid": g} for g in ["old-grid"] * n + ["new-grid"] * n],
                    studies=["old-grid"] * n + ["new-grid"] * n)
    code, out, err = run(capsys, "fit", path, "--grid", "coarse", "--bootstrap", 0)
    assert code == 2 and "belong to 2 studies (new-grid, old-grid)" in err and "--study NAME" in err
    code, out, err = run(capsys, "fit", path, "--grid", "coarse", "--bootstrap", 0, "--study", "new-grid", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["selection"]["n_runs"] == len(runs) and d["selection"]["dropped"]["study"] == len(runs)
    code, out, err = run(capsys, "fit", path, "--bootstrap", 0, "--study", "nope")
    assert code == 2 and "holds: new-grid, old-grid" in err
