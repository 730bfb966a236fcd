import json

import pandas as pd
import pytest

from scalinglab.cli import main

TINY = ["--widths", "4,6", "--fractions", "1,1/2", "--train-limit", "1000", "--workers", "0", "--quiet"]


def test_sweep_then_export(tmp_path, capsys):
    db = str(tmp_path / "runs.db")
    assert main(["sweep", "mnist", *TINY, "--db", db]) == 0
    assert "4 runs trained" in capsys.readouterr().out
    assert main(["sweep", "mnist", *TINY, "--db", db]) == 0  # resumes: nothing to do
    assert "0 runs trained, 4 already finished" in capsys.readouterr().out

    out = tmp_path / "runs.csv"
    assert main(["runs", "--db", db, "--format", "csv", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    required = {"width", "fraction", "seed", "dropout", "lr", "params", "flops", "examples",
                "val_loss", "val_acc", "status", "wall_s"}
    assert required <= set(table.columns) and len(table) == 4
    assert (table.status == "complete").all()

    assert main(["runs", "--db", db, "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 4 and required <= set(records[0]) and len(records[0]["curve"]) > 0


def test_smoke_study_prints_the_frontier_fit(tmp_path, capsys):
    code = main(["study", "mnist", "--preset", "smoke", "--db", str(tmp_path / "runs.db"),
                 "--out", str(tmp_path / "study"), "--workers", "0", "--quiet", "--no-report"])
    assert code == 0
    text = capsys.readouterr().out
    assert "compute-efficient frontier" in text and "N_opt ∝ C^a" in text
    analysis = json.loads((tmp_path / "study" / "analysis.json").read_text())
    frontier = analysis["groups"][0]["fits"]["frontier"]
    assert {"E", "A", "alpha"} <= set(frontier["params"])
    # the printed exponent is the one in the JSON
    assert f"α = {frontier['params']['alpha']:.2f}" in text


@pytest.mark.parametrize("args, message", [
    (["sweep", "mnist", "--widths", "4,-8"], "width = -8"),
    (["sweep", "mnist", "--widths", "4", "--fractions", "3/2"], "fraction = 1.5"),
    (["sweep", "mnist", "--widths", "4", "--fractions", ""], "fractions is empty"),
    (["sweep", "mnist", "--widths", "4", "--fractions", "1", "--db", "/no/such/dir/runs.db"], "does not exist"),
    (["study", "mnist", "--preset", "huge"], "unknown preset 'huge'"),
    (["runs", "--db", "/no/such/file.db"], "does not exist"),
])
def test_bad_input_is_one_line_naming_the_problem(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_unknown_toml_key_is_named(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text("widths = [4]\nfractions = [1]\nwidht = 3\n")
    assert main(["sweep", "mnist", "--config", str(grid), "--db", str(tmp_path / "r.db")]) == 2
    assert "unknown setting 'widht'" in capsys.readouterr().err
