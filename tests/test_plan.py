"""The run planner on a synthetic Chinchilla law whose answers are known."""

import json

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import ConfigError, FitError
from scalinglab.studies.plan import plan_runs

TRUTH = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)   # Hoffmann et al. 2022, eq. 10
FAST = {"n_resamples": 100, "fit_options": {"starts": "coarse"}}


def law(n, d):
    return TRUTH["E"] + TRUTH["A"] * n ** -TRUTH["alpha"] + TRUTH["B"] * d ** -TRUTH["beta"]


def true_n_opt(flops):
    a, b, al, be = TRUTH["A"], TRUTH["B"], TRUTH["alpha"], TRUTH["beta"]
    g = (al * a / (be * b)) ** (1 / (al + be))
    return g * (flops / 6) ** (be / (al + be))


def grid_points(n_values, d_values, sigma=0.01, seed=1):
    rng = np.random.default_rng(seed)
    pts = pd.DataFrame([(n, d) for n in n_values for d in d_values], columns=["N", "D"])
    pts["loss"] = law(pts.N, pts.D) * np.exp(sigma * rng.standard_normal(len(pts)))
    return pts


@pytest.fixture(scope="module")
def points():
    return grid_points(np.geomspace(1e7, 1e9, 4), np.geomspace(1e8, 1e11, 4))


def test_loss_question_prefers_runs_near_the_optimum_of_the_target_budget(points):
    flops = 1e18
    n_opt = true_n_opt(flops)
    sizes = n_opt * np.logspace(-1, 1, 5)                   # one IsoFLOP curve: equal cost, N over two decades
    cand = pd.DataFrame({"N": sizes, "D": flops / (6 * sizes), "cost_flops": flops})
    plan = plan_runs(points, question="loss", target_flops=flops, budget_flops=flops, candidates=cand, **FAST)
    assert len(plan.table) == 1
    chosen = plan.table["N"].iloc[0]
    assert abs(np.log10(chosen / n_opt)) <= 0.5 + 1e-9      # not the far ends of the curve
    assert plan.expected_width < plan.current_width
    assert plan.current[0] < law(n_opt, flops / (6 * n_opt)) < plan.current[1]


def test_plan_stays_in_budget_and_never_repeats_a_run(points):
    budget = 5e18
    plan = plan_runs(points, question="a", target_flops=1e21, budget_flops=budget, seeds=(0, 1), **FAST)
    assert 0 < plan.spent_flops <= budget
    runs = list(zip(plan.table.N, plan.table.D, plan.table.seed))
    assert len(set(runs)) == len(runs)
    existing = set(zip(points.N, points.D))
    assert not any((n, d) in existing and s == 0 for n, d, s in runs)   # seed 0 of a measured setting is done
    assert (np.diff(plan.table["expected_width"]) <= 1e-12).all()
    assert plan.table["expected_width"].iloc[-1] < plan.current_width
    assert "6 N D" in " ".join(plan.notes)
    assert json.loads(json.dumps(plan.to_dict()))["runs"][0]["cost_flops"] == plan.table["cost_flops"].iloc[0]


def test_a_budget_below_the_cheapest_run_is_refused(points):
    cand = pd.DataFrame({"N": [1e8], "D": [1e9], "cost_flops": [6e17]})
    with pytest.raises(ConfigError, match="below the cheapest candidate run.*raise --budget-flops"):
        plan_runs(points, question="a", target_flops=1e21, budget_flops=1e17, candidates=cand, **FAST)


def test_a_table_without_d_cannot_answer(points):
    with pytest.raises(FitError, match="needs every run's N, D and loss"):
        plan_runs(points.drop(columns="D"), question="n_opt", target_flops=1e21, budget_flops=1e20, **FAST)


def test_unknown_question_and_too_few_settings_are_refused(points):
    with pytest.raises(ConfigError, match="question 'b' is unknown"):
        plan_runs(points, question="b", target_flops=1e21, budget_flops=1e20)
    with pytest.raises(FitError, match="seed design of at least 7"):
        plan_runs(points.iloc[:5], question="a", target_flops=1e21, budget_flops=1e20, **FAST)


def test_cli_plan_prints_json_and_refuses_a_small_budget(points, tmp_path, capsys):
    from scalinglab.cli import main

    path = tmp_path / "runs.csv"
    points.to_csv(path, index=False)
    before = path.read_bytes()
    assert main(["plan", str(path), "--target-flops", "1e21", "--budget-flops", "3e18", "--question", "n_opt",
                 "--json", "--bootstrap", "100"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["quantity"] == "N_opt@1e+21" and out["runs"] and out["spent_flops"] <= 3e18
    assert main(["plan", str(path), "--target-flops", "1e21", "--budget-flops", "1"]) == 2
    assert "raise --budget-flops" in capsys.readouterr().err
    assert path.read_bytes() == before
