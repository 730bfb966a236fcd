"""Python source code as a second text distribution: the standard library of the running interpreter.

Every machine that runs scalinglab has it (``sysconfig.get_paths()["stdlib"]``,
``*.py`` files outside ``site-packages``), so LM runs can be scored on code
and fine-tuned on it without a download. Its contents depend on the Python
version, so figures from different interpreters are not comparable; the
version is part of the cache key.

Held-out split: a file is held out when the first 8 hex digits of the
SHA-256 of its path relative to the stdlib folder, read as a fraction of
16^8, fall below ``val_fraction``. The rule looks at the path alone, so it
is deterministic, independent of the order files are found in, and a file
is in the same split on every machine with that file.

Tokens use the tokenizer of the run's own corpus (the byte-level BPE trained
on its training split, or raw bytes), so a model trained on Shakespeare is
scored on, and fine-tuned on, code in its own vocabulary.
"""

from __future__ import annotations

import hashlib
import io
import sys
import sysconfig
from pathlib import Path

import numpy as np

from scalinglab.data.fetch import atomic_write_bytes, cache_dir
from scalinglab.errors import DataError

STDLIB = "python-stdlib"
CODE_VAL_FRACTION = 0.1


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def code_files(root: Path | None = None) -> list[str]:
    """Relative POSIX paths of the stdlib's ``.py`` files (no site-packages), sorted."""
    root = stdlib_root() if root is None else root
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py")
                   if "site-packages" not in p.parts and "__pycache__" not in p.parts and p.is_file())
    if not files:
        raise DataError(f"no Python files under {root}; the interpreter's standard library is missing")
    return files


def is_held_out(relative_path: str, val_fraction: float = CODE_VAL_FRACTION) -> bool:
    """Whether a file belongs to the held-out split (hash of its relative path)."""
    h = int(hashlib.sha256(relative_path.encode()).hexdigest()[:8], 16)
    return h / 16 ** 8 < val_fraction


def code_split(val_fraction: float = CODE_VAL_FRACTION, root: Path | None = None) -> tuple[list[str], list[str]]:
    """(training files, held-out files), each sorted."""
    files = code_files(root)
    held = [f for f in files if is_held_out(f, val_fraction)]
    kept = [f for f in files if not is_held_out(f, val_fraction)]
    return kept, held


def code_tokens(part: str, *, tokenizer: str = "bpe", vocab_size: int = 512, corpus: str = "shakespeare",
                val_fraction: float = 0.1) -> np.ndarray:
    """Token ids of the ``"train"`` or ``"val"`` code split in the tokenizer of ``corpus`` (memory-mapped, cached).

    ``corpus`` and ``val_fraction`` name the run's own corpus and split, whose
    training text the BPE tokenizer was trained on.
    """
    if part not in ("train", "val"):
        raise ValueError(f"part must be 'train' or 'val', got {part!r}")
    from scalinglab.data.tokens import _encoder, load_corpus, split_corpus

    root = stdlib_root()
    train_files, val_files = code_split(CODE_VAL_FRACTION, root)
    files = train_files if part == "train" else val_files
    h = hashlib.sha256()
    for f in files:
        st = (root / f).stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    if tokenizer == "bytes":
        tag, train_texts = "bytes", []
    else:
        source = load_corpus(corpus)
        tag, train_texts = f"bpe{vocab_size}-{source.fingerprint}-val{val_fraction:g}", None
    version = f"py{sys.version_info.major}.{sys.version_info.minor}"
    path = cache_dir() / "tokens" / f"{STDLIB}-{version}-{h.hexdigest()[:12]}-{tag}-{part}.npy"
    if not path.exists():
        if train_texts is None:
            train_texts = list(split_corpus(source, val_fraction).train.values())
        encode, true_vocab = _encoder(tokenizer, vocab_size, train_texts)
        dtype = np.uint8 if true_vocab <= 1 << 8 else np.uint16 if true_vocab <= 1 << 16 else np.uint32
        texts = [(root / f).read_text(encoding="utf-8", errors="replace") for f in files]
        ids = np.concatenate([a.astype(dtype) for a in encode(texts)])
        buffer = io.BytesIO()
        np.save(buffer, ids)
        atomic_write_bytes(path, buffer.getvalue())
    return np.load(path, mmap_mode="r")
