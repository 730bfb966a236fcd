"""The figure data: generic figures from the fits and points, family extras through the hook, well-formed charts."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from report_synthetic import LM_STUDY, best_lr

from scalinglab.fit.fitting import fit_law
from scalinglab.fit.frontier import compute_frontier
from scalinglab.report import family_hook
from scalinglab.report.figures import is_grid
from scalinglab.studies.analysis import fmt_interval, fmt_num

GENERIC = ["loss-compute", "error-rate", "compute-optimal", "loss-n-d", "isoflop", "chinchilla", "law-selection",
           "training-curves"]


def test_each_study_gets_the_figures_its_data_allows(report, lm_report, toy_report):
    assert [f.key for f in report.figures] == [*GENERIC[:-1], "variants", GENERIC[-1], "lr-choices", "dropout-effect"]
    assert report.missing == {}
    assert [f.key for f in lm_report.figures] == [k for k in GENERIC if k != "loss-n-d"] + [
        "isoflop-counts", "noise-scale", "forecasts"]
    assert "not an N x D grid" in lm_report.missing["loss-n-d"]
    assert [f.key for f in toy_report.figures] == ["loss-compute", "compute-optimal", "loss-n-d", "isoflop",
                                                   "chinchilla", "law-selection"]
    assert set(toy_report.missing) == {"error-rate", "training-curves"}


def test_legends_name_sizes_by_the_setting_key_that_stands_for_them(report, lm_report, toy_report):
    def legend(r):
        return [s.name for s in r.figure("loss-compute").chart().legend()]
    assert "width 4" in legend(report) and "size d16-l1" in legend(lm_report) and "hidden 8" in legend(toy_report)


def test_loss_vs_compute_draws_the_frontier_and_its_law(report):
    fig = report.figure("loss-compute")
    for panel, g in zip(fig.panels, report.analysis.groups):
        assert panel.frontier["run"].tolist() == compute_frontier(g.points)["run"].tolist()
        p = g.fits["frontier"].params
        c = panel.curve["C"].to_numpy()
        np.testing.assert_allclose(panel.curve["loss"], p["E"] + p["A"] * c ** -p["alpha"], rtol=1e-12)
        assert c.min() == pytest.approx(g.points["C"].min()) and c.max() == pytest.approx(g.points["C"].max())
        # the band comes from the resamples behind the reported interval, and brackets the fit
        s = g.fits["frontier"].samples
        lo, hi = np.percentile(s.loc[s["converged"], "alpha"], [2.5, 97.5])
        iv = g.fits["frontier"].intervals["alpha"]
        assert [lo, hi] == pytest.approx([iv.lo, iv.hi], rel=1e-12)
        inside = (panel.curve["lo"] <= panel.curve["loss"] * (1 + 1e-6)) & \
                 (panel.curve["loss"] <= panel.curve["hi"] * (1 + 1e-6))
        assert inside.mean() > 0.9
    legend = [s.name for s in fig.chart().legend()]
    assert any(fmt_interval(report.analysis.groups[0].fits["frontier"].intervals["alpha"]) in n for n in legend)


def test_compute_optimal_table_reads_the_fit_results(report):
    fig = report.figure("compute-optimal")
    table = fig.exponents
    for g in report.analysis.groups:
        for method, fit in (("Approach 1", "approach1"), ("Approach 3", "chinchilla")):
            row = table[(table["group"] == g.label) & (table["quantity"] == "a")
                        & table["method"].str.startswith(method)].iloc[0]
            assert row["estimate"] == g.fits[fit].value("a")
        panel = fig.panels[report.analysis.groups.index(g)]
        assert panel.isoflop["D_opt"].tolist() == g.fits["isoflop"].tables["profiles"].query("inside")["D_opt"].tolist()
    rendered = fig.chart().tables[0]
    assert rendered.columns[-2:] == ("dropout 0", "dropout 0.2")
    assert len(rendered.rows) == table.groupby(["quantity", "method"]).ngroups


def test_isoflop_parabolas_are_the_profiles_drawn_over_the_sampled_sizes(report):
    fig = report.figure("isoflop")
    for panel in fig.panels:
        prof = panel.fit.tables["profiles"]
        for i, r in prof[prof["N_opt"].notna()].iterrows():
            members = panel.points[panel.points["profile"] == i]
            assert np.ptp(np.log10(members["C"])) < 0.05 * len(members)
            curve = panel.parabolas[panel.parabolas["profile"] == i]
            assert curve["N"].min() == pytest.approx(members["N"].min())
            if r["inside"]:
                assert curve["loss"].min() == pytest.approx(r["loss_opt"], rel=1e-3)


def test_chinchilla_residuals_and_backtest(report):
    panel = report.figure("chinchilla").panels[0]
    np.testing.assert_allclose(np.exp(panel.points["residual"]) * panel.points["predicted"], panel.points["loss"])
    np.testing.assert_allclose(panel.points["predicted"], panel.fit.estimator.predict(panel.points))
    assert (panel.backtest["C"] > panel.fit.backtest["holdout_above"]).all()
    assert len(panel.backtest) == panel.fit.backtest["n_test"]


def test_training_curves_are_the_frontier_settings(report):
    fig = report.figure("training-curves")
    for g in report.analysis.groups:
        mine = fig.curves[fig.curves["group"] == g.label]
        front = compute_frontier(g.points).set_index("run")["C"]
        assert set(mine["run"]) == set(front.index)
        np.testing.assert_allclose(mine.groupby("run")["C"].max().loc[front.index], front, rtol=1e-9)


def test_grid_detection():
    import pandas as pd

    grid = pd.DataFrame({"N": [1, 1, 2, 2], "D": [1, 2, 1, 2]})
    assert is_grid(grid) and not is_grid(pd.DataFrame({"N": [1, 2, 3], "D": [3, 2, 1]}))


# ----------------------------------------------------------------- MNIST extras

def test_lr_figure_shows_the_selected_learning_rates(report):
    fig = report.figure("lr-choices")
    assert len(fig.chosen) == 60
    merged = fig.chosen.merge(report.study.points[["width", "fraction", "dropout", "lr"]],
                              on=["width", "fraction", "dropout"], suffixes=("", "_points"))
    assert (merged["lr"] == merged["lr_points"]).all()
    full = fig.chosen[fig.chosen["fraction"] == 1.0]
    assert all(r["lr"] == best_lr(r["width"]) for _, r in full.iterrows())  # the synthetic optimum


def test_dropout_effect_compares_each_setting_with_its_dropout_free_twin(report):
    fig = report.figure("dropout-effect")
    base = report.analysis.groups[0].points.set_index(["width", "fraction"])["loss"]
    r = fig.ratio.set_index(["width", "fraction"])
    np.testing.assert_allclose(r["ratio"], r["loss"] / base.loc[r.index].to_numpy())
    # the synthetic dropout penalty is 1 + 0.6 * 0.2 / sqrt(width): larger for narrow models
    by_width = fig.ratio.groupby("width")["ratio"].median()
    assert by_width.iloc[0] > by_width.iloc[-1] > 1


# ----------------------------------------------------------------- LM extras

def test_lm_non_embedding_isoflop_is_the_fit_cli_with_n_column(lm_report):
    fig = lm_report.figure("isoflop-counts")
    label, total, ne = fig.fits[0]
    g = lm_report.analysis.groups[0]
    assert total is g.fits["isoflop"]
    again = fit_law(g.points, "isoflop", columns={"n": "params_non_embedding"}, n_resamples=40)
    assert ne.derived == again.derived
    assert ne.value("a") > total.value("a")  # embeddings are a big share of small models' N
    assert any("non-embedding" in f for f in lm_report.summary.findings)


def test_lm_noise_scale_slope_recovers_the_synthetic_power(lm_report):
    fig = lm_report.figure("noise-scale")
    assert fig.slope == pytest.approx(-4.8, abs=0.1) and fig.alpha_b == pytest.approx(0.21, abs=0.01)
    assert fig.points["fit"].sum() < len(fig.points)  # the warmup segments are left out


def test_lm_forecasts_cover_every_run(lm_report):
    fig = lm_report.figure("forecasts")
    assert len(fig.forecasts) == 20 and fig.forecasts["predicted"].notna().all()
    np.testing.assert_allclose(fig.forecasts["rel_error"],
                               (fig.forecasts["predicted"] - fig.forecasts["actual"]) / fig.forecasts["actual"])


# ----------------------------------------------------------------- the hook

def test_the_hook_is_found_on_a_user_family_object(tmp_path, monkeypatch, lm_report):
    (tmp_path / "my_family_mod.py").write_text(
        "class Fam:\n    name = 'mine'\n    def cost(self, c): return 1.0\n    def data_key(self, c): return 0\n"
        "    def load_data(self, c): return None\n    def train(self, c, d): return None\n"
        "    def report_extras(self, study, analysis): return ['called', study.name]\n"
        "FAMILY = Fam()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    study = lm_report.study
    monkeypatch.setitem(study.info, "family_spec", "my_family_mod:FAMILY")
    hook = family_hook(study)
    assert hook(study, lm_report.analysis) == ["called", LM_STUDY]
    monkeypatch.setitem(study.info, "family_spec", "no_such_module_xyz:FAMILY")
    assert family_hook(study) is None
    sys.modules.pop("my_family_mod", None)


# ----------------------------------------------------------------- charts

@pytest.mark.parametrize("which", ["report", "lm_report", "toy_report"])
def test_every_chart_is_well_formed(which, request):
    charts = request.getfixturevalue(which).charts()
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
    from scalinglab.fit.result import Interval

    assert fmt_interval(Interval(0.3897, lo=0.29, hi=-7e-17, method="bootstrap")) == "0.390 [0.290, 0.000]"
    assert fmt_interval(Interval(0.39, lo=0.3, hi=0.5, supported=False)) == "0.390"
    from scalinglab.families.mnist.report import fmt_fraction

    assert [fmt_fraction(f) for f in (1.0, 0.5, 1 / 64, 0.3)] == ["1", "1/2", "1/64", "0.3"]
