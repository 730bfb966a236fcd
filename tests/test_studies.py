"""The one study pipeline: any family (an object, a module:attribute, a preset), its design, points and CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cli_helpers import scalinglab_cmd
from scalinglab.cli import main
from scalinglab.errors import ConfigError
from scalinglab.store import RunStore, run_key
from scalinglab.studies.design import Design, grid_configs, read_design_file
from scalinglab.studies.load import load_study
from scalinglab.studies.pipeline import sweep_study
from scalinglab.studies.points import study_points
from scalinglab.sweep.engine import run_sweep
from scalinglab.sweep.family import RunResult

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY_MLP = """[study]
seeds = [0]
[grid]
hidden = [4, 8, 16]
examples = [128, 256, 512]
"""


class ToyFamily:
    """A power law in (size, data) with seed noise, as a user might write for a test; no training."""

    name = "toy_law"
    tuned_keys = ("lr",)

    def cost(self, config):
        if config["size"] <= 0:
            raise ConfigError("size must be positive")
        return 6.0 * config["size"] * config["data"]

    def data_key(self, config):
        return None

    def load_data(self, config):
        return None

    def train(self, config, data):
        if config.get("explode"):
            raise RuntimeError("this run fails on purpose")
        n, d = config["size"], config["data"]
        lr_penalty = abs(config.get("lr", 1.0) - 1.0)
        loss = 1.0 + 50 * n ** -0.5 + 80 * d ** -0.4 + lr_penalty + 0.001 * config.get("seed", 0)
        return RunResult(params=n, flops=6.0 * n * d, examples=d, val_loss=loss)


TOY = ToyFamily()


def toy_design(**grid) -> Design:
    grid = grid or {"size": [100, 1000, 10000], "data": [1000, 10000]}
    return Design(configs=grid_configs(grid, seeds=(0, 1)))


def test_a_family_object_is_swept_and_its_declared_name_keys_the_runs(tmp_path):
    with RunStore(tmp_path / "runs.db") as store:
        summary = run_sweep(store, "toy", TOY, toy_design().configs, workers=0, progress=False)
        runs = store.runs(study="toy")
        studies = store.studies()
    assert summary.ran == 12 and summary.failed == 0
    config = {"size": 100, "data": 1000, "seed": 0}
    assert run_key("toy_law", config) in set(runs["key"])  # keyed by Family.name, not by where it lives
    assert set(runs["family"]) == {"toy_law"} and list(studies["family"]) == ["toy_law"]
    # the same family reached as module:attribute (tests/ is on sys.path) gives the same keys: nothing re-runs
    with RunStore(tmp_path / "runs.db") as store:
        again = run_sweep(store, "toy", "test_studies:TOY", toy_design().configs, workers=0, progress=False)
    assert again.ran == 0 and again.skipped == 12


def test_a_family_worker_processes_cannot_import_is_refused_unless_in_process(tmp_path):
    class Local(ToyFamily):
        name = "local_toy"

    with RunStore(tmp_path / "runs.db") as store:
        with pytest.raises(ConfigError, match="cannot import it"):
            run_sweep(store, "t", Local(), toy_design().configs, workers=2, progress=False)
        assert run_sweep(store, "t", Local(), toy_design().configs, workers=0, progress=False).ran == 12


def test_an_object_that_is_not_a_family_gets_a_clear_error(tmp_path):
    with RunStore(tmp_path / "runs.db") as store, pytest.raises(ConfigError, match="lacks name, cost, data_key"):
        run_sweep(store, "t", object(), [{"a": 1}], workers=0, progress=False)


def test_a_changed_design_is_a_new_study_and_refused_under_an_old_name(tmp_path):
    db = tmp_path / "runs.db"
    a, _ = sweep_study(TOY, toy_design(), db=db, workers=0, progress=False)
    b, second = sweep_study(TOY, toy_design(size=[100, 1000], data=[1000]), db=db, workers=0, progress=False)
    assert a != b and second.ran == 0  # its runs were finished under the first study: reused, not retrained
    with pytest.raises(ConfigError, match="another design"):
        sweep_study(TOY, toy_design(size=[100], data=[1000]), db=db, name=a, workers=0, progress=False)
    assert len(load_study(db, a).points) == 6 and len(load_study(db, b).points) == 2


def test_points_keep_the_best_tuned_value_and_average_seeds(tmp_path):
    db = tmp_path / "runs.db"
    design = Design(configs=grid_configs({"size": [100, 1000], "data": [1000], "lr": [0.5, 1.0, 2.0]},
                                         seeds=(0, 1, 2)), tuned_keys=("lr",))
    name, _ = sweep_study(TOY, design, db=db, workers=0, progress=False)
    study = load_study(db, name)
    pts = study.points
    assert len(pts) == 2 and (pts["lr"] == 1.0).all() and (pts["n_seeds"] == 3).all()
    assert set(study.setting_keys) == {"size"}  # data is the same for every run: not a setting key
    expected = 1.0 + 50 * 100 ** -0.5 + 80 * 1000 ** -0.4 + 0.001  # mean of seeds 0, 1, 2
    assert pts.loc[pts["N"] == 100, "loss"].item() == pytest.approx(expected)


def test_a_config_key_named_like_a_result_column_still_defines_settings():
    """The example MLP's config says how many `examples` to train on; that column is also a result."""
    runs = pd.DataFrame({"hidden": [4, 4, 8, 8], "examples": [10, 20, 10, 20], "seed": 0, "status": "complete",
                         "params": [1, 1, 2, 2], "flops": [1.0, 2, 3, 4], "val_loss": [4.0, 3, 2, 1],
                         "val_acc": None, "key": list("abcd"), "metrics": [{}] * 4})
    assert len(study_points(runs, config_keys=["hidden", "examples", "seed"])) == 4
    assert len(study_points(runs)) == 2  # without the config keys the collision hides a setting key


