"""Load and validate a table of training runs for fitting.

Every fit in scalinglab reads the same clean frame: one row per finished run
with columns ``N`` (parameters), ``D`` (training tokens or examples), ``C``
(training FLOPs) and ``loss``, plus ``run`` (an id) and, when present,
``seed``. Missing D or C are derived with C = 6 N D (Kaplan et al. 2020,
sec. 2.1; Hoffmann et al. 2022). Sources: CSV, Parquet, or a scalinglab
SQLite run store (table ``runs``, only ``status = 'complete'`` rows).
"""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from scalinglab.errors import DataError

CANONICAL = ("N", "D", "C", "loss")

# Column names recognised without a mapping flag, in order of preference.
ALIASES = {
    "N": ("N", "params", "n_params", "parameters", "Model Size", "model_size"),
    "D": ("D", "tokens", "Training Tokens", "train_tokens", "examples", "n_tokens"),
    "C": ("C", "flops", "Training FLOP", "training_flops", "compute"),
    "loss": ("loss", "val_loss", "final_loss", "eval_loss", "test_loss"),
    "seed": ("seed",),
    "run": ("run", "run_id", "id", "name", "key"),
}

_CSV = {".csv", ".tsv", ".txt"}
_PARQUET = {".parquet", ".pq"}
_SQLITE = {".db", ".sqlite", ".sqlite3"}


def read_store_runs(path: str | Path) -> pd.DataFrame:
    """Completed runs from a scalinglab SQLite store: ``SELECT * FROM runs WHERE status='complete'``.

    A run's seed lives in its JSON ``config`` when the table has no ``seed`` column; it is copied out.
    """
    try:
        con = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise DataError(f"cannot open {path} as a SQLite database ({exc})") from None
    try:
        runs = pd.read_sql_query("SELECT * FROM runs WHERE status = 'complete'", con)
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise DataError(f"{path} is not a scalinglab run store (no usable 'runs' table: {exc}); "
                        "pass a CSV or Parquet file, or a database written by scalinglab") from None
    finally:
        con.close()
    if "seed" not in runs.columns and "config" in runs.columns:
        def seed_of(text):
            try:
                cfg = json.loads(text) if isinstance(text, str) else None
            except json.JSONDecodeError:
                return None
            return cfg.get("seed") if isinstance(cfg, dict) else None
        seeds = runs["config"].map(seed_of)
        if seeds.notna().any():
            runs["seed"] = seeds
    return runs


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, Parquet or scalinglab SQLite file into a raw DataFrame."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in _SQLITE:
            return read_store_runs(path)
        if suffix in _PARQUET:
            try:
                import pyarrow  # noqa: F401  (pandas' Parquet engine)
            except ImportError:
                raise DataError(f"reading {path.name} needs pyarrow: pip install 'scalinglab[parquet]', "
                                "or save the table as CSV") from None
            return pd.read_parquet(path)
        if suffix in _CSV:
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", index_col=False)
    except DataError:
        raise
    except pd.errors.ParserWarning as exc:
        raise DataError(f"{path} is not a well-formed CSV (some rows have more fields than the header: "
                        f"{exc})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty; it needs a header row and one row per run") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path} is not a well-formed CSV ({first}); check the delimiter and quoting") from None
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    raise DataError(f"cannot read {path}: use a .csv, .parquet or .db (scalinglab SQLite) file")


def _pick(raw: pd.DataFrame, key: str, given: str | None, flag: str) -> str | None:
    """The raw column for canonical ``key``: the user's choice, else the first alias present."""
    if given is not None:
        if given not in raw.columns:
            cols = ", ".join(map(str, raw.columns))
            raise DataError(f"column {given!r} (given with {flag}) is not in the table; columns are: {cols}")
        return given
    return next((c for c in ALIASES[key] if c in raw.columns), None)


def _numeric(raw: pd.DataFrame, column: str, name: str) -> np.ndarray:
    values = pd.to_numeric(raw[column], errors="coerce")
    bad_text = values.isna() & raw[column].notna()
    if bad_text.any():
        i = int(np.flatnonzero(bad_text.to_numpy())[0])
        raise DataError(f"column {column!r} ({name}) is not numeric: row {i} holds {raw[column].iloc[i]!r}")
    return values.to_numpy(dtype=float)


