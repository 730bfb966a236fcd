"""Adaptive studies on a synthetic-law family: rounds recorded, budget kept, resume after SIGKILL."""

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scalinglab.errors import ConfigError
from scalinglab.sweep.family import RunResult

TRUTH = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
N_VALUES = [1e7, 1e8, 1e9]
D_VALUES = [1e8, 1e9, 1e10]


class SyntheticLaw:
    """Runs that report the Chinchilla law's loss with 1% seeded noise; each finished run appends its config
    to the file ``log`` names, so a test can count how often every run trained. ``SYNTHETIC_SLEEP_S`` in the
    environment makes every run take that long (time to kill a study mid-round)."""

    name = "synthetic_law"

    def cost(self, config):
        return 6.0 * config["n"] * config["d"]

    def size(self, config):
        return config["n"], config["d"]

    def data_key(self, config):
        return None

    def load_data(self, config):
        return None

    def train(self, config, data):
        time.sleep(float(os.environ.get("SYNTHETIC_SLEEP_S", 0)))
        n, d = config["n"], config["d"]
        noise = np.random.default_rng([config["seed"], int(np.log10(n) * 100), int(np.log10(d) * 100)])
        loss = (TRUTH["E"] + TRUTH["A"] * n ** -TRUTH["alpha"] + TRUTH["B"] * d ** -TRUTH["beta"]) \
            * np.exp(0.01 * noise.standard_normal())
        with open(config["log"], "a") as f:
            f.write(f"{n:g} {d:g} {config['seed']}\n")
        return RunResult(params=int(n), flops=6.0 * n * d, examples=int(d), val_loss=float(loss))


FAMILY = SyntheticLaw()


def setup(log: str):
    from scalinglab.studies.design import family_design
    from scalinglab.studies.plan import family_candidates

    base = {"log": log}
    seed = family_design(FAMILY, [{**base, "n": round(n), "d": round(d), "seed": 0} for n in N_VALUES
                                  for d in D_VALUES])
    configs = [{**base, "n": round(n), "d": round(d)} for n in np.geomspace(1e7, 1e9, 5)
               for d in np.geomspace(1e8, 1e10, 5)]
    cand = family_candidates(FAMILY, configs, size=lambda c: (c["n"], c["d"]))
    return seed, cand


SETTINGS = dict(question="a", target_flops=1e21, budget_flops=1e20, runs_per_round=3, max_rounds=3,
                n_resamples=60, fit_options={"starts": "coarse"}, workers=0, progress=False)


def run(db: str, log: str):
    from scalinglab.studies.adaptive import run_adaptive_study

    seed, cand = setup(log)
    return run_adaptive_study("test_adaptive:FAMILY", seed, cand, db=db, name="adaptive", **SETTINGS)


