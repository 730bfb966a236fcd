"""`scalinglab import table`: W&B-style runs-table CSVs, wandb.Api() dumps and history files."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from import_sources import ALPHA, assert_one_line_errors, SIZES, curve_points, final_loss, fitted_alpha

from scalinglab.cli import main
from scalinglab.importers import ImportMapping, import_runs, read_table_export
from scalinglab.store import RunStore


def wandb_ui_table(path, *, crashed: bool = True) -> None:
    """The columns of the W&B UI's runs-table CSV export: run columns, then config and summary keys."""
    rows = [{"Name": f"run-{i}", "State": "finished", "Notes": "-", "User": "me", "Tags": "", "Runtime": 60 + i,
             "Sweep": "", "lr": 3e-4, "n_params": int(n), "tokens": int(20 * n), "optimizer": "adam",
             "_step": 4, "train_loss": curve_points(n)[-1][1], "val_loss": final_loss(n, i)}
            for i, n in enumerate(SIZES)]
    if crashed:
        rows.append({**rows[0], "Name": "run-crashed", "State": "crashed", "val_loss": 9.0})
    pd.DataFrame(rows).to_csv(path, index=False)


def panel_history(path) -> None:
    """The W&B line-plot CSV export: Step, then '<run> - <metric>' columns with __MIN/__MAX companions."""
    steps = sorted({s for n in SIZES for s, _ in curve_points(n)})
    table = {"Step": steps}
    for i, n in enumerate(SIZES):
        values = dict(curve_points(n))
        col = [values.get(s, np.nan) for s in steps]
        table[f"run-{i} - train_loss"] = col
        table[f"run-{i} - train_loss__MIN"] = col
        table[f"run-{i} - train_loss__MAX"] = col
    pd.DataFrame(table).to_csv(path, index=False)


def test_wandb_ui_csv_with_panel_history(tmp_path, capsys):
    wandb_ui_table(tmp_path / "runs.csv")
    panel_history(tmp_path / "history.csv")
    db = tmp_path / "runs.db"
    assert main(["import", "table", str(tmp_path / "runs.csv"), "--history", str(tmp_path / "history.csv"),
                 "--db", str(db), "--study", "wb", "--group", "optimizer"]) == 0
    out = capsys.readouterr().out
    assert "6 run(s) added" in out and "whose State is not finished (crashed)" in out
    with RunStore(db) as store:
        runs = store.runs(study="wb").sort_values("params")
    assert list(runs["name"]) == [f"run-{i}" for i in range(6)] and (runs["optimizer"] == "adam").all()
    assert list(runs["wall_s"]) == [60 + i for i in range(6)]
    np.testing.assert_allclose(runs["curve"].iloc[0], curve_points(SIZES[0]), rtol=1e-9)
    assert fitted_alpha(db, "wb") == pytest.approx(ALPHA, abs=0.02)
    assert main(["import", "table", str(tmp_path / "runs.csv"), "--history", str(tmp_path / "history.csv"),
                 "--db", str(db), "--study", "wb", "--group", "optimizer"]) == 0
    assert "0 run(s) added, 6 already stored" in capsys.readouterr().out


def api_runs(with_history: bool):
    """What `for run in wandb.Api().runs(path)` gives per run: id, name, config, summary (and history)."""
    out = []
    for i, n in enumerate(SIZES):
        run = {"id": f"abc{i}", "name": f"glorious-sun-{i}", "state": "finished",
               "config": {"model": {"n_params": int(n)}, "tokens": int(20 * n), "seed": i % 2},
               "summary": {"val_loss": final_loss(n, i), "_step": 4, "_runtime": 30.0}}
        if with_history:
            run["history"] = [{"_step": s, "train_loss": v, "lr": 1e-3} for s, v in curve_points(n)]
        out.append(run)
    return out


def test_wandb_api_dump_as_json_lines_with_history(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in api_runs(True)))
    records = read_table_export(path, mapping=ImportMapping({"N": "config.model.n_params"}))
    assert records.mapping["N"] == "config.model.n_params" and records.mapping["D"] == "config.tokens"
    assert records.mapping["curve"].startswith("train_loss")
    summary = import_runs(tmp_path / "runs.db", records, study="api")
    assert len(summary.added) == 6
    with RunStore(tmp_path / "runs.db") as store:
        runs = store.runs(study="api").sort_values("params")
    assert list(runs["source_id"]) == [f"abc{i}" for i in range(6)]
    assert list(runs["seed"]) == [0, 1, 0, 1, 0, 1]
    np.testing.assert_allclose(runs["curve"].iloc[-1], curve_points(SIZES[-1]), rtol=1e-9)
    assert fitted_alpha(tmp_path / "runs.db", "api") == pytest.approx(ALPHA, abs=0.02)


