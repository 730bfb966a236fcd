"""LM studies through the one study pipeline: WSD trunks and branches as phases, points at full-run compute,
the data-constrained law beside Chinchilla when runs repeat data, and allocation with limited unique data."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from scalinglab.core import laws
from scalinglab.errors import ConfigError
from scalinglab.families.lm.train import FAMILY
from scalinglab.families.lm.wsd import wsd_isoflop_design
from scalinglab.store import RunStore
from scalinglab.studies.analysis import analyse_study
from scalinglab.studies.design import Design, family_design
from scalinglab.studies.load import load_study
from scalinglab.studies.pipeline import run_study, sweep_study

SEQ = 4 * 16  # batch_size x context of the tiny runs


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Shared settings of tiny fp32 runs on a word-salad corpus (bytes tokens)."""
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SCALINGLAB_CHECKPOINT_DIR", raising=False)
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
    (tmp_path / "corpus.txt").write_text("\n".join(" ".join(rng.choice(words, 8)) + "." for _ in range(120)))
    return {"context": 16, "batch_size": 4, "tokenizer": "bytes", "noise_splits": 2, "second_eval": "",
            "corpus": str(tmp_path / "corpus.txt"), "eval_tokens": 512, "precision": "fp32"}


# ------------------------------------------------------------------ WSD study through run_study

def test_wsd_study_runs_trunks_then_branches_and_reads_full_run_compute(tiny, tmp_path):
    cosine = [{**tiny, "size": size, "tokens": float(n * SEQ), "seed": 0}
              for size in ("d16-l1", "d24-l1") for n in (10, 20, 40)]
    wsd = wsd_isoflop_design(cosine, cooldown=0.2)
    design = family_design(FAMILY, [], phases=[wsd.trunks, wsd.branches], description={"schedule": "wsd"})
    db = tmp_path / "runs.db"
    result = run_study(FAMILY, design, db=db, name="wsd", out=tmp_path / "out", workers=0, progress=False,
                       n_resamples=10)
    assert result.exit_code == 0 and result.sweep.ran == 8 and result.sweep.phases == 2
    assert (tmp_path / "runs.db.ckpt").is_dir()  # the family's sweep_context put the checkpoints beside the db
    study = load_study(db, "wsd")
    # Points: one per branch (trunks dropped), C = the compute of the one-piece run each branch stands for.
    assert len(study.points) == 6 and len(study.runs) == 8
    from scalinglab.families.lm.model import flops_per_token

    for _, p in study.points.iterrows():
        fpt = flops_per_token(FAMILY.config({**tiny, "size": p["size"], "tokens": 1}).model_config())["train"]
        assert p["C"] == pytest.approx(fpt * p["D"], rel=1e-12)
    assert set(study.setting_keys) == {"size", "tokens"}  # where a run started is no part of its setting
    # The study's cost counts each trunk once plus the cooldowns; the points' runs alone would cost more.
    cost = study.cost
    assert cost["flops_spent"] == pytest.approx(study.runs["flops"].sum())
    assert cost["flops_spent"] < cost["flops_equivalent"] == pytest.approx(study.points["C"].sum())
    analysis = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert analysis["cost"]["flops_spent"] == pytest.approx(cost["flops_spent"])
    assert "Training cost" in result.summary and (tmp_path / "out" / "report.html").exists()
    # `scalinglab fit runs.db` reads the same points through the family's hook: no trunks, full-run C.
    from scalinglab.fit.table import read_table

    table = read_table(db)
    assert len(table) == 6 and sorted(table["flops"]) == pytest.approx(sorted(study.points["C"]))
    # Re-running resumes: nothing to train in either phase.
    again = run_study(FAMILY, design, db=db, name="wsd", out=tmp_path / "out", workers=0, progress=False,
                      n_resamples=10)
    assert again.sweep.ran == 0 and again.sweep.skipped == 8