def trained(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_rounds_are_recorded_and_stay_in_budget(tmp_path):
    from scalinglab.store import RunStore

    db, log = str(tmp_path / "runs.db"), tmp_path / "train.log"
    result = run(db, str(log))
    rounds = result.rounds
    assert rounds[0]["why"] == "seed design" and len(rounds[0]["runs"]) == 9
    assert 2 <= len(rounds) <= 4 and all(r["status"] == "done" for r in rounds)
    assert result.spent_flops <= SETTINGS["budget_flops"]
    assert all(len(r["why"]) == len(r["runs"]) for r in rounds[1:])
    assert all(np.isfinite(r["width"]) and r["lo"] < r["estimate"] < r["hi"] for r in rounds)
    with RunStore(db, readonly=True) as store:
        info = store.study_info("adaptive")["adaptive"]
        assert store.status_counts("adaptive") == {"complete": sum(len(r["runs"]) for r in rounds)}
    assert info["rounds"] == rounds and info["stopped"] == result.stopped
    assert len(trained(log)) == len(set(trained(log))) == sum(len(r["runs"]) for r in rounds)
    again = run(db, str(log))                      # a finished study re-run trains nothing and plans nothing new
    assert again.rounds == rounds and len(trained(log)) == sum(len(r["runs"]) for r in rounds)
    with pytest.raises(ConfigError, match="other settings"):
        from scalinglab.studies.adaptive import run_adaptive_study

        seed, cand = setup(str(log))
        run_adaptive_study("test_adaptive:FAMILY", seed, cand, db=db, name="adaptive",
                           **{**SETTINGS, "budget_flops": 2e20})


def test_seed_design_over_budget_is_refused(tmp_path):
    from scalinglab.studies.adaptive import run_adaptive_study

    seed, cand = setup(str(tmp_path / "log"))
    with pytest.raises(ConfigError, match="seed design alone costs"):
        run_adaptive_study(FAMILY, seed, cand, db=str(tmp_path / "runs.db"), name="x",
                           **{**SETTINGS, "budget_flops": 1e18})
    assert not (tmp_path / "runs.db").exists()


def test_resume_after_sigkill_loses_and_repeats_no_run(tmp_path, cli_env):
    from cli_helpers import kill_after_completions

    db, log = tmp_path / "runs.db", tmp_path / "train.log"
    tests = str(Path(__file__).parent)
    env = {**cli_env, "PYTHONPATH": os.pathsep.join([tests, cli_env.get("PYTHONPATH", "")]),
           "SYNTHETIC_SLEEP_S": "0.3"}
    script = f"import test_adaptive as t; t.run({str(db)!r}, {str(log)!r})"
    done = kill_after_completions([sys.executable, "-c", script], db, env, runs=10, timeout=120)
    assert done >= 10                               # killed inside round 1, after the seed design
    before = trained(log)
    result = run(str(db), str(log))
    after = trained(log)
    assert after[:len(before)] == before and len(after) == len(set(after))     # nothing trained twice
    planned = [(c["n"], c["d"], c["seed"]) for r in result.rounds for c in r["runs"]]
    assert sorted(after) == sorted(f"{n:g} {d:g} {s}" for n, d, s in planned)   # nothing lost
    fresh = run(str(tmp_path / "fresh.db"), str(tmp_path / "fresh.log"))
    assert [[(c["n"], c["d"], c["seed"]) for c in r["runs"]] for r in fresh.rounds] == \
        [[(c["n"], c["d"], c["seed"]) for c in r["runs"]] for r in result.rounds]   # the same rounds


def test_cli_plan_reads_a_study_of_a_run_store(tmp_path, capsys):
    import json

    from scalinglab.cli import main

    db = str(tmp_path / "runs.db")
    run(db, str(tmp_path / "train.log"))
    assert main(["plan", db, "--study", "adaptive", "--target-flops", "1e21", "--budget-flops", "1e19",
                 "--runs", "2", "--json", "--bootstrap", "60"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan["runs"]) == 2 and plan["notes"][0].startswith("study adaptive (synthetic_law)")
    assert main(["plan", db, "--study", "nope", "--target-flops", "1e21", "--budget-flops", "1e19"]) == 2
    assert "no study named 'nope'" in capsys.readouterr().err


def test_the_report_of_an_adaptive_study_shows_its_rounds(tmp_path):
    from scalinglab.report import build_report

    db = str(tmp_path / "runs.db")
    result = run(db, str(tmp_path / "train.log"))
    report = build_report(db, "adaptive", n_resamples=20)
    fig = report.figure("adaptive-rounds")
    done = [r for r in result.rounds if r["status"] == "done"]
    chart = fig.chart()
    widths = chart.panels[0].series[0].y
    assert len(widths) == len(done) and list(widths) == [r["width"] for r in done]
    assert [row[0] for row in chart.tables[0].rows] == [str(r["round"]) for r in done]


def _design_file(tmp_path) -> Path:
    grid = ", ".join(str(round(n)) for n in np.geomspace(1e7, 1e9, 5)), \
        ", ".join(str(round(d)) for d in np.geomspace(1e8, 1e10, 5))
    path = tmp_path / "design.toml"
    path.write_text(f"[grid]\nn = [{grid[0]}]\nd = [{grid[1]}]\n[fixed]\nlog = {str(tmp_path / 'log')!r}\n")
    return path


def test_any_family_with_a_size_method_runs_an_adaptive_study_from_the_cli(tmp_path, monkeypatch, capsys):
    from scalinglab.cli import main
    from scalinglab.store import RunStore

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    db = tmp_path / "runs.db"
    code = main(["study", "--family", "test_adaptive:FAMILY", "--config", str(_design_file(tmp_path)),
                 "--adaptive", "--target-flops", "1e21", "--budget-flops", "1e20", "--runs-per-round", "3",
                 "--max-rounds", "2", "--db", str(db), "--workers", "0", "--quiet", "--no-report"])
    assert code == 0, capsys.readouterr().err
    with RunStore(db, readonly=True) as store:
        (name,) = store.studies()["name"]
        rounds = store.study_info(name)["adaptive"]["rounds"]
    corners = {(c["n"], c["d"]) for c in rounds[0]["runs"]}
    assert len(corners) == 9 and {(10 ** 7, 10 ** 8), (10 ** 9, 10 ** 10)} <= corners  # the grid's corners
    assert len(rounds) >= 2 and len(rounds[1]["runs"]) <= 3


def test_an_adaptive_study_needs_the_family_to_size_its_runs(tmp_path, monkeypatch, capsys):
    from scalinglab.cli import main

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.delattr(SyntheticLaw, "size")
    code = main(["study", "--family", "test_adaptive:FAMILY", "--config", str(_design_file(tmp_path)),
                 "--adaptive", "--target-flops", "1e21", "--budget-flops", "1e20", "--db", str(tmp_path / "r.db"),
                 "--workers", "0", "--quiet", "--no-report"])
    assert code == 2 and "has no size(config)" in capsys.readouterr().err
