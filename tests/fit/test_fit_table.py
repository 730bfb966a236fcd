"""Loading runs from CSV, Parquet and a scalinglab SQLite store; column mapping; one-line errors."""

import sqlite3

import numpy as np
import pandas as pd
import pytest

from fit_synthetic import chinchilla_csv, chinchilla_runs, store_db  # noqa: F401 (chinchilla_csv is a fixture)
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
    path = store_db(tmp_path / "store.db", runs, [{"width": 8, "seed": i % 2} for i in range(len(runs))])
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


def test_duplicated_csv_column_is_refused_not_silently_the_first(tmp_path):
    """Issue 16 case 9: pandas renames the second 'loss' to 'loss.1' and the fit used the first."""
    path = tmp_path / "dup.csv"
    path.write_text("N,D,loss,loss\n1e8,1e10,3.0,2.0\n2e8,1e10,2.9,1.9\n")
    before = path.read_bytes()
    with pytest.raises(DataError, match="names the column 'loss' twice"):
        load_runs(path)
    assert path.read_bytes() == before
    frame = pd.DataFrame([[1e8, 1e10, 3.0, 2.0]], columns=["N", "D", "loss", "loss"])
    with pytest.raises(DataError, match="twice"):
        load_runs(frame)


def test_parquet_datetime_column_is_not_a_parameter_count(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "dates.parquet"
    pd.DataFrame({"N": pd.date_range("2024-01-01", periods=4), "D": [1e10] * 4, "loss": [3.0, 2.9, 2.8, 2.7]}
                 ).to_parquet(path)
    with pytest.raises(DataError, match="column 'N' \\(N\\) holds dates"):
        load_runs(path, require=("N", "loss"))


def test_huge_integer_and_text_in_numeric_columns_are_one_line_errors(tmp_path):
    """Issue 16 case 7: a 400-digit integer raised OverflowError from pandas."""
    path = tmp_path / "big.csv"
    path.write_text(f"N,D,loss\n100000000,1e10,3.0\n{'9' * 400},1e10,2.9\n200000000,2e10,2.8\n")
    with pytest.raises(DataError, match="row 1 holds a 400-digit integer") as info:
        load_runs(path, require=("N", "D", "loss"))
    assert "\n" not in str(info.value)
    path.write_text("N,D,loss\n1e8,1e10,3.0\n2e8,lots,2.9\n")
    with pytest.raises(DataError, match="column 'D' \\(D\\) is not numeric: row 1 holds 'lots'"):
        load_runs(path, require=("N", "D", "loss"))


def test_store_config_keys_become_columns(tmp_path, runs):
    path = store_db(tmp_path / "store.db", runs,
                    [{"lr": 0.01 * (1 + i % 2), "seed": 0, "data": {"x": 1}} for i in range(len(runs))],
                    studies=["s1"] * len(runs))
    out = load_runs(path)
    assert set(out["lr"]) == {0.01, 0.02} and set(out["study"]) == {"s1"}
    assert "owner" not in out.columns and "config" not in out.columns and "data" not in out.columns


def test_hand_edited_store_rows_give_one_line_errors(tmp_path, runs):
    """Issue 16 case 7: a row with bad JSON config is read without its config keys; text in a number is refused."""
    from scalinglab.cli import main

    path = store_db(tmp_path / "edited.db", runs, ["{not json" if i == 2 else {"seed": 0} for i in range(len(runs))])
    assert len(load_runs(path)) == len(runs)
    con = sqlite3.connect(path)
    con.execute("UPDATE runs SET val_loss = 'oops' WHERE key = 'k3'")
    con.commit()
    con.close()
    with pytest.raises(DataError, match="column 'val_loss' \\(loss\\) is not numeric: row 3 holds 'oops'"):
        load_runs(path)
    import io
    import contextlib
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["fit", str(path), "--bootstrap", "0"]) == 2
    assert err.getvalue().startswith("scalinglab: error: column 'val_loss'") and err.getvalue().count("\n") == 1
