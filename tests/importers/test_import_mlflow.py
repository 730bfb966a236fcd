"""`scalinglab import mlflow`: real stores written with mlflow.log_metric, file and SQLite backends."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3

import numpy as np
import pytest
from import_sources import ALPHA, SIZES, assert_one_line_errors, curve_points, fitted_alpha, log_mlflow_runs, mlflow_at

from scalinglab.cli import main
from scalinglab.errors import DataError, StoreError
from scalinglab.importers import ImportMapping, import_runs, read_mlflow
from scalinglab.store import RunStore

pytest.importorskip("mlflow")


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("backend", ["file", "sqlite"])
def test_import_then_fit_recovers_the_logged_exponent(backend, mlflow_stores, tmp_path, capsys):
    db = tmp_path / "runs.db"
    assert main(["import", "mlflow", mlflow_stores[backend], "--db", str(db), "--study", "mlf"]) == 0
    out = capsys.readouterr().out
    assert "6 run(s) added" in out and "N <- params.n_params" in out and "C derived as 6 N D" in out
    with RunStore(db) as store:
        runs = store.runs(study="mlf")
    assert sorted(runs["params"]) == [int(n) for n in SIZES]
    assert (runs["status"] == "complete").all()
    assert (runs["flops"] == 6 * runs["params"] * runs["examples"]).all()
    assert runs["val_acc"].between(0.5, 0.6).all()
    smallest = runs.loc[runs["params"].idxmin()]
    np.testing.assert_allclose(smallest["curve"], curve_points(SIZES[0]), rtol=1e-6)
    assert sorted(runs["seed"]) == [0, 0, 0, 1, 1, 1]
    assert fitted_alpha(db, "mlf") == pytest.approx(ALPHA, abs=0.02)


def test_the_fit_command_fits_one_imported_study(mlflow_stores, tmp_path, capsys):
    """Both backends imported as two studies of one database; `fit --where` picks one."""
    db = tmp_path / "runs.db"
    for backend in ("sqlite", "file"):
        assert main(["import", "mlflow", mlflow_stores[backend], "--db", str(db), "--study", backend]) == 0
    capsys.readouterr()
    assert main(["fit", str(db), "--law", "power", "--bootstrap", "0", "--json", "--where", "study == 'file'"]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert fit["params"]["alpha"] == pytest.approx(ALPHA, abs=0.02)


def test_reimport_adds_only_new_runs_and_never_touches_finished_ones(mlflow_stores, tmp_path):
    src = tmp_path / "mlruns"
    shutil.copytree(mlflow_stores["file"].removeprefix("file://"), src)
    db = tmp_path / "runs.db"
    first = import_runs(db, read_mlflow(src), study="grow")
    assert len(first.added) == 6 and first.already == 0
    with RunStore(db) as store:
        before = store.runs(study="grow").set_index("key")
    again = import_runs(db, read_mlflow(src), study="grow")
    assert again.added == [] and again.already == 6

    log_mlflow_runs(src.as_uri(), "sweep", (1e8, 3e8), first=6)      # the experiment grows
    grown = import_runs(db, read_mlflow(src), study="grow")
    assert len(grown.added) == 2 and grown.already == 6
    with RunStore(db) as store:
        after = store.runs(study="grow").set_index("key")
    assert len(after) == 8
    cols = ["source_id", "params", "examples", "flops", "val_loss", "curve", "finished"]
    assert after.loc[before.index, cols].equals(before[cols])
    assert sorted(after.loc[grown.added, "params"]) == [int(1e8), int(3e8)]


def test_another_mapping_into_the_same_study_is_refused(mlflow_stores, tmp_path):
    db = tmp_path / "runs.db"
    import_runs(db, read_mlflow(mlflow_stores["sqlite"]), study="mlf")
    other = read_mlflow(mlflow_stores["sqlite"], mapping=ImportMapping({"loss": "metrics.train_loss"}))
    with pytest.raises(StoreError, match="another mapping; import into a new --study"):
        import_runs(db, other, study="mlf")
    assert len(import_runs(db, other, study="mlf-train-loss").added) == 6


def test_unfinished_runs_are_skipped_with_a_note(tmp_path):
    uri = (tmp_path / "mlruns").as_uri()
    log_mlflow_runs(uri, "sweep", SIZES[:3])
    with mlflow_at(uri) as mlflow:
        client = mlflow.tracking.MlflowClient(uri)
        run = client.create_run(client.get_experiment_by_name("sweep").experiment_id)  # still RUNNING
        client.log_metric(run.info.run_id, "val_loss", 2.5)
    records = read_mlflow(tmp_path / "mlruns")
    assert len(records) == 3
    assert any("not FINISHED (RUNNING)" in n for n in records.notes)


def test_bad_inputs_are_one_line_errors(mlflow_stores, tmp_path, capsys):
    db = str(tmp_path / "runs.db")
    uri = mlflow_stores["sqlite"]
    cases = [
        ([str(tmp_path / "nope"), "--db", db, "--study", "s"], "no MLflow store at"),
        ([f"sqlite:///{tmp_path / 'nope.db'}", "--db", db, "--study", "s"], "no MLflow database at"),
        ([uri, "--db", db, "--study", "s", "--experiment", "missing"], "no experiment named 'missing'"),
        ([uri, "--db", db, "--study", "s", "--map", "loss=metrics.val_los"], "'metrics.val_los' (given with --map loss="),
        ([uri, "--db", db, "--study", "s", "--map", "N=params.width"], "is in no run"),
        ([uri, "--db", db, "--study", "s", "--map", "curve=metrics.nope"], "metric history 'metrics.nope'"),
        ([uri, "--db", db, "--study", "s", "--map", "X=params.lr"], "unknown mapping key 'X'"),
        ([uri, "--db", db, "--study", "s", "--map", "N"], "is not KEY=FIELD"),
        ([uri, "--db", db, "--study", "s", "--map", "N=params.lr", "--map", "loss=tags.none"], "is in no run"),
        ([uri, "--db", str(tmp_path / "no" / "runs.db"), "--study", "s"], "does not exist"),
        ([uri, "--db", db, "--study", "s", "--map", "loss=params.lr", "--map", "N=metrics.val_acc",
          "--map", "D=tags.x"], "is in no run"),
    ]
    assert_one_line_errors(capsys, ["import", "mlflow"], cases)
    assert not (tmp_path / "nope").exists() and not (tmp_path / "nope.db").exists()


def test_a_store_without_any_loss_metric_is_refused(tmp_path):
    with mlflow_at((tmp_path / "mlruns").as_uri()) as mlflow:
        mlflow.set_experiment("sweep")
        with mlflow.start_run():
            mlflow.log_param("n_params", 1000)
            mlflow.log_metric("throughput", 5.0)
    with pytest.raises(DataError, match="no loss field .* name it with --map loss=FIELD"):
        read_mlflow(tmp_path / "mlruns")


def test_foreign_files_are_refused_and_left_unchanged(mlflow_stores, tmp_path):
    foreign = tmp_path / "other.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    ours = tmp_path / "runs.db"
    RunStore(ours).close()
    for path in (foreign, ours):
        before = digest(path)
        with pytest.raises(DataError, match="not an MLflow store"):
            read_mlflow(f"sqlite:///{path}")
        with pytest.raises(DataError, match="not an MLflow store"):
            read_mlflow(path)
        assert digest(path) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="not an MLflow file store"):
        read_mlflow(empty)
    assert list(empty.iterdir()) == []


def test_several_experiments_need_a_choice(tmp_path):
    uri = (tmp_path / "mlruns").as_uri()
    log_mlflow_runs(uri, "a", SIZES[:2])
    log_mlflow_runs(uri, "b", SIZES[2:4])
    with pytest.raises(DataError, match=r"2 experiments with runs \(.*\); choose one with --experiment"):
        read_mlflow(tmp_path / "mlruns")
    assert sorted(r[1]["params"] for r in read_mlflow(tmp_path / "mlruns", experiment="b")) == [int(1e6), int(3e6)]