def test_lm_study_design_with_wsd_schedule():
    from scalinglab.families.lm.study import design as preset_design
    from scalinglab.families.lm.study import get_preset, lm_study_design

    name, d = lm_study_design("smoke", schedule="wsd", cooldown=0.25, cooldown_shape="linear")
    trunks, branches = d.phases
    assert name.startswith("lm-smoke-wsd-") and len(branches) == len(preset_design(get_preset("smoke")))
    assert all(b["cooldown_shape"] == "linear" and b["parent"] for b in branches)
    assert all(t["cooldown"] == 0.0 and t["checkpoint_steps"] for t in trunks)
    assert d.info()["design"]["phases"] == [len(trunks), len(branches)]
    assert lm_study_design("smoke")[0] != name
    with pytest.raises(ConfigError, match="schedule"):
        lm_study_design("smoke", schedule="step")
    with pytest.raises(ConfigError, match="cooldown"):
        lm_study_design("smoke", schedule="wsd", cooldown=1.5)


def test_cli_refuses_cooldown_without_wsd(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scalinglab", "study", "lm", "--preset", "smoke", "--cooldown",
                           "0.3", "--db", str(tmp_path / "r.db")], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "add --schedule wsd" in proc.stderr and "Traceback" not in proc.stderr


class PhasedFamily:
    """A family whose runs need their sweep context, and whose 'bad' runs fail."""

    name = "phased"
    entered: list = []

    def cost(self, config):
        return 1.0

    def data_key(self, config):
        return None

    def load_data(self, config):
        return None

    def sweep_context(self, db):
        import contextlib

        @contextlib.contextmanager
        def ctx():
            self.entered.append(str(db))
            yield
            self.entered.pop()
        return ctx()

    def train(self, config, data):
        from scalinglab.sweep.family import RunResult

        assert self.entered, "trained outside the family's sweep context"
        if config.get("bad"):
            raise RuntimeError("this trunk fails")
        n = config["n"]
        return RunResult(params=n, flops=6.0 * n * 100, examples=100, val_loss=1.0 + 1.0 / n)


def test_later_phases_wait_for_the_earlier_ones(tmp_path):
    fam = PhasedFamily()
    db = tmp_path / "runs.db"
    ok = Design(configs=[], phases=[[{"n": 1}, {"n": 2}], [{"n": 3}, {"n": 4}, {"n": 5}]])
    name, summary = sweep_study(fam, ok, db=db, name="ok", workers=0, progress=False)
    assert (summary.ran, summary.failed, summary.not_started) == (5, 0, 0) and not fam.entered
    bad = Design(configs=[], phases=[[{"n": 1, "bad": True}, {"n": 6}], [{"n": 7}, {"n": 8}]])
    name, summary = sweep_study(fam, bad, db=db, name="bad", workers=0, progress=False)
    assert (summary.ran, summary.failed, summary.not_started) == (1, 1, 2)
    assert "2 runs of a later phase were not started" in summary.describe()
    with RunStore(db) as store:
        assert store.status_counts("bad") == {"complete": 1, "failed": 1}  # the later phase never registered
    with pytest.raises(ConfigError, match="1 runs failed and 1 were not started"):
        run_study(fam, Design(configs=[], phases=[[{"n": 1, "bad": True}], [{"n": 3}]]), db=db, name="worse",
                  out=tmp_path / "o", workers=0, progress=False)
    with pytest.raises(ConfigError, match="phases must hold exactly"):
        Design(configs=[{"n": 1}], phases=[[{"n": 2}]])


def test_ray_actors_get_the_checkpoint_folder(monkeypatch, tmp_path):
    from scalinglab.sweep.executors import MALLOC_ENV
    from scalinglab.sweep.ray_executor import actor_runtime_env

    monkeypatch.delenv("SCALINGLAB_CHECKPOINT_DIR", raising=False)
    assert "SCALINGLAB_CHECKPOINT_DIR" not in actor_runtime_env()["env_vars"]
    with FAMILY.sweep_context(tmp_path / "runs.db") as root:
        assert actor_runtime_env()["env_vars"]["SCALINGLAB_CHECKPOINT_DIR"] == str(root)
        assert MALLOC_ENV.items() <= actor_runtime_env()["env_vars"].items()


