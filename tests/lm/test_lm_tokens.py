"""Token streams: the held-out split never overlaps training data; the cache is a memory map."""

import numpy as np
import pytest

from scalinglab.data.tokens import load_corpus, load_tokens, split_corpus
from scalinglab.errors import ConfigError, DataError
from scalinglab.families.lm.train import TokenBatches, eval_windows


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALINGLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _write_docs(folder, n, seed=0):
    """n documents of distinct random words (so any shared 16-byte window would be a leak)."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    texts = {}
    for i in range(n):
        words = ["".join(rng.choice(list("abcdefghijklmnop"), size=rng.integers(2, 9))) for _ in range(400)]
        text = f"doc {i}\n" + " ".join(words) + "\n"
        (folder / f"doc{i:02d}.txt").write_text(text)
        texts[f"doc{i:02d}.txt"] = text
    return texts


def _decode_bytes(ids) -> str:
    return bytes(np.asarray(ids, dtype=np.uint8)).decode("utf-8")


def test_document_split_holds_out_whole_documents(tmp_path, cache):
    texts = _write_docs(tmp_path / "docs", 20)
    data = load_tokens(str(tmp_path / "docs"), tokenizer="bytes", val_fraction=0.1)
    train, val = set(data.meta["train_pieces"]), set(data.meta["val_pieces"])
    assert data.meta["split"] == "document"
    assert train.isdisjoint(val) and train | val == set(texts)
    assert val == {"doc05.txt", "doc15.txt"}  # every 10th document from the 5th
    # The streams are exactly the held-out and the remaining documents, nothing else.
    assert _decode_bytes(data.val) == "".join(texts[n] for n in sorted(val))
    assert _decode_bytes(data.train) == "".join(texts[n] for n in sorted(train))
    # No 16-byte window of validation text appears anywhere in the training stream.
    train_bytes, val_bytes = bytes(np.asarray(data.train)), bytes(np.asarray(data.val))
    assert not any(val_bytes[i:i + 16] in train_bytes for i in range(0, len(val_bytes) - 16, 7))


def test_block_split_of_one_file_is_contiguous_and_disjoint(tmp_path, cache):
    text = "".join(f"line {i}: " + "x" * (i % 13) + "\n" for i in range(3000))
    path = tmp_path / "one.txt"
    path.write_text(text)
    split = split_corpus(load_corpus(str(path)), 0.1)
    assert split.method == "block"
    tr, va = split.train["block:train"], split.val["block:val"]
    assert tr + va == text and tr.endswith("\n")
    assert 0.08 < len(va) / len(text) < 0.12
    data = load_tokens(str(path), tokenizer="bytes")
    assert _decode_bytes(data.train) == tr and _decode_bytes(data.val) == va


def test_bpe_is_trained_on_training_documents_only(tmp_path, cache, monkeypatch):
    import scalinglab.data.text as text_mod

    texts = _write_docs(tmp_path / "docs", 10, seed=3)
    seen = []
    real = text_mod.train_bpe

    def spy(chunks, vocab_size):
        chunks = list(chunks)
        seen.extend(chunks)
        return real(chunks, vocab_size)

    monkeypatch.setattr(text_mod, "train_bpe", spy)
    data = load_tokens(str(tmp_path / "docs"), tokenizer="bpe", vocab_size=300)
    held = data.meta["val_pieces"]
    assert held == ["doc05.txt"]
    assert texts["doc05.txt"] not in seen and len(seen) == 9
    tok = real([texts[n] for n in sorted(texts) if n != "doc05.txt"], 300)
    assert np.array_equal(np.asarray(data.val), tok.encode(texts["doc05.txt"]).ids)
    assert tok.decode(np.asarray(data.train).tolist()) == "".join(texts[n] for n in sorted(texts) if n != "doc05.txt")


def test_cache_is_a_read_only_memory_map_built_once(tmp_path, cache):
    _write_docs(tmp_path / "docs", 12)
    first = load_tokens(str(tmp_path / "docs"), tokenizer="bytes")
    assert isinstance(first.train, np.memmap) and isinstance(first.val, np.memmap)
    assert not first.train.flags.writeable
    folders = list((cache / "tokens").iterdir())
    assert len(folders) == 1
    stamp = (folders[0] / "train.npy").stat().st_mtime_ns
    second = load_tokens(str(tmp_path / "docs"), tokenizer="bytes")
    assert (folders[0] / "train.npy").stat().st_mtime_ns == stamp
    assert np.array_equal(first.train, second.train)
    (tmp_path / "docs" / "doc00.txt").write_text("changed text\n" * 50)  # new text, new cache entry
    load_tokens(str(tmp_path / "docs"), tokenizer="bytes")
    assert len(list((cache / "tokens").iterdir())) == 2


def test_shakespeare_holds_out_four_works_that_training_never_sees():
    data = load_tokens("shakespeare", tokenizer="bytes")
    assert data.meta["val_pieces"] == ["cymbeline", "julius_caesar", "othello", "tempest"]
    assert len(data.meta["train_pieces"]) == 38
    assert 0.07 < data.meta["val_chars"] / (data.meta["val_chars"] + data.meta["train_chars"]) < 0.12
    # Training batches and the evaluation set come from their own streams only.
    train_bytes = bytes(np.asarray(data.train))
    batches = TokenBatches(data.train, context=64, batch_size=8, seed=0)
    for _ in range(3):
        x, _ = batches.next()
        for row in x:
            assert bytes(row.numpy().astype(np.uint8)) in train_bytes
    windows = eval_windows(data.val, context=64, eval_tokens=4096)
    assert np.array_equal(windows[:, :-1].reshape(-1).numpy(), np.asarray(data.val[:64 * 64]))
    # Long stretches of held-out text are absent from the training stream.
    val_bytes = bytes(np.asarray(data.val))
    probes = [val_bytes[i:i + 200] for i in range(1000, len(val_bytes) - 200, 9973)]
    assert sum(p in train_bytes for p in probes) == 0


def test_bad_inputs_say_what_to_do(tmp_path, cache):
    with pytest.raises(DataError, match="neither"):
        load_tokens(str(tmp_path / "missing"), tokenizer="bytes")
    with pytest.raises(ConfigError, match="tokenizer"):
        load_tokens("shakespeare", tokenizer="words")
    (tmp_path / "tiny.txt").write_text("a")
    with pytest.raises(DataError, match="too short"):
        load_tokens(str(tmp_path / "tiny.txt"), tokenizer="bytes")
