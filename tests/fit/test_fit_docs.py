"""The three tables of docs/fitting.md ("Three tables, one command each"), each fitted with its one command."""

import json
import shlex

import numpy as np
import pandas as pd
import pytest

from fit_synthetic import CHINCHILLA_TRUE, chinchilla_runs, isoflop_runs
from scalinglab.cli import main
from scalinglab.core import laws

DOCS_COMMANDS = {
    "pooled": 'scalinglab fit pooled.csv --law chinchilla --group-by experiment --where "outlier == False" '
              "--grid coarse --bootstrap 20 --json",
    "isoflop": "scalinglab fit isoflop_points.csv --law isoflop --budget budget --isoflop-method akima "
               "--at-flops 1e22 --bootstrap 20 --json",
    "curve": "scalinglab fit curve.csv --law power --x examples --holdout-above 1e7 --holdout-axis x --bootstrap 20 "
             "--json",
}


def test_the_commands_are_the_ones_in_the_docs():
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "docs" / "fitting.md").read_text()
    for cmd in DOCS_COMMANDS.values():
        assert cmd.replace(" --grid coarse", "").replace(" --bootstrap 20", "").replace(" --json", "") in text


def fit(capsys, tmp_path, key):
    argv = shlex.split(DOCS_COMMANDS[key])[1:]
    argv[1] = str(tmp_path / argv[1])
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


def test_pooled_table_with_experiments_and_an_outlier_flag(tmp_path, capsys):
    parts = []
    for name, beta in (("c4", 0.28), ("code", 0.40)):
        runs = chinchilla_runs(seed=len(name), noise=0.002, n=6, params=dict(CHINCHILLA_TRUE, beta=beta))
        runs["experiment"], runs["outlier"] = name, False
        runs.loc[[4, 20], "outlier"], runs.loc[[4, 20], "loss"] = True, runs.loc[[4, 20], "loss"] * 1.4
        parts.append(runs.drop(columns="C"))
    pd.concat(parts).to_csv(tmp_path / "pooled.csv", index=False)
    d, _ = fit(capsys, tmp_path, "pooled")
    assert d["groups"]["c4"]["params"]["beta"] == pytest.approx(0.28, abs=0.02)
    assert d["groups"]["code"]["params"]["beta"] == pytest.approx(0.40, abs=0.02)
    assert d["groups"]["c4"]["selection"]["dropped"]["where"] == 4      # 2 per experiment, before grouping


def test_isoflop_points_with_tokens_and_budgets_but_no_parameter_count(tmp_path, capsys):
    runs = isoflop_runs(seed=21, width=2.0, k=9)
    runs.assign(budget=runs["C"], tokens=runs["D"])[["budget", "tokens", "loss"]].to_csv(
        tmp_path / "isoflop_points.csv", index=False)
    d, _ = fit(capsys, tmp_path, "isoflop")
    assert d["selection"]["derived"]["N"] == "C / (6 D)"
    true_a = CHINCHILLA_TRUE["beta"] / (CHINCHILLA_TRUE["alpha"] + CHINCHILLA_TRUE["beta"])
    assert d["derived"]["a"] == pytest.approx(true_a, abs=0.02)
    assert d["intervals"]["N_opt@1e+22"]["method"] == "bootstrap"


def test_learning_curve_loss_against_examples(tmp_path, capsys):
    examples = np.logspace(4, 8, 40)
    rng = np.random.default_rng(0)
    pd.DataFrame({"examples": examples, "loss": laws.power_law(examples, 0.05, 30.0, 0.35)
                  * np.exp(0.002 * rng.standard_normal(40))}).to_csv(tmp_path / "curve.csv", index=False)
    d, _ = fit(capsys, tmp_path, "curve")
    assert d["params"]["alpha"] == pytest.approx(0.35, abs=0.02)
    assert d["backtest"]["axis"] == "examples" and d["backtest"]["mean_abs_rel_error"] < 0.01
