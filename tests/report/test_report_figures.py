"""The figure data: every number comes from the library's analysis, and the charts are well formed."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest
from report_synthetic import LAW, OLDER, STUDY, best_lr

from scalinglab.errors import ConfigError
from scalinglab.fit import compute_frontier, isoflop_profiles
from scalinglab.report import (
    exponent_table,
    lr_choices,
    report_from_analysis,
    resolve_study,
)
from scalinglab.report.figures import backtest_threshold, fmt_ci, fmt_fraction, fmt_num
from scalinglab.families.mnist.study import analyse_mnist, select_lr, with_config_defaults


def test_default_study_is_the_most_recent(study_db):
    assert resolve_study(study_db) == (STUDY, "mnist_cnn")
    assert resolve_study(study_db, OLDER)[0] == OLDER
    with pytest.raises(ConfigError, match="no study named 'nope'"):
        resolve_study(study_db, "nope")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_study(study_db.parent / "missing.db")


def test_report_analyses_are_the_study_module_analyses(report):
    """The frontier fit and Approach 1 numbers are analyse_mnist's, unchanged."""
    sa = report.analysis
    again = analyse_mnist(sa.runs, n_resamples=sa.settings["n_resamples"])
    assert [d.dropout for d in sa.dropouts] == [0.0, 0.2]
    for mine, theirs in zip(sa.dropouts, again):
        assert mine.frontier.fit["params"] == theirs.fit["params"]
        assert mine.frontier.fit["ci"] == theirs.fit["ci"]
        assert mine.frontier.approach1["estimate"] == theirs.approach1["estimate"]
        assert mine.approach1.a == pytest.approx(theirs.approach1["estimate"]["a"], rel=1e-12)


def test_loss_vs_compute_draws_the_frontier_and_its_law(report):
    fig = report.figure("loss-compute")
    for panel, d in zip(fig.panels, report.analysis.dropouts):
        expected = compute_frontier(d.points)
        assert panel.frontier["run"].tolist() == expected["run"].tolist()
        p = d.frontier.fit["params"]
        c = panel.curve["C"].to_numpy()
        np.testing.assert_allclose(panel.curve["loss"], p["E"] + p["A"] * c ** -p["alpha"], rtol=1e-12)
        assert c.min() == pytest.approx(d.points["C"].min()) and c.max() == pytest.approx(d.points["C"].max())
        # the band comes from the very resamples behind the reported interval, and brackets the fit
        s = d.fit_samples[d.fit_samples["converged"]]
        lo, hi = np.percentile(s["alpha"], [2.5, 97.5])
        assert [lo, hi] == pytest.approx(d.frontier.fit["ci"]["alpha"], rel=1e-12)
        c_lo, c_fit, c_hi = (panel.curve[k] for k in ("lo", "loss", "hi"))
        assert ((c_lo <= c_fit * (1 + 1e-6)) & (c_fit <= c_hi * (1 + 1e-6))).mean() > 0.9
    chart = fig.chart()
    legend = [s.name for s in chart.legend()]
    alpha = report.analysis.dropouts[0].frontier.fit["params"]["alpha"]
    assert any(f"α = {alpha:.3f}" in name for name in legend), legend
    assert {f"width {w}" for w in report.analysis.dropouts[0].points["width"]} <= set(legend)


def test_compute_optimal_table_compares_dropout_settings(report):
    fig = report.figure("compute-optimal")
    table = fig.exponents
    assert set(table["dropout"]) == {0.0, 0.2}
    for d in report.analysis.dropouts:
        row = table[(table["dropout"] == d.dropout) & (table["quantity"] == "a")
                    & table["method"].str.startswith("Approach 1")].iloc[0]
        assert row["estimate"] == d.frontier.approach1["estimate"]["a"]
        assert [row["lo"], row["hi"]] == list(d.frontier.approach1["ci"]["a"])
        chin = table[(table["dropout"] == d.dropout) & table["method"].str.startswith("Approach 3")
                     & (table["quantity"] == "a")].iloc[0]
        assert chin["estimate"] == d.chinchilla.summary["derived"]["a"]
    rendered = fig.chart().tables[0]
    assert rendered.columns[-2:] == ("no dropout", "dropout 0.2")
    assert len(rendered.rows) == table.groupby(["quantity", "method"]).ngroups


def test_chinchilla_fit_recovers_the_synthetic_law(report):
    """The no-dropout runs follow L = E + A/N^alpha + B/D^beta at their best LR, with 1% noise."""
    ch = report.analysis.dropouts[0].chinchilla
    assert ch.fit is not None and ch.backtest is not None
    assert ch.fit.alpha_ == pytest.approx(LAW["alpha"], abs=0.08)
    assert ch.fit.beta_ == pytest.approx(LAW["beta"], abs=0.08)
    assert ch.backtest.summary["mean_abs_rel_error"] < 0.05
    panel = report.figure("chinchilla").panels[0]
    held = panel.backtest
    assert (held["C"] > panel.threshold).all()
    assert panel.threshold == backtest_threshold(report.analysis.dropouts[0].points["C"])
    np.testing.assert_allclose(np.exp(panel.points["residual"]) * panel.points["predicted"], panel.points["loss"])