def test_failed_runs_make_the_study_exit_non_zero(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    design = tmp_path / "d.toml"
    design.write_text('[grid]\nsize = [100, 1000, 10000]\ndata = [1000, 10000, 100000]\n'
                      '[[runs]]\nsize = 100\ndata = 100\nexplode = true\n')
    code = main(["study", "--family", "test_studies:TOY", "--config", str(design), "--db", str(tmp_path / "r.db"),
                 "--out", str(tmp_path / "out"), "--workers", "0", "--quiet", "--no-report", "--bootstrap", "20"])
    out = capsys.readouterr()
    assert code == 1 and "1 failed" in out.out and "fails on purpose" in out.err
    assert (tmp_path / "out" / "analysis.json").exists()  # the 9 good runs were still analysed


@pytest.mark.parametrize("text, message", [
    ("", "has no [grid] table and no [[runs]]"),
    ("[grid]\nsize = []\n", "non-empty list"),
    ("[grid]\nsize = [1, 1]\n", "lists a value twice"),
    ("[gird]\nsize = [1]\n", "unknown section 'gird'"),
    ("[study]\nseeds = [1180591620717411303424]\n[grid]\nsize = [1]\n", "seeds must be"),
    ("[study]\nvariants = ['dropout']\n[grid]\nsize = [1]\ndata = [1]\n", "'dropout' is named as a variant"),
])
def test_bad_design_files_are_refused_with_one_line(tmp_path, text, message):
    path = tmp_path / "d.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        read_design_file(path, TOY)


@pytest.mark.parametrize("args, message", [
    (["sweep", "mnist", "--config", "EMPTY"], "is empty"),
    (["sweep", "mnist", "--widths", "4", "--fractions", "1", "--data", "/no/such/folder"], "data = '/no/such/folder'"),
    (["sweep", "mnist", "--widths", "4", "--fractions", "1", "--seeds", str(2 ** 70)], "seed = "),
    (["sweep", "mnist", "--widths", "4", "--fractions", "1", "--address", "127.0.0.1:6379"], "add --executor ray"),
    (["study", "--family", "no_such_module:FAMILY", "--config", "d.toml"], "cannot import family module"),
    (["study", "--config", "d.toml"], "give a family"),
    (["sweep", "--family", "mnist_cnn"], "needs --config"),
])
def test_bad_sweep_input_is_refused_before_any_run_is_registered(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EMPTY").write_text("")
    (tmp_path / "d.toml").write_text("[grid]\nsize = [1]\n")
    assert main([*args, "--db", "runs.db"] if args[0] == "sweep" and "--family" not in args else args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    if (tmp_path / "runs.db").exists():
        with RunStore(tmp_path / "runs.db") as store:
            assert store.runs().empty


def test_the_example_family_is_swept_fitted_and_reported_from_the_cli(tmp_path):
    """examples/mlp_family.py, written outside the package, through sweep, study, fit and report."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")])}
    (tmp_path / "design.toml").write_text(TINY_MLP)
    common = ["--family", "mlp_family:FAMILY", "--config", "design.toml", "--db", "mlp.db", "--workers", "0",
              "--quiet"]

    def run(*args):
        out = subprocess.run(scalinglab_cmd(*args), cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "9 runs trained" in run("sweep", *common)
    text = run("study", *common, "--out", "study", "--bootstrap", "20")
    assert "0 runs trained, 9 already finished" in text and "compute-efficient frontier" in text
    analysis = json.loads((tmp_path / "study" / "analysis.json").read_text())
    assert analysis["family"] == "example_mlp" and analysis["groups"][0]["n_points"] == 9
    assert (tmp_path / "study" / "report.html").exists()
    with RunStore(tmp_path / "mlp.db") as store:
        (name,) = store.studies()["name"]
        info = store.study_info(name)
    assert info["family_spec"] == "mlp_family:FAMILY" and name.startswith("example_mlp-")
    # the report renders again later from the database alone, by the same code path
    run("report", "--db", "mlp.db", "--study", name, "--out", "again")
    assert (tmp_path / "again" / "report.html").exists()


def test_import_scalinglab_is_light_and_every_public_name_resolves():
    code = ("import sys, scalinglab as sl\n"
            "assert 'torch' not in sys.modules\n"
            "missing = [n for n in sl.__all__ if not hasattr(sl, n)]\n"
            "assert not missing, missing\n"
            "print(sl.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() and out.stdout.strip() != "0+unknown"
