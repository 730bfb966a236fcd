"""Streaming text reading and the cached BPE trainer."""

import pytest

from scalinglab.data.text import iter_text, text_files, train_bpe
from scalinglab.errors import ConfigError, DataError

TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog\n" for i in range(200)) + "no newline at end"


def test_chunks_join_to_the_exact_text_and_end_at_line_breaks(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text(TEXT, encoding="utf-8")
    chunks = list(iter_text(path, chunk_chars=500))
    assert "".join(chunks) == TEXT
    assert len(chunks) > 5
    assert all(c.endswith("\n") for c in chunks[:-1]) and all(len(c) <= 1000 for c in chunks)


def test_text_without_line_breaks_is_cut_at_spaces(tmp_path):
    path = tmp_path / "b.txt"
    text = " ".join(["word"] * 1000)
    path.write_text(text)
    chunks = list(iter_text(path, chunk_chars=100))
    assert "".join(chunks) == text and all(c.endswith(" ") for c in chunks[:-1])


def test_folders_are_read_recursively_in_order_skipping_hidden_and_binary(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("bee\n")
    (tmp_path / "sub" / "a.md").write_text("sub a\n")
    (tmp_path / "a.txt").write_text("ay\n")
    (tmp_path / ".hidden.txt").write_text("secret\n")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02")
    assert [p.name for p in text_files(tmp_path)] == ["a.txt", "b.txt", "a.md"]
    assert "".join(iter_text(tmp_path)) == "ay\nbee\nsub a\n"


def test_bad_sources(tmp_path):
    with pytest.raises(DataError, match="neither a built-in corpus"):
        iter_text(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("")
    assert list(iter_text(tmp_path / "empty.txt")) == []  # callers decide whether empty is an error
    (tmp_path / "d").mkdir()
    with pytest.raises(DataError, match="no text files"):
        iter_text(tmp_path / "d")
    with pytest.raises(ConfigError):
        iter_text(tmp_path / "empty.txt", chunk_chars=0)


def test_train_bpe_caches_and_accepts_generators(tmp_path, cache):
    docs = [TEXT, TEXT.upper()]
    tok = train_bpe(docs, 300)
    assert 256 < tok.get_vocab_size() <= 300
    enc = tok.encode("the quick brown fox")
    assert tok.decode(enc.ids) == "the quick brown fox"
    files = list((cache / "tokenizers").glob("*.json"))
    assert len(files) == 1
    again = train_bpe(iter(docs), 300)  # one-shot iterator with the same chunks: same cache entry
    assert again.encode("the lazy dog").ids == tok.encode("the lazy dog").ids
    assert list((cache / "tokenizers").glob("*.json")) == files
    assert not list((cache / "tokenizers").glob("*.spool"))
    train_bpe(docs, 280)
    assert len(list((cache / "tokenizers").glob("*.json"))) == 2
    with pytest.raises(ConfigError, match="vocab_size"):
        train_bpe(docs, 100)
