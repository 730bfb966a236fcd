"""Writing output files without following links planted in the output folder.

Every file goes to a temporary file created exclusively in its final folder,
then ``os.replace`` moves it into place. ``os.replace`` over a symbolic link
replaces the link itself, so a link planted at ``out/report.html`` pointing at
``~/.bashrc`` is swapped for the report and its target is left alone; a reader
never sees a half-written file either. A sub-folder (``figures/``, ``data/``)
that is a symbolic link is refused, as is a name that would leave the folder.

    out = prepare_out_dir("study-quick")                 # before any training: exists, a folder, writable
    write_text_atomic(out, "report.html", page)
    write_bytes_atomic(out, "figures/loss.png", png)
    figures = safe_subdir(out, "figures")                # a real folder inside out, for other writers
    write_text_atomic(Path(args.out).parent, Path(args.out).name, csv)   # a single --out FILE
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePath

from scalinglab.errors import ConfigError


def prepare_out_dir(path: str | Path, *, flag: str = "--out") -> Path:
    """Create output folder ``path`` if needed and check that files can be written in it.

    Call it before any long work: a folder that is a file, cannot be created
    or is read-only is a one-line ConfigError at once, not after training.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{flag} {folder} is a file, not a folder; give a folder path (it is created if missing)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".scalinglab-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{flag} {folder} cannot be written ({exc.strerror or exc}); choose a writable "
                          "folder") from None
    return folder


def safe_subdir(folder: str | Path, name: str | PurePath) -> Path:
    """``folder/name`` as a real folder inside ``folder`` (made if missing); a symbolic link there is refused."""
    return _inside(Path(folder), PurePath(name) / "_").parent


def write_bytes_atomic(folder: str | Path, name: str | PurePath, data: bytes) -> Path:
    """Write ``data`` to ``folder/name`` through a temporary file and ``os.replace``; returns the path.

    ``name`` may hold sub-folders (``figures/a.png``), which are created as
    real folders; one that exists as a symbolic link is refused.
    """
    target = _inside(Path(folder), PurePath(name))
    fd, tmp = _temporary_beside(target)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        _remove_quietly(tmp)
        what = "is a folder" if target.is_dir() and not target.is_symlink() else (exc.strerror or str(exc))
        raise ConfigError(f"cannot write {target}: {what}; choose another output path") from None
    return target


def write_text_atomic(folder: str | Path, name: str | PurePath, text: str, *, encoding: str = "utf-8") -> Path:
    """``write_bytes_atomic`` of ``text`` encoded as ``encoding``."""
    return write_bytes_atomic(folder, name, text.encode(encoding))


def _inside(folder: Path, name: PurePath) -> Path:
    """``folder/name``, its sub-folders made; refuses names leaving the folder and linked sub-folders."""
    if name.is_absolute() or ".." in name.parts or not name.parts:
        raise ConfigError(f"output name {str(name)!r} must be a relative path inside {folder}")
    if not folder.is_dir():
        raise ConfigError(f"output folder {folder} does not exist or is not a folder; create it or fix the path")
    here = folder
    for part in name.parts[:-1]:
        here = here / part
        if here.is_symlink():
            raise ConfigError(f"{here} is a symbolic link (to {os.readlink(here)}); scalinglab does not write "
                              "through links out of the output folder: remove it, or use another folder")
        try:
            here.mkdir(exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create folder {here} ({exc.strerror or exc}); choose another "
                              "output folder") from None
        if not here.is_dir():
            raise ConfigError(f"{here} is a file where scalinglab needs a folder; move it aside")
    return here / name.parts[-1]


def _temporary_beside(target: Path) -> tuple[int, str]:
    """An exclusively created temporary file in ``target``'s folder, with the mode a new file would get."""
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write in {target.parent} ({exc.strerror or exc}); choose a writable "
                          "folder") from None
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; an output file is as readable as any other
    return fd, tmp


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