# ------------------------------------------------------------------ repeated data

TRUE = dict(E=1.8, A=500.0, B=1500.0, alpha=0.33, beta=0.36, R_D_star=12.0, R_N_star=4.0)


def _repeated_data_study(db, name="repeat", params=TRUE):
    """A stored study of synthetic runs: 4 sizes x 4 budgets x 2 unique-data sizes, many repeating data."""
    rng = np.random.default_rng(1)
    runs = []
    for n in np.logspace(7, 9, 4):
        for d in np.logspace(9, 11, 4):
            for u in (3e8, 3e10):
                loss = float(laws.data_constrained(n, d, u, **params)[0] * np.exp(0.002 * rng.standard_normal()))
                cfg = {"n": float(n), "d": float(d), "u": u, "seed": 0}
                runs.append((cfg, {"params": int(n), "examples": int(d), "flops": 6 * n * d, "val_loss": loss,
                                   "metrics": {"unique_tokens": min(u, d), "epochs": d / min(u, d)}}))
    with RunStore(db) as store:
        store.add_finished_runs(name, "synthetic", runs)


def test_study_that_repeats_data_fits_the_data_constrained_law_beside_chinchilla(tmp_path):
    from scalinglab.report import report_from_analysis

    db = tmp_path / "runs.db"
    _repeated_data_study(db)
    study = load_study(db, "repeat")
    assert {"unique_tokens", "epochs"} <= set(study.points.columns)
    analysis = analyse_study(study, n_resamples=8)
    (g,) = analysis.groups
    dc, ch = g.fits["data_constrained"], g.fits["chinchilla"]
    for k in ("alpha", "beta", "R_D_star", "R_N_star"):
        assert dc.params[k] == pytest.approx(TRUE[k], rel=0.1), k
    # Both laws back-tested on the same held-out settings; the law that knows about repetition wins.
    assert dc.backtest["holdout_above"] == ch.backtest["holdout_above"] == g.holdout_above
    assert dc.backtest["mean_abs_rel_error"] < ch.backtest["mean_abs_rel_error"]
    d = analysis.to_dict()["groups"][0]["fits"]
    assert d["data_constrained"]["backtest"]["n_test"] == d["chinchilla"]["backtest"]["n_test"]
    text = analysis.summary_text()
    assert "data-constrained law of Muennighoff et al." in text and "Repeated data:" in text
    assert any("--law data-constrained --holdout-above" in c for c in g.fit_commands("p.csv", analysis.settings))
    report = report_from_analysis(study, analysis, extras=None)
    captions = [c for c, _, _ in report.summary.tables]
    assert any(c.startswith("Repeated data") for c in captions)


def test_study_without_repetition_has_no_data_constrained_fit(tmp_path):
    db = tmp_path / "runs.db"
    _repeated_data_study(db)
    study = load_study(db, "repeat")
    fresh = study.points[study.points["u"] > 1e10].reset_index(drop=True)  # U >= D everywhere
    from scalinglab.studies.analysis import analyse_group

    g = analyse_group(fresh.assign(unique_tokens=fresh["D"]), {}, n_resamples=4)
    assert "data_constrained" not in g.fits and "data_constrained" not in g.skipped


# ------------------------------------------------------------------ allocate --unique-tokens

