"""``scalinglab spectrum`` and ``scalinglab zipf`` through ``scalinglab.cli.main``."""

import json

import numpy as np
from analysis_synthetic import prescribed_matrix, zipf_text

from scalinglab.cli import main


def test_spectrum_json_keys(tmp_path, capsys):
    path = tmp_path / "m.npy"
    np.save(path, prescribed_matrix(800, 60, 0.8))
    png = tmp_path / "plots" / "spectrum.png"
    assert main(["spectrum", str(path), "--json", "--bootstrap", "20", "--plot", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("exponent", "ci", "rank_min", "rank_max", "power_law_plausible", "reason", "method",
                "centering", "reference"):
        assert key in out
    assert abs(out["exponent"] - 0.8) < 1e-6 and out["power_law_plausible"] is True
    assert out["method"] == "lapack-svd" and out["centering"] == "uncentred"
    assert out["reference"]["power_law_plausible"] is False
    assert png.stat().st_size > 1000


def test_spectrum_forced_randomized_text_output(tmp_path, capsys):
    path = tmp_path / "m.npy"
    np.save(path, prescribed_matrix(800, 60, 0.8))
    assert main(["spectrum", str(path), "--max-memory", "64K", "--rank", "20", "--bootstrap", "10",
                 "--center", "--no-reference"]) == 0
    text = capsys.readouterr().out
    assert "method: randomized-svd" in text and "centred" in text and "power law plausible" in text


def test_zipf_json_keys(tmp_path, capsys, cache):
    path = tmp_path / "z.txt"
    path.write_text(zipf_text(30_000, 2000, 1.0, seed=1))
    assert main(["zipf", str(path), "--json", "--vocab-sizes", "600", "--bootstrap", "5",
                 "--gof-samples", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("exponent", "ci", "xmin", "alpha", "power_law_plausible", "lognormal", "least_squares"):
        assert key in out
    assert out["level"] == "word" and [a["level"] for a in out["analyses"]] == ["word", "subword"]
    assert out["analyses"][1]["vocab_size"] == 600


def test_user_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["spectrum", str(tmp_path / "nope.npy")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\nx,4\n")
    assert main(["spectrum", str(bad)]) == 2
    assert "not a finite number" in capsys.readouterr().err
    assert main(["zipf", str(tmp_path / "nope.txt")]) == 2
    assert "neither a built-in corpus" in capsys.readouterr().err
    assert main(["zipf", "shakespeare", "--vocab-sizes", "lots"]) == 2
    assert "comma list" in capsys.readouterr().err
