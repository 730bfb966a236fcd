"""`scalinglab fit` and `scalinglab allocate` end to end, in process."""

import json

import numpy as np
import pytest

from fit_synthetic import chinchilla_runs, isoflop_runs
from scalinglab.cli import main


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "runs.csv"
    runs = chinchilla_runs(seed=13, noise=0.005, n=7)
    runs.rename(columns={"N": "Model Size", "C": "Training FLOP"}).drop(columns="D").to_csv(path, index=False)
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_fit_json_has_named_parameters_and_intervals(capsys, csv, tmp_path):
    save = tmp_path / "fit.json"
    code, out, err = run(capsys, "fit", csv, "--law", "chinchilla", "--grid", "coarse", "--bootstrap", "50",
                         "--at-flops", "1e22", "--json", "--save", save)
    assert code == 0, err
    d = json.loads(out)
    assert d["schema_version"] == 1 and d["law"] == "chinchilla"
    for k in ("E", "A", "B", "alpha", "beta"):
        iv = d["intervals"][k]
        assert isinstance(d["params"][k], float) and iv["method"] == "bootstrap" and iv["n_resamples"] == 50
        assert iv["lo"] <= d["params"][k] <= iv["hi"] and iv["se"] > 0 and iv["estimate"] == d["params"][k]
    assert {"a", "b", "N_opt@1e+22", "D_opt@1e+22", "loss@1e+22"} <= set(d["derived"]) <= set(d["intervals"])
    saved = json.loads(save.read_text())
    assert {k: v for k, v in saved.items() if k != "samples"} == d and len(saved["samples"]["rows"]) == 50
    # the saved fit drives allocate, with the fit's intervals
    code, out, err = run(capsys, "allocate", "--flops", "1e22", "--law", save, "--json")
    assert code == 0, err
    alloc = json.loads(out)
    assert set(alloc) >= {"N_opt", "D_opt", "tokens_per_param", "loss"}
    assert alloc["N_opt"] == pytest.approx(d["derived"]["N_opt@1e+22"])
    for k in ("N_opt", "D_opt", "loss"):
        assert alloc["intervals"][k]["lo"] == pytest.approx(d["intervals"][f"{k}@1e+22"]["lo"], rel=1e-9)
        assert alloc["intervals"][k]["hi"] == pytest.approx(d["intervals"][f"{k}@1e+22"]["hi"], rel=1e-9)


def test_fit_text_backtest_and_plot(capsys, csv, tmp_path):
    png = tmp_path / "fit.png"
    code, out, err = run(capsys, "fit", csv, "--grid", "coarse", "--bootstrap", "0", "--holdout-above", "1e19",
                         "--plot", png)
    assert code == 0, err
    assert "back-test: fit on" in out and "alpha" in out
    assert png.stat().st_size > 1000


@pytest.mark.parametrize("law, extra", [("power", ["--x", "Model Size"]), ("kaplan", []), ("frontier", [])])
def test_other_laws(capsys, csv, law, extra):
    code, out, err = run(capsys, "fit", csv, "--law", law, "--bootstrap", "20", "--json", *extra)
    assert code == 0, err
    d = json.loads(out)
    assert d["law"] == law and set(d["intervals"]) >= ({"alpha_N", "alpha_D"} if law == "kaplan" else {"E", "alpha"})


def test_isoflop_cli(capsys, tmp_path):
    path = tmp_path / "iso.csv"
    isoflop_runs(seed=3).to_csv(path, index=False)
    save = tmp_path / "iso.json"
    code, out, err = run(capsys, "fit", path, "--law", "isoflop", "--bootstrap", "30", "--json", "--save", save,
                         "--plot", tmp_path / "iso.png")
    assert code == 0, err
    d = json.loads(out)
    a, iv = d["derived"]["a"], d["intervals"]["a"]
    assert 0.4 < a < 0.55 and iv["lo"] < a < iv["hi"] and len(d["tables"]["profiles"]) == 7
    code, out, err = run(capsys, "allocate", "--flops", "1e21", "--law", save)
    assert code == 0 and "N_opt" in out


def test_allocate_published_and_inference(capsys):
    code, out, err = run(capsys, "allocate", "--flops", "5.76e23", "--law", "hoffmann2022-unrounded", "--json",
                         "--inference-tokens", "1e13")
    d = json.loads(out)
    assert d["N_opt"] == pytest.approx(40e9, rel=0.02)
    inf = d["inference_aware"]
    assert inf["N"] < d["N_opt"] and inf["flops_saved"] > 0
    code, out, err = run(capsys, "allocate", "--flops", "1e24", "--law", "kaplan2020")
    assert code == 0 and "kaplan2020" in out


@pytest.mark.parametrize("argv, match", [
    (["fit", "{csv}", "--n", "params"], "column 'params' (given with --n) is not in the table"),
    (["fit", "{missing}"], "file not found"),
    (["fit", "{bad}"], "not a well-formed CSV"),
    (["fit", "{few}", "--bootstrap", "0"], "5 parameters but only 3 run(s)"),
    (["fit", "{const}", "--bootstrap", "0", "--grid", "coarse"], "N is constant"),
    (["fit", "{csv}", "--holdout-above", "1e30", "--grid", "coarse", "--bootstrap", "0"], "no runs above"),
    (["allocate", "--flops", "1e24", "--law", "nope"], "unknown law 'nope'"),
    (["fit", "{csv}", "--at-flops", "0", "--bootstrap", "0", "--grid", "coarse"], "--at-flops must be positive"),
    (["fit", "{csv}", "--at-flops", "-1", "--bootstrap", "0", "--grid", "coarse"], "--at-flops must be positive"),
    (["fit", "{csv}", "--at-flops", "nan", "--bootstrap", "0", "--grid", "coarse"], "--at-flops must be positive"),
    (["fit", "{csv}", "--at-flops", "inf", "--bootstrap", "0", "--grid", "coarse"], "--at-flops must be positive"),
    (["fit", "{csv}", "--holdout-above", "nan", "--bootstrap", "0", "--grid", "coarse"], "must be a finite"),
    (["fit", "{csv}", "--group-by", "nosuch", "--bootstrap", "0"], "--group-by column 'nosuch'"),
    (["fit", "{csv}", "--law", "isoflop", "--isoflop-method", "window", "--window", "-1"], "positive number"),
])
def test_errors_are_one_line(capsys, csv, tmp_path, argv, match):
    bad = tmp_path / "bad.csv"
    bad.write_text('N,D,loss\n1,2,"3\n')
    few = tmp_path / "few.csv"
    few.write_text("N,D,loss\n1e8,1e10,3.0\n2e8,1e10,2.9\n3e8,2e10,2.8\n")
    const = tmp_path / "const.csv"
    const.write_text("N,D,loss\n" + "".join(f"1e8,{d},{3 - i / 10}\n" for i, d in enumerate(np.logspace(9, 11, 8))))
    paths = {"csv": csv, "missing": tmp_path / "missing.csv", "bad": bad, "few": few, "const": const}
    code, out, err = run(capsys, *[a.format(**paths) for a in argv])
    assert code == 2
    assert err.startswith("scalinglab: error:") and match in err
    assert err.count("\n") == 1 and "Traceback" not in err