def _allocate(*args):
    proc = subprocess.run([sys.executable, "-m", "scalinglab", "allocate", *args, "--json"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_allocate_with_unique_tokens_matches_the_library(tmp_path):
    from scalinglab.fit.allocate import PUBLISHED_LAWS, compute_optimal, law_from_dict
    from scalinglab.fit.fitting import fit_law

    free = _allocate("--law", "muennighoff2023", "--flops", "1e22")
    scarce = _allocate("--law", "muennighoff2023", "--flops", "1e22", "--unique-tokens", "2e9")
    direct = compute_optimal(PUBLISHED_LAWS["muennighoff2023"].law.with_unique_tokens(2e9), 1e22)
    assert scarce["N_opt"] == pytest.approx(direct.N_opt, rel=1e-9)
    assert scarce["epochs"] == pytest.approx(direct.D_opt / 2e9, rel=1e-9)
    # Muennighoff et al. (Sec. 4, Fig. 3): with scarce data the optimum repeats more rather than growing N.
    assert scarce["N_opt"] < free["N_opt"] and scarce["D_opt"] > free["D_opt"]
    # A saved data-constrained fit is a law too, with intervals from its draws.
    db = tmp_path / "runs.db"
    _repeated_data_study(db)
    points = load_study(db, "repeat").points
    fit = fit_law(points, "data-constrained", n_resamples=6)
    saved = tmp_path / "dc.json"
    saved.write_text(json.dumps(fit.to_dict(samples=True)))
    got = _allocate("--law", str(saved), "--flops", "1e21", "--unique-tokens", "1e9")
    want = compute_optimal(law_from_dict(fit.to_dict()).with_unique_tokens(1e9), 1e21)
    assert got["N_opt"] == pytest.approx(want.N_opt, rel=1e-9) and "N_opt" in got["intervals"]
    proc = subprocess.run([sys.executable, "-m", "scalinglab", "allocate", "--law", "hoffmann2022", "--flops",
                           "1e22", "--unique-tokens", "1e9"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "needs a data-constrained law" in proc.stderr


def test_fit_table_reads_unique_tokens_as_u():
    from scalinglab.fit.table import load_runs

    frame = pd.DataFrame({"N": [1e7, 2e7], "D": [1e9, 2e9], "unique_tokens": [1e8, 1e8], "loss": [3.0, 2.9]})
    runs = load_runs(frame, require=("N", "D", "U", "loss"))
    assert runs["U"].tolist() == [1e8, 1e8]
    assert "U" not in load_runs(frame).columns  # only laws that need it get the column


# ------------------------------------------------------------------ transfer through the pipeline

def test_transfer_study_through_the_pipeline(tiny, tmp_path, monkeypatch):
    from scalinglab.data import code
    from scalinglab.families.lm.transfer import TransferPreset, run_transfer_study

    root = tmp_path / "lib"
    for i in range(200):  # a small stand-in for the standard library
        f = root / f"pkg{i % 5}" / f"mod_{i}.py"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"def f_{i}(x):\n    return x * {i} + {i % 7}\n\n\nclass C{i}:\n    pass\n" * 3)
    monkeypatch.setattr(code, "stdlib_root", lambda: root)
    run = {k: v for k, v in tiny.items() if k != "second_eval"} | {"eval_tokens": 256}
    preset = TransferPreset(name="tiny", sizes=("d16-l1", "d24-l1"), pretrain_tokens_per_param=0.3,
                            finetune_tokens=(640.0, 1280.0), scratch_tokens=(640.0, 1280.0, 2560.0, 5120.0),
                            run=run, bootstrap=10)
    db, out = tmp_path / "runs.db", tmp_path / "out"
    result = run_transfer_study(preset, db=db, out=out, workers=0, progress=False)
    assert result.exit_code == 0 and result.sweep.phases == 2 and result.sweep.ran == 14
    with RunStore(db) as store:
        assert list(store.studies()["name"]) == ["lm-transfer-tiny"]
    analysis = json.loads((out / "analysis.json").read_text())
    # Two groups, one per corpus: the fine-tunes are no scaling points, and the corpora are never fitted jointly.
    groups = {g["label"]: g["n_points"] for g in analysis["groups"]}
    assert groups == {"corpus python-stdlib": 8, f"corpus {tiny['corpus']}": 2} and analysis["variants"] is None
    report = json.loads((out / "report.json").read_text())
    assert {"transfer", "two-distributions"} <= set(report["figures"])
    assert any(f.startswith("Transfer") for f in report["summary"]["findings"])  # the fit, or why there is none
    transfer = json.loads((out / "transfer.json").read_text())
    assert len(transfer["effective_data"]) == 4 and transfer["two_distribution"]["n"] == 2
    assert "Effective data transferred" in (out / "report.html").read_text()
