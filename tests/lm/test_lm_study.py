"""The LM study: designs, and the smoke study through the one study pipeline and its CLI."""

import json
import math
import subprocess
import sys

import pytest

from scalinglab.errors import ConfigError
from scalinglab.families.lm.study import LMStudyPreset, _size_facts, design, get_preset, isoflop_sizes


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


def test_smoke_study_through_the_cli(tmp_path):
    db, out = tmp_path / "runs.db", tmp_path / "out"
    cmd = [sys.executable, "-m", "scalinglab", "study", "lm", "--preset", "smoke", "--db", str(db),
           "--out", str(out), "--workers", "2", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "IsoFLOP" in proc.stdout and "Chinchilla law" in proc.stdout
    analysis = json.loads((out / "analysis.json").read_text())
    n_runs = len(design(get_preset("smoke")))
    (group,) = analysis["groups"]
    assert group["n_points"] == n_runs and analysis["family"] == "lm"
    iso = group["fits"]["isoflop"]
    for profile in iso["tables"]["profiles"]:  # every budget's runs cost the same C, up to whole steps
        assert profile["n_runs"] == 3
    assert (out / "report.html").stat().st_size > 0
    # The same schema as the MNIST study: family 'lm' rows in the shared runs table.
    from scalinglab.store import RunStore

    with RunStore(db) as store:
        runs = store.runs(status="complete", family="lm")
        assert len(runs) == n_runs
        assert {"params_total", "params_non_embedding", "flops_6nd", "noise_scale", "lr"} <= set(runs["metrics"][0])
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=240)  # resumes: nothing to train
    assert again.returncode == 0 and f"0 runs trained, {n_runs} already finished" in again.stdout