def check_positive(values: np.ndarray, column: str) -> None:
    """Raise DataError unless every value is finite and > 0 (logs are taken of all of them)."""
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(str(i) for i in rows[:5]) + (", ..." if rows.size > 5 else "")
        kinds = []
        if np.isnan(values).any():
            kinds.append("missing/NaN")
        if (values[np.isfinite(values)] <= 0).any():
            kinds.append("zero or negative")
        if np.isinf(values).any():
            kinds.append("infinite")
        raise DataError(f"column {column!r} has {rows.size} {' and '.join(kinds)} value(s) (rows {shown}); "
                        "scaling-law fits need positive, finite values: fix or remove those runs")


def load_runs(
    source: str | Path | pd.DataFrame,
    *,
    n: str | None = None,
    d: str | None = None,
    c: str | None = None,
    loss: str | None = None,
    seed: str | None = None,
    x: str | None = None,
    require: tuple[str, ...] = ("loss",),
) -> pd.DataFrame:
    """A clean runs frame (columns N, D, C, loss, run, [seed], [x]) from a file or DataFrame.

    ``n``, ``d``, ``c``, ``loss``, ``seed`` name the source columns (defaults:
    the first recognised alias, see ``ALIASES``); ``x`` names one more column
    to keep under its own name (for a power law in an arbitrary variable).
    ``require`` lists canonical columns that must end up present.
    """
    raw = read_table(source) if not isinstance(source, pd.DataFrame) else source
    where = source if not isinstance(source, pd.DataFrame) else "the table"
    if len(raw) == 0:
        raise DataError(f"{where} has no runs (no rows{' with status complete' if str(where).endswith('.db') else ''})")
    out = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    source_of: dict[str, tuple[str, ...]] = {}        # canonical column -> the raw columns it comes from
    flags = {"N": ("--n", n), "D": ("--d", d), "C": ("--c", c), "loss": ("--loss", loss)}
    for key, (flag, given) in flags.items():
        col = _pick(raw, key, given, flag)
        if col is not None:
            out[key] = _numeric(raw, col, key)
            source_of[key] = (col,)
    if "D" not in out and {"N", "C"} <= set(out):
        out["D"] = out["C"] / (6.0 * out["N"])
        source_of["D"] = source_of["N"] + source_of["C"]
    if "C" not in out and {"N", "D"} <= set(out):
        out["C"] = 6.0 * out["N"] * out["D"]
        source_of["C"] = source_of["N"] + source_of["D"]
    seed_col = _pick(raw, "seed", seed, "--seed")
    if seed_col is not None:
        out["seed"] = raw[seed_col].to_numpy()
    run_col = _pick(raw, "run", None, "")
    out["run"] = raw[run_col].astype(str).to_numpy() if run_col is not None else np.arange(len(raw)).astype(str)
    if x is not None and x not in CANONICAL:
        if x not in raw.columns:
            raise DataError(f"column {x!r} (given with --x) is not in the table; columns are: "
                            + ", ".join(map(str, raw.columns)))
        out[x] = _numeric(raw, x, x)
        source_of[x] = (x,)
        require = (*require, x)
    elif x is not None:
        require = (*require, x)

    first = (*CANONICAL, "run", "seed")
    out = out[[k for k in first if k in out] + [k for k in out if k not in first]]
    for key in dict.fromkeys(require):
        if key not in out:
            wanted = {"N": "parameter counts (--n COLUMN)", "D": "tokens (--d COLUMN, or give N and C)",
                      "C": "training FLOPs (--c COLUMN, or give N and D)", "loss": "losses (--loss COLUMN)"}
            cols = ", ".join(map(str, raw.columns))
            raise DataError(f"no column for {key}: this fit needs {wanted.get(key, key)}; columns are: {cols}")
        for col in source_of[key]:                     # name the file's column, not the derived one
            check_positive(pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=float), col)
        check_positive(out[key].to_numpy(), key)
    return out


def drop_highest_loss(runs: pd.DataFrame, k: int) -> pd.DataFrame:
    """Drop the ``k`` runs with the highest loss (Besiroglu et al. 2024 drop 5 of Chinchilla's 245)."""
    if k < 0:
        raise DataError(f"--drop-highest-loss must be >= 0, got {k}")
    if k >= len(runs):
        raise DataError(f"cannot drop {k} of {len(runs)} runs; keep at least one")
    if k == 0:
        return runs
    keep = runs["loss"].rank(method="first", ascending=False) > k
    return runs[keep.to_numpy()].reset_index(drop=True)
