"""The study analysis: one group per variant, every number a fit_law result, and a summary that quotes them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import N_RESAMPLES
from report_synthetic import LAW, LM_LAW, STUDY, TOY_LAW

from scalinglab.errors import ConfigError
from scalinglab.fit.fitting import fit_law
from scalinglab.studies.analysis import analyse_study, backtest_split
from scalinglab.studies.load import load_study


def test_groups_follow_the_variant_keys(report, lm_report, toy_report):
    assert [g.variant for g in report.analysis.groups] == [{"dropout": 0.0}, {"dropout": 0.2}]
    assert [g.label for g in report.analysis.groups] == ["dropout 0", "dropout 0.2"]
    assert report.analysis.tuned == {"lr": 2}
    for r in (lm_report, toy_report):
        assert [g.label for g in r.analysis.groups] == ["all runs"] and r.analysis.tuned == {}
    assert toy_report.analysis.setting_keys == ("hidden", "samples")


def test_every_fit_is_the_fit_law_result_on_the_group_points(report):
    """Same points, same call: identical estimates and intervals (no second implementation to drift)."""
    g = report.analysis.groups[1]
    common = dict(n_resamples=N_RESAMPLES, level=0.95, random_state=0)
    at = {"at_flops": (g.at_flops,)}
    for name, law, extra in (("frontier", "frontier", {}), ("isoflop", "isoflop", at),
                             ("chinchilla", "chinchilla", {"starts": "coarse", "holdout_above": g.holdout_above, **at})):
        again = fit_law(g.points, law, **common, **extra)
        mine = g.fits[name]
        assert mine.params == again.params and mine.derived == again.derived
        assert {k: v.to_dict() for k, v in mine.intervals.items()} == \
            {k: v.to_dict() for k, v in again.intervals.items()}
    assert g.fits["chinchilla"].backtest == fit_law(g.points, "chinchilla", starts="coarse",
                                                    holdout_above=g.holdout_above, **at, **common).backtest


def test_isoflop_d_opt_is_the_runs_own_data_at_the_minimum(report):
    """MNIST's FLOPs per example are 19-108x 6N: D_opt must come from the runs' examples, and b is not 1 - a."""
    for g in report.analysis.groups:
        fit = g.fits["isoflop"]
        prof = fit.tables["profiles"]
        member = fit.estimator.run_profile
        checked = 0
        for i, r in prof[prof["N_opt"].notna()].iterrows():
            runs = g.points[member == i]
            slope, icpt = np.polyfit(np.log(runs["N"]), np.log(runs["D"]), 1)
            assert r["D_opt"] == pytest.approx(np.exp(icpt + slope * np.log(r["N_opt"])), rel=1e-9)
            if r["inside"]:  # inside the sampled sizes, D_opt lies between the budget's data sizes
                assert runs["D"].min() <= r["D_opt"] <= runs["D"].max()
                assert r["C"] / (6 * r["N_opt"] * r["D_opt"]) > 10  # the C/6N shortcut would be far off
                checked += 1
        assert checked >= 2
        used = prof[prof["N_opt"].notna() & prof["inside"]]
        b = np.polyfit(np.log(used["C"]), np.log(used["D_opt"]), 1)[0]
        assert fit.value("b") == pytest.approx(b, rel=1e-9)
        assert abs(fit.value("b") - (1 - fit.value("a"))) > 0.05


def test_lm_isoflop_uses_the_stored_tokens(lm_report):
    fit = lm_report.analysis.groups[0].fits["isoflop"]
    prof = fit.tables["profiles"]
    assert prof["inside"].all() and len(prof) == 4
    # each budget's runs have D = C / (FLOPs per token); D_opt sits among them
    for i, r in prof.iterrows():
        runs = lm_report.analysis.groups[0].points[fit.estimator.run_profile == i]
        assert runs["D"].min() <= r["D_opt"] <= runs["D"].max()


@pytest.mark.parametrize("which,law", [("report", LAW), ("lm_report", LM_LAW), ("toy_report", TOY_LAW)])
def test_chinchilla_recovers_the_synthetic_law(which, law, request):
    g = request.getfixturevalue(which).analysis.groups[0]
    p = g.fits["chinchilla"].params
    assert p["alpha"] == pytest.approx(law["alpha"], abs=0.08)
    assert p["beta"] == pytest.approx(law["beta"], abs=0.08)
    bt = g.fits["chinchilla"].backtest
    assert bt["holdout_above"] == backtest_split(g.points["C"]) and bt["mean_abs_rel_error"] < 0.05


def test_backtest_split_holds_out_the_costliest_fifth():
    c = np.arange(1, 21, dtype=float)
    assert backtest_split(c) == 16.0
    assert backtest_split(c[:9]) is None  # 9 - 2 held out leaves 7 < 8 to fit


def test_summary_quotes_the_fitted_numbers(report, lm_report):
    s = report.summary
    assert len(s.findings) == 2 and s.comparison.startswith("Comparing variants fitted separately:")
    assert "One joint chinchilla fit with the exponents and E shared across dropout" in s.comparison
    for text, g in zip(s.findings, report.analysis.groups):
        assert f"C^−{g.fits['frontier'].params['alpha']:.3f}" in text
        iv = g.fits["approach1"].intervals["a"]
        assert f"{round(iv.lo, 2) + 0.0:.2f} to {round(iv.hi, 2) + 0.0:.2f}" in text
    assert len(s.allocation) == 4
    assert any("seeds per setting" in u for u in s.uncertain)
    # the text the CLI prints is the same summary
    text = report.analysis.summary_text([p for f in report.figures for p in getattr(f, "findings", ())])
    assert text == s.text() and all(p.split()[0] in text for p in s.findings)
    # a family's findings (LM: noise scale, forecasts) join the summary
    assert any(p.startswith("Gradient noise scale") for p in lm_report.summary.findings)


def test_analysis_json_holds_every_fit(report):
    d = report.analysis.to_dict()
    g = d["groups"][0]
    assert set(g["fits"]) == {"frontier", "approach1", "isoflop", "chinchilla", "error_rate"}
    assert g["fits"]["frontier"] == report.analysis.groups[0].fits["frontier"].to_dict()
    assert d["settings"]["n_resamples"] == N_RESAMPLES and d["tuned"] == {"lr": 2}


def test_a_database_with_several_studies_needs_a_name(study_db):
    with pytest.raises(ConfigError, match="holds 4 studies; choose one with --study"):
        load_study(study_db)
    with pytest.raises(ConfigError, match="at least 2 resamples"):
        analyse_study(load_study(study_db, STUDY), n_resamples=1)


def test_importing_the_report_loads_no_torch():
    code = ("import sys, scalinglab.report, scalinglab.fit, scalinglab.studies.analysis, "
            "scalinglab.families.mnist.report, scalinglab.families.lm.report; "
            "bad = [m for m in ('torch', 'scalinglab.sweep.engine') if m in sys.modules]; "
            "assert not bad, bad")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
