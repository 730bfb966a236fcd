"""The code corpus: a deterministic held-out split by path hash that never overlaps the training files."""

import numpy as np
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
