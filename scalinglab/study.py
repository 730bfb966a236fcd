"""The MNIST scaling study: the course exercise as library calls.

``run_mnist_study("quick")`` runs the preset sweep into the run database,
then the first analysis: the compute-efficient frontier (the lowest
validation loss reached at each compute level across all runs) with a
power-law fit ``L = E + A C^-alpha``, and the compute-optimal model size per
compute level with its exponent. Everything comes back as DataFrames and
dataclasses; the CLI only prints them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scalinglab.errors import ConfigError
from scalinglab.store import RunStore
from scalinglab.sweep.engine import SweepSummary, run_sweep
from scalinglab.sweep.grid import MnistGrid, preset

FAMILY = "mnist_cnn"
EXPORT_COLUMNS = ["width", "fraction", "seed", "dropout", "lr", "batch_size", "precision", "params",
                  "flops", "examples", "val_loss", "val_acc", "status", "wall_s", "key", "code_version"]


def grid_name(grid: MnistGrid) -> str:
    digest = hashlib.sha256(json.dumps(grid.to_dict(), sort_keys=True).encode()).hexdigest()
    return f"mnist-{digest[:8]}"


def sweep_mnist(grid: MnistGrid, *, db: str | Path = "runs.db", name: str | None = None,
                workers: int = 2, executor: str = "local", address: str | None = None,
                progress: bool = True) -> SweepSummary:
    """Run (or resume) every run of ``grid``; results land in ``db``."""
    with RunStore(db) as store:
        return run_sweep(store, name or grid_name(grid), FAMILY, grid.configs(), workers=workers,
                         executor=executor, address=address, progress=progress,
                         info={"grid": grid.to_dict()})


def load_runs_frame(db: str | Path, *, study: str | None = None, status=None) -> pd.DataFrame:
    """Runs from a database as a DataFrame (config keys and results as columns)."""
    if not Path(db).exists():
        raise ConfigError(f"database {db} does not exist; run a sweep first or check --db")
    with RunStore(db) as store:
        return store.runs(study=study, status=status)


def export_runs(db: str | Path, *, fmt: str = "csv", study: str | None = None,
                status: str | None = None) -> str:
    """Runs as CSV (one row per run) or JSON records (with curves and metrics)."""
    runs = load_runs_frame(db, study=study, status=status)
    if fmt == "json":
        return runs.to_json(orient="records", indent=1) + "\n"
    if fmt != "csv":
        raise ConfigError(f"format = {fmt!r} is invalid: must be 'csv' or 'json'")
    cols = [c for c in EXPORT_COLUMNS if c in runs.columns]
    cols += [c for c in runs.columns if c not in cols and c not in ("curve", "metrics", "versions",
                                                                   "owner", "heartbeat", "config")]
    buf = io.StringIO()
    runs[cols].to_csv(buf, index=False)
    return buf.getvalue()