def test_isoflop_budgets_are_formed_as_the_fit_cli_forms_them(report):
    fig = report.figure("isoflop")
    assert "0.05 decades" in fig.how
    for panel, d in zip(fig.panels, report.analysis.dropouts):
        plain = isoflop_profiles(d.points)  # group_budgets inside, the same default tolerance
        assert panel.profiles["N_opt"].tolist() == pytest.approx(plain.profiles["N_opt"].tolist(), nan_ok=True)
        assert (panel.profiles["inside"]).sum() >= 2 and np.isfinite(panel.a)
        for i, r in panel.profiles[panel.profiles["N_opt"].notna()].iterrows():
            members = panel.runs[panel.runs["profile"] == i]
            assert np.ptp(np.log10(members["C"])) < 0.05 * len(members)
            curve = panel.parabolas[panel.parabolas["profile"] == i]
            assert curve["N"].min() == pytest.approx(members["N"].min())  # drawn over the sampled sizes
            if r["inside"]:
                assert curve["loss"].min() == pytest.approx(r["loss_opt"], rel=1e-3)


def test_lr_figure_shows_the_selected_learning_rates(report):
    fig = report.figure("lr-choices")
    chosen = select_lr(with_config_defaults(report.analysis.runs))
    expected = chosen[["width", "fraction", "dropout", "lr"]].drop_duplicates()
    merged = fig.chosen.merge(expected, on=["width", "fraction", "dropout"], suffixes=("", "_lib"))
    assert len(merged) == len(fig.chosen) == 60 and (merged["lr"] == merged["lr_lib"]).all()
    full = fig.chosen[fig.chosen["fraction"] == 1.0]
    assert all(r["lr"] == best_lr(r["width"]) for _, r in full.iterrows())  # the synthetic optimum
    one_lr = dataclasses.replace(report.analysis, runs=report.analysis.runs[report.analysis.runs["lr"] == 0.1])
    assert lr_choices(one_lr) is None


def test_lr_figure_is_missing_with_a_reason_when_not_tuned(report):
    sa = report.analysis
    runs = sa.runs[sa.runs["lr"] == 0.1]
    one_lr = dataclasses.replace(sa, runs=runs, chosen=select_lr(runs))
    again = report_from_analysis(one_lr)
    assert "lr-choices" not in [f.key for f in again.figures]
    assert "--lr tune" in again.missing["lr-choices"]


def test_training_curves_are_the_frontier_runs(report):
    fig = report.figure("training-curves")
    for d in report.analysis.dropouts:
        mine = fig.curves[fig.curves["dropout"] == d.dropout]
        assert set(mine["run"]) == set(d.frontier.frontier["run"])
        ends = mine.groupby("run")["C"].max()
        front = d.frontier.frontier.set_index("run")["C"]
        np.testing.assert_allclose(ends.loc[front.index], front, rtol=1e-9)


def test_summary_quotes_the_fitted_numbers(report):
    s = report.summary
    assert len(s.findings) == 2 and s.comparison.startswith("Dropout:")
    for text, d in zip(s.findings, report.analysis.dropouts):
        p = d.frontier.fit["params"]
        assert f"C^−{p['alpha']:.3f}" in text
        lo, hi = d.frontier.approach1["ci"]["a"]
        assert f"{round(lo, 2) + 0.0:.2f} to {round(hi, 2) + 0.0:.2f}" in text
    assert len(s.allocation.rows) == 4
    assert any("seeds per setting" in u for u in s.uncertain)


def test_exponent_table_rows_have_intervals(report):
    table = exponent_table(report.analysis)
    assert table[["estimate", "lo", "hi"]].notna().all().all()
    assert ((table["lo"] <= table["estimate"] + 1e-12) & (table["estimate"] <= table["hi"] + 1e-12)).all()


def test_every_chart_is_well_formed(report):
    charts = report.charts()
    assert [c.key for c in charts] == ["loss-compute", "accuracy-compute", "compute-optimal", "kaplan-views",
                                       "isoflop", "chinchilla", "lr-choices", "training-curves"]
    for chart in charts:
        assert chart.panels and chart.question.endswith("?")
        for panel in chart.panels:
            for s in panel.series:
                assert len(s.x) == len(s.y), (chart.key, s.name)
                assert re.fullmatch(r"#[0-9a-f]{6}", s.color), s.color
                if s.tips is not None and s.kind == "points":
                    assert len(s.tips) == len(s.x)
                if s.kind == "band" or s.lo is not None:
                    assert len(s.lo) == len(s.hi) == len(s.x)
        names = [s.name for s in chart.legend()]
        assert len(names) == len(set(names))


def test_number_formats():
    assert fmt_num(60912) == "60,900" and fmt_num(5.33e12) == "5.33e12" and fmt_num(0.04125) == "0.0413"
    assert fmt_num(float("nan")) == "—"
    assert fmt_ci(0.3897, (0.29, -7e-17), decimals=3) == "0.390 [0.290, 0.000]"
    assert fmt_ci(0.39, (None, None)) == "0.39"
    assert [fmt_fraction(f) for f in (1.0, 0.5, 1 / 64, 0.3)] == ["1", "1/2", "1/64", "0.3"]


def test_points_frame_is_what_the_study_module_computes(report):
    d = report.analysis.dropouts[0]
    assert isinstance(d.points, pd.DataFrame)
    assert {"run", "width", "fraction", "N", "D", "C", "loss", "loss_sd", "acc", "lr", "n_seeds"} <= set(d.points)
    assert (d.points["n_seeds"] == 2).all()
