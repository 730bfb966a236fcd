"""The LM study: designs, the analysis on synthetic runs, and the smoke study through the CLI."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from scalinglab.errors import ConfigError
from scalinglab.families.lm.study import (LMStudyPreset, _size_facts, approach2, design, get_preset,
                                 isoflop_sizes, noise_vs_loss)


def test_isoflop_design_gives_every_run_of_a_budget_the_same_compute():
    preset = get_preset("quick", {"precision": "fp32"})
    configs = design(preset)
    assert len(configs) == len(preset.budgets) * preset.per_budget
    for budget in preset.budgets:
        sizes = isoflop_sizes(preset, budget)
        assert len(sizes) == preset.per_budget
        for size in sizes:
            cfg = next(c for c in configs if c["size"] == size and
                       math.isclose(c["tokens"] * _size_facts(size, preset.run)[2], budget, rel_tol=1e-5))
            assert cfg["precision"] == "fp32" and cfg["context"] == 128
    # Sizes climb with the budget, and each budget's middle size sees about the centre tokens per parameter.
    mids = [isoflop_sizes(preset, b)[preset.per_budget // 2] for b in preset.budgets]
    n_mid = [_size_facts(s, preset.run)[0] for s in mids]
    assert n_mid == sorted(n_mid)
    for b, s in zip(preset.budgets, mids):
        n, _, fpt = _size_facts(s, preset.run)
        assert preset.centre_tokens_per_param / 4 < b / fpt / n < preset.centre_tokens_per_param * 4


def test_grid_design_and_preset_validation():
    grid = LMStudyPreset(name="g", sizes=("d32-l1",), grid_sizes=("d32-l1", "d64-l2"),
                         grid_tokens=(1e5, 2e5, 4e5), run={"context": 64})
    configs = design(grid)
    assert {(c["size"], c["tokens"]) for c in configs} == {(s, t) for s in ("d32-l1", "d64-l2")
                                                             for t in (1e5, 2e5, 4e5)}
    with pytest.raises(ConfigError, match="unknown size"):
        LMStudyPreset(name="x", sizes=("d9-l9",), budgets=(1e12,))
    with pytest.raises(ConfigError, match="per_budget"):
        LMStudyPreset(name="x", sizes=("d32-l1", "d48-l1"), budgets=(1e12,), per_budget=3)
    with pytest.raises(ConfigError, match="batch_size"):
        LMStudyPreset(name="x", sizes=("d32-l1",), grid_sizes=("d32-l1",), grid_tokens=(1e5,),
                      run={"batch_size": 0})
    with pytest.raises(ConfigError, match="unknown LM study preset"):
        get_preset("medium")


def _synthetic_isoflop(a_true=0.5, tpp=20.0, budgets=(1e12, 1e13, 1e14)):
    """Runs whose loss is a parabola in log N around N_opt = k C^a, with D = C / (6 N)."""
    rows = []
    for c in budgets:
        n_opt = math.sqrt(c / (6 * tpp)) * (c / 1e13) ** (a_true - 0.5)
        for n in n_opt * np.geomspace(0.25, 4, 5):
            rows.append({"budget": c, "N": n, "N_ne": 0.8 * n, "D": c / (6 * n), "C": c,
                         "loss": 3.0 - 0.1 * math.log10(c) + 0.2 * math.log(n / n_opt) ** 2})
    return pd.DataFrame(rows)


def test_approach2_recovers_a_known_allocation():
    res = approach2(_synthetic_isoflop(a_true=0.6), n_col="N")
    assert res["a"] == pytest.approx(0.6, abs=1e-6)
    assert res["b"] == pytest.approx(0.4, abs=1e-6)  # D = C / 6N, so b = 1 - a
    prof = res["profiles"]
    assert prof["inside"].all()
    mid = prof.iloc[1]
    assert mid["tokens_per_param"] == pytest.approx(20.0, rel=1e-6)


def test_noise_scale_slope_against_loss():
    frame = pd.DataFrame([{"size": "s", "run": "r", "noise_curve": [[t, loss, 1e6 * loss ** -4.0]
                                                                     for t, loss in zip(range(1, 41),
                                                                                        np.linspace(5, 3, 40))]}])
    res = noise_vs_loss(frame)
    assert res["slope"] == pytest.approx(-4.0, abs=1e-9) and res["alpha_B"] == pytest.approx(0.25)
    assert res["n_points"] == 36  # the first 10% of the run is warmup, left out of the fit


def test_smoke_study_through_the_cli(tmp_path):
    db, out = tmp_path / "runs.db", tmp_path / "out"
    cmd = [sys.executable, "-m", "scalinglab", "study", "lm", "--preset", "smoke", "--db", str(db),
           "--out", str(out), "--workers", "2", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "IsoFLOP minima" in proc.stdout and "Approach 3" in proc.stdout
    report = json.loads((out / "lm_study.json").read_text())
    n_runs = len(design(get_preset("smoke")))
    assert len(report["runs"]) == n_runs
    for run in report["runs"]:
        assert run["C"] == pytest.approx(run["budget"], rel=0.1)  # whole steps round the budget slightly
        assert run["N"] > run["N_ne"] > 0 and np.isfinite(run["loss"])
    assert (out / "lm_isoflop.png").stat().st_size > 0 and (out / "lm_noise_scale.png").exists()
    # The same schema as the MNIST study: family 'lm' rows in the shared runs table.
    from scalinglab.store import RunStore

    with RunStore(db) as store:
        runs = store.runs(status="complete", family="lm")
        assert len(runs) == n_runs
        assert {"params_total", "params_non_embedding", "flops_6nd", "noise_scale", "lr"} <= set(runs["metrics"][0])
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=240)  # resumes: nothing to train
    assert again.returncode == 0 and f"0 runs trained, {n_runs} already finished" in again.stdout
