"""Loading runs from CSV, Parquet and a scalinglab SQLite store; column mapping; one-line errors."""

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from fit_synthetic import chinchilla_csv, chinchilla_runs  # noqa: F401 (chinchilla_csv is a fixture)
from scalinglab.errors import DataError
from scalinglab.fit import drop_highest_loss, load_runs


@pytest.fixture
def runs():
    return chinchilla_runs(seed=12, n=4)


def test_csv_with_published_column_names_derives_tokens(chinchilla_csv):
    raw = pd.read_csv(chinchilla_csv)
    runs = load_runs(chinchilla_csv)
    assert list(runs.columns[:4]) == ["N", "D", "C", "loss"] and len(runs) == 245
    np.testing.assert_allclose(runs["D"], raw["Training FLOP"] / (6 * raw["Model Size"]))


def test_mapping_flags_and_derived_compute(tmp_path, runs):
    path = tmp_path / "r.csv"
    runs.rename(columns={"N": "size", "D": "toks", "loss": "ppl_loss"}).drop(columns="C").to_csv(path, index=False)
    out = load_runs(path, n="size", d="toks", loss="ppl_loss", require=("N", "D", "C", "loss"))
    np.testing.assert_allclose(out["C"], 6 * runs["N"] * runs["D"])
    with pytest.raises(DataError, match=r"column 'nope' \(given with --n\) is not in the table; columns are: size"):
        load_runs(path, n="nope")
    with pytest.raises(DataError, match="no column for N"):
        load_runs(path, require=("N", "loss"), loss="ppl_loss")


def test_parquet(tmp_path, runs):
    pytest.importorskip("pyarrow")
    path = tmp_path / "r.parquet"
    runs.to_parquet(path)
    pd.testing.assert_frame_equal(load_runs(path)[["N", "D", "C", "loss"]], runs[["N", "D", "C", "loss"]])


def test_sqlite_store_reads_only_complete_runs(tmp_path, runs):
    path = tmp_path / "runs.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, params REAL, flops REAL, examples REAL, "
                "val_loss REAL, seed INTEGER, status TEXT)")
    rows = [(float(r.N), float(r.C), float(r.D), float(r.loss), i % 3, "complete") for i, r in runs.iterrows()]
    rows += [(1e8, 1e19, 1e10, None, 0, "running"), (1e8, 1e19, 1e10, 9.0, 0, "failed")]
    con.executemany("INSERT INTO runs (params, flops, examples, val_loss, seed, status) VALUES (?,?,?,?,?,?)", rows)
    con.commit()
    con.close()
    out = load_runs(path, require=("N", "D", "loss"))
    assert len(out) == len(runs) and set(out["seed"]) == {0, 1, 2}
    np.testing.assert_allclose(out["loss"], runs["loss"])


def test_store_schema_with_seed_in_config(tmp_path, runs):
    """The run store keeps each run's seed in its JSON config (scalinglab/store.py)."""
    path = tmp_path / "store.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (key TEXT PRIMARY KEY, family TEXT, config TEXT, status TEXT, params INTEGER, "
                "flops REAL, examples INTEGER, val_loss REAL)")
    con.executemany("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?)",
                    [(f"k{i}", "mnist", json.dumps({"width": 8, "seed": i % 2}), "complete", int(r.N), float(r.C),
                      int(r.D), float(r.loss)) for i, r in runs.iterrows()])
    con.commit()
    con.close()
    out = load_runs(path, require=("N", "D", "C", "loss"))
    assert set(out["seed"]) == {0, 1} and out["run"].iloc[0] == "k0"


@pytest.mark.parametrize("content, match", [
    ("N,D,loss\n1e8,1e10,3.0\n2e8,1e10,nan\n", "column 'loss' has 1 missing/NaN"),
    ("N,D,loss\n1e8,1e10,3.0\n-2e8,1e10,2.9\n", "column 'N' has 1 zero or negative"),
    ("N,D,loss\n1e8,1e10,3.0\n2e8,1e10,abc\n", "column 'loss' \\(loss\\) is not numeric: row 1 holds 'abc'"),
    ('N,D,loss\n1e8,1e10,3.0\n2e8,"1e10,2.9\n', "not a well-formed CSV"),
    ("N,D,loss\n1e8,1e10,3.0,7,8\n", "not a well-formed CSV"),
    ("", "is empty"),
    ("N,D,loss\n", "has no runs"),
])
def test_bad_files_give_one_line_errors(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        load_runs(path, require=("N", "D", "loss"))
    assert "\n" not in str(info.value)


def test_unreadable_sources(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_runs(tmp_path / "missing.csv")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(DataError, match="use a .csv, .parquet or .db"):
        load_runs(tmp_path / "x.xlsx")
    (tmp_path / "x.db").write_text("not a database at all, just text" * 10)
    with pytest.raises(DataError, match="run store|SQLite"):
        load_runs(tmp_path / "x.db")


def test_drop_highest_loss(runs):
    out = drop_highest_loss(runs, 3)
    assert len(out) == len(runs) - 3 and out["loss"].max() == runs["loss"].sort_values().iloc[-4]
    with pytest.raises(DataError, match="keep at least one"):
        drop_highest_loss(runs, len(runs))
