"""Trunk checkpoints for WSD studies: where they live, written atomically, found again.

A WSD trunk saves its full training state (model, optimizer, data order,
curve so far) after the steps its cooldown branches start from, as
``<root>/<run key>/step-<n>.pt``. ``<root>`` is the folder named by the
environment variable ``SCALINGLAB_CHECKPOINT_DIR``; the WSD sweep
(:func:`scalinglab.families.lm.wsd.run_wsd_sweep`) sets it to
``<database>.ckpt`` next to the run database, and worker processes inherit it.
Files are written to a temporary name and renamed, so a killed writer never
leaves a half-written checkpoint under a real name.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import torch

from scalinglab.data.fetch import atomic_write_bytes
from scalinglab.errors import ConfigError, DataError

CHECKPOINT_ENV = "SCALINGLAB_CHECKPOINT_DIR"
_NAME = re.compile(r"step-(\d+)\.pt")


def checkpoint_root_for(db: str | Path) -> Path:
    """The checkpoint folder of a run database: ``<db>.ckpt`` beside it."""
    return Path(f"{Path(db).resolve()}.ckpt")


def checkpoint_root() -> Path:
    root = os.environ.get(CHECKPOINT_ENV)
    if not root:
        raise ConfigError(f"WSD trunks and branched runs need a checkpoint folder: run them with "
                          f"scalinglab.families.lm.wsd.run_wsd_sweep, or set {CHECKPOINT_ENV}")
    return Path(root)


def checkpoint_path(key: str, step: int) -> Path:
    return checkpoint_root() / key / f"step-{step}.pt"


def save_checkpoint(state: dict, key: str, step: int) -> Path:
    """Write ``state`` as the run's checkpoint after ``step`` updates (temp file, then os.replace)."""
    path = checkpoint_path(key, step)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def latest_checkpoint_step(key: str, max_step: int) -> int | None:
    """The highest step <= ``max_step`` the run has a checkpoint for, or None."""
    folder = checkpoint_root() / key
    steps = [int(m.group(1)) for p in folder.glob("step-*.pt") if (m := _NAME.fullmatch(p.name))]
    steps = [s for s in steps if s <= max_step]
    return max(steps) if steps else None


def load_checkpoint(key: str, step: int) -> dict:
    path = checkpoint_path(key, step)
    if not path.exists():
        raise DataError(f"run {key[:12]} has no checkpoint at step {step} ({path}); train the trunk first "
                        "(run_wsd_sweep trains trunks before branches) and check it did not diverge")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same advice
        raise DataError(f"checkpoint {path} is unreadable ({exc}); delete it and re-run its trunk") from exc
