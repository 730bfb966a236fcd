"""The code corpus: a deterministic held-out split by path hash that never overlaps the training files."""

import numpy as np
import pandas as pd
import pytest

from scalinglab.data import code


@pytest.fixture
def fake_stdlib(tmp_path, monkeypatch):
    """A small stand-in for the stdlib (400 files in nested folders, plus files the corpus must skip)."""
    root = tmp_path / "lib"
    rng = np.random.default_rng(0)
    for i in rng.permutation(400):  # created in random order: the split must not depend on it
        f = root / f"pkg{i % 7}" / f"mod_{i}.py"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"def f_{i}():\n    return {i}  # é\n")
    (root / "site-packages" / "x.py").parent.mkdir(parents=True)
    (root / "site-packages" / "x.py").write_text("installed = True\n")
    (root / "pkg0" / "__pycache__").mkdir()
    (root / "pkg0" / "__pycache__" / "c.py").write_text("cached = True\n")
    monkeypatch.setattr(code, "stdlib_root", lambda: root)
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path / "cache"))
    return root


def test_split_is_a_partition_by_path_hash(fake_stdlib):
    train, val = code.code_split()
    files = code.code_files()
    assert len(files) == 400 and not any("site-packages" in f or "__pycache__" in f for f in files)
    assert not set(train) & set(val) and sorted(train + val) == files
    assert 0.05 < len(val) / len(files) < 0.15  # ~10% held out
    assert all(code.is_held_out(f) for f in val) and not any(code.is_held_out(f) for f in train)
    # The rule reads the path only: a file keeps its split when the rest of the tree changes.
    for f in files[::3]:
        (fake_stdlib / f).unlink()
    train2, val2 = code.code_split()
    assert set(val2) <= set(val) and set(train2) <= set(train)


def test_token_streams_hold_exactly_their_own_files(fake_stdlib):
    train, val = code.code_split()
    for part, files in (("train", train), ("val", val)):
        ids = code.code_tokens(part, tokenizer="bytes")
        expected = b"".join((fake_stdlib / f).read_text(encoding="utf-8").encode() for f in files)
        assert bytes(np.asarray(ids)) == expected  # nothing of the other split, every byte of this one


def test_stdlib_of_this_interpreter_is_split():
    train, val = code.code_split()
    assert len(train) > 100 and len(val) > 10 and not set(train) & set(val)


def test_effective_data_and_its_fit_recover_a_known_transfer_law():
    from scalinglab.families.lm.transfer import effective_data, fit_transfer, two_distribution

    k, alpha, beta = 50.0, 0.2, 0.4
    rows = []
    for size, N in (("a", 3e3), ("b", 1e4), ("c", 3e4), ("d", 1e5)):
        E, A, al = 1.5 + 300 / N, 30.0, 0.3
        law = lambda D: E + A * D ** -al  # noqa: E731 - the from-scratch loss of this size
        for D in (1e4, 4e4, 1.6e5, 6.4e5, 2.56e6):
            rows.append({"size": size, "role": "scratch", "N": N, "D": D, "loss": law(D), "second_loss": None})
        for D_F in (1e4, 4e4, 1.6e5):
            D_T = k * D_F ** alpha * N ** beta
            rows.append({"size": size, "role": "finetune", "N": N, "D": D_F, "loss": law(D_F + D_T),
                         "second_loss": None})
        rows.append({"size": size, "role": "pretrain", "N": N, "D": 1e6, "loss": 3.0 - N / 1e5,
                     "second_loss": 1.1 * (3.0 - N / 1e5) + 0.5})
    table = pd.DataFrame(rows)
    dt = effective_data(table)
    expected = k * dt["D_F"] ** alpha * dt["N"] ** beta
    np.testing.assert_allclose(dt["D_T"], expected, rtol=1e-3)
    fit = fit_transfer(dt, n_resamples=50)
    assert fit["alpha"] == pytest.approx(alpha, abs=1e-3) and fit["beta"] == pytest.approx(beta, abs=1e-3)
    assert fit["ci"]["alpha"][0] <= fit["alpha"] <= fit["ci"]["alpha"][1]
    rel = two_distribution(table)
    assert rel["slope"] == pytest.approx(1.1) and rel["intercept"] == pytest.approx(0.5)