def test_wandb_api_dump_saved_by_pandas_to_csv(tmp_path):
    """The W&B docs' recipe: a DataFrame of summary/config dicts and names, saved with to_csv (Python reprs)."""
    runs = api_runs(False)
    pd.DataFrame({"summary": [r["summary"] for r in runs], "config": [r["config"] for r in runs],
                  "name": [r["name"] for r in runs]}).to_csv(tmp_path / "project.csv")
    history = pd.concat([pd.DataFrame({"name": r["name"], "_step": [s for s, _ in curve_points(n)],
                                       "train_loss": [v for _, v in curve_points(n)]})
                         for r, n in zip(runs, SIZES)])
    history.to_csv(tmp_path / "history.csv", index=False)
    records = read_table_export(tmp_path / "project.csv", history=tmp_path / "history.csv")
    assert records.mapping["N"] == "config.model.n_params"           # found by its own name, n_params
    assert sorted(r[1]["params"] for r in records) == [int(n) for n in SIZES]
    assert all(len(r[1]["curve"]) == 5 for r in records)


def test_bad_inputs(tmp_path, capsys):
    wandb_ui_table(tmp_path / "runs.csv", crashed=False)
    (tmp_path / "empty.csv").write_text("")
    pd.DataFrame({"Name": ["a", "b"], "val_loss": [np.nan, np.nan], "n_params": [1, 2]}).to_csv(
        tmp_path / "noloss.csv", index=False)
    pd.DataFrame({"n_params": [1, 2], "val_loss": [1.0, 2.0]}).to_csv(tmp_path / "noname.csv", index=False)
    pd.DataFrame({"Name": ["a", "a"], "val_loss": [1.0, 2.0]}).to_csv(tmp_path / "dup.csv", index=False)
    pd.DataFrame({"Name": ["x"], "step": [1], "train_loss": [2.0]}).to_csv(tmp_path / "h_other.csv", index=False)
    pd.DataFrame({"Name": ["a"], "train_loss": [2.0]}).to_csv(tmp_path / "h_nostep.csv", index=False)
    (tmp_path / "bad.jsonl").write_text('{"name": "a"}\nnot json\n')
    runs = str(tmp_path / "runs.csv")
    cases = [
        ([str(tmp_path / "nope.csv")], "file not found"),
        ([str(tmp_path / "empty.csv")], "is empty"),
        ([str(tmp_path / "noloss.csv")], "no run in"),
        ([str(tmp_path / "noname.csv")], "no run name or id column"),
        ([str(tmp_path / "dup.csv")], "share the id 'a'"),
        ([str(tmp_path / "bad.jsonl")], "is not JSON lines"),
        ([runs, "--map", "N=params"], "'params' (given with --map N=params) is in no run"),
        ([runs, "--map", "N=optimizer"], "holds 'adam', not a number"),
        ([runs, "--history", str(tmp_path / "h_other.csv")], "no run of"),
        ([runs, "--history", str(tmp_path / "h_nostep.csv")], "has no step column"),
        ([runs, "--map", "run=Nom"], "'Nom' (given with --map run=Nom) is in no run"),
    ]
    assert_one_line_errors(capsys, ["import", "table", "--db", str(tmp_path / "runs.db"), "--study", "s"], cases)
    assert not (tmp_path / "runs.db").exists() or RunStore(tmp_path / "runs.db").studies().empty


def test_runs_with_only_flops_and_an_infinite_loss(tmp_path):
    """No N or D: stored empty and a power law in C still fits; an infinite loss is kept as diverged."""
    flops = [6 * n * 20 * n for n in SIZES]
    pd.DataFrame({"name": [f"r{i}" for i in range(7)], "flops": flops + [1e18],
                  "loss": [final_loss(n, i) for i, n in enumerate(SIZES)] + [np.inf]}).to_csv(
        tmp_path / "runs.csv", index=False)
    import_runs(tmp_path / "runs.db", read_table_export(tmp_path / "runs.csv"), study="c")
    with RunStore(tmp_path / "runs.db") as store:
        runs = store.runs(study="c")
    assert runs["params"].isna().all() and runs["examples"].isna().all()
    assert sorted(runs["status"]) == ["complete"] * 6 + ["diverged"]
    assert fitted_alpha(tmp_path / "runs.db", "c") == pytest.approx(ALPHA, abs=0.02)


def test_a_missing_library_names_the_extra(tmp_path, monkeypatch):
    from scalinglab.errors import ConfigError
    from scalinglab.importers import read_mlflow, read_tensorboard

    (tmp_path / "mlruns" / "0").mkdir(parents=True)
    (tmp_path / "mlruns" / "0" / "meta.yaml").write_text("name: Default\n")
    monkeypatch.setitem(sys.modules, "mlflow", None)          # as if not installed
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ConfigError, match=r"needs the mlflow package: pip install 'scalinglab\[import\]'"):
        read_mlflow(tmp_path / "mlruns")
    with pytest.raises(ConfigError, match=r"needs the tensorboard package: pip install 'scalinglab\[import\]'"):
        read_tensorboard(tmp_path)
