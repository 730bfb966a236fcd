"""Load and validate a table of training runs for fitting.

Every fit in scalinglab reads the same clean frame: one row per finished run
with columns ``N`` (parameters), ``D`` (training tokens or examples), ``C``
(training FLOPs) and ``loss``, plus ``run`` (an id) and, when present,
``seed``, then every other column of the table (for filters and groups).
A missing N, D or C is derived from the other two with C = 6 N D (Kaplan
et al. 2020, sec. 2.1; Hoffmann et al. 2022) unless FLOPs per token are
given. Sources: CSV, Parquet, or a scalinglab
SQLite run store (table ``runs``, only ``status = 'complete'`` rows).
"""

from __future__ import annotations

import csv
import json
import sqlite3
import warnings
from pathlib import Path
from typing import Callable, Union
from urllib.parse import quote

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
    "U": ("U", "unique_tokens", "U_D", "unique"),  # unique training tokens (the data-constrained law)
    "seed": ("seed",),
    "run": ("run", "run_id", "id", "name", "key"),
}

_CSV = {".csv", ".tsv", ".txt"}
_PARQUET = {".parquet", ".pq"}
_SQLITE = {".db", ".sqlite", ".sqlite3"}


# Store columns that describe how a run was executed, not what it was: never fit inputs or experiment labels.
_STORE_BOOKKEEPING = ("status", "cost_flops", "curve", "metrics", "wall_s", "error", "code_version", "versions",
                      "owner", "heartbeat", "attempts", "created", "finished", "config")


def read_store_runs(path: str | Path) -> pd.DataFrame:
    """Completed runs from a scalinglab SQLite store (``status = 'complete'``), one column per config key.

    Scalar entries of each run's JSON ``config`` (seed, lr, dropout, ...)
    become columns, and ``study`` names the run's studies (joined by ``,``),
    so ``--where``, ``--group-by`` and the mixed-experiment check can use
    them. Bookkeeping columns (owner, heartbeat, ...) are left out.
    """
    try:
        con = sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise DataError(f"cannot open {path} as a SQLite database ({exc})") from None
    try:
        runs = pd.read_sql_query("SELECT * FROM runs WHERE status = 'complete'", con)
        try:
            member = pd.read_sql_query("SELECT key, group_concat(study, ',') AS study FROM "
                                       "(SELECT key, study FROM study_runs ORDER BY study) GROUP BY key", con)
        except (sqlite3.Error, pd.errors.DatabaseError):
            member = None
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        low = str(exc).lower()
        if any(w in low for w in ("malformed", "corrupt", "not a database", "disk i/o")):
            from scalinglab.store import explain_sqlite_error

            raise DataError(explain_sqlite_error(path, exc)) from None
        raise DataError(f"{path} is not a scalinglab run store (no usable 'runs' table: {exc}); "
                        "pass a CSV or Parquet file, or a database written by scalinglab") from None
    finally:
        con.close()
    if "config" in runs.columns:
        def scalars(text):
            try:
                cfg = json.loads(text) if isinstance(text, str) else None
            except json.JSONDecodeError:
                return {}
            if not isinstance(cfg, dict):
                return {}
            return {k: v for k, v in cfg.items() if isinstance(v, (int, float, str, bool)) or v is None}
        config = pd.DataFrame([scalars(t) for t in runs["config"]], index=runs.index)
        config = config[[c for c in config.columns if c not in runs.columns]]
        runs = pd.concat([runs, config], axis=1)
    if member is not None and "key" in runs.columns and len(member):
        runs = runs.merge(member, on="key", how="left") if "study" not in runs.columns else runs
    runs = _family_point_runs(runs)
    return runs.drop(columns=[c for c in _STORE_BOOKKEEPING if c in runs.columns])


def _family_point_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Each registered family's own point runs (its ``point_runs`` hook), as a study reads them.

    So ``fit runs.db`` fits the points ``study`` fits: a WSD study's trunks are
    dropped and its cooldowns carry the compute of the runs they stand for.
    """
    if "family" not in runs.columns or "metrics" not in runs.columns:
        return runs
    from scalinglab.studies.load import point_runs
    from scalinglab.sweep.family import get_family

    parts = []
    for name, rows in runs.groupby("family", sort=False):
        try:
            family = get_family(name)
        except Exception:  # a user's family not importable by name: its runs as stored
            family = None
        if family is None or not hasattr(family, "point_runs"):
            parts.append(rows)
            continue
        parsed = rows.assign(metrics=[json.loads(m) if isinstance(m, str) else m for m in rows["metrics"]])
        kept = point_runs(family, parsed)
        parts.append(kept.assign(metrics=rows.loc[kept.index, "metrics"]))
    return pd.concat(parts) if parts else runs


def _check_header(path: Path, sep: str) -> None:
    """Refuse a CSV whose header names a column twice (pandas would silently rename the second)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f, delimiter=sep), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return                                   # read_csv reports these itself
    seen = set()
    for name in header:
        if name in seen:
            raise DataError(f"{path} names the column {name!r} twice; rename or delete one copy "
                            "(scalinglab will not guess which one is meant)")
        seen.add(name)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, Parquet or scalinglab SQLite file into a raw DataFrame."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory; pass a .csv, .parquet or .db file")
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
            sep = "\t" if suffix == ".tsv" else ","
            _check_header(path, sep)
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                return pd.read_csv(path, sep=sep, index_col=False)
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
    """A column as floats; text, dates, booleans and integers too large for a float are refused by row."""
    series = raw[column]
    kind = series.dtype.kind
    if kind in "mMb" or isinstance(series.dtype, pd.DatetimeTZDtype):
        what = {"m": "durations", "M": "dates", "b": "true/false values"}.get(kind, "dates")
        raise DataError(f"column {column!r} ({name}) holds {what} ({series.dtype}), not numbers; "
                        f"name the right column for {name} or convert it")
    try:
        values = pd.to_numeric(series, errors="coerce")
    except OverflowError:
        big = [i for i, v in enumerate(series) if isinstance(v, int) and len(str(abs(v))) > 308]
        i = big[0] if big else 0
        raise DataError(f"column {column!r} ({name}): row {i} holds a {len(str(abs(series.iloc[i])))}-digit "
                        "integer, too large for a floating-point number; fix that row") from None
    bad_text = values.isna() & series.notna()
    if bad_text.any():
        i = int(np.flatnonzero(bad_text.to_numpy())[0])
        raise DataError(f"column {column!r} ({name}) is not numeric: row {i} holds {series.iloc[i]!r}")
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
            kinds.append("infinite or too large")
        raise DataError(f"column {column!r} has {rows.size} {' and '.join(kinds)} value(s) (rows {shown}); "
                        "scaling-law fits need positive, finite values: fix or remove those runs")


FlopsPerToken = Union[str, float, Callable[[np.ndarray], np.ndarray], None]


def _flops_per_token(spec: FlopsPerToken, raw: pd.DataFrame, out: pd.DataFrame) -> tuple[np.ndarray | None, str]:
    """FLOPs per token (or example) of each run, and how they were obtained."""
    if spec is None:
        return (6.0 * out["N"].to_numpy(float) if "N" in out else None), "6 N"
    if isinstance(spec, str):
        if spec not in raw.columns:
            raise DataError(f"FLOPs-per-token column {spec!r} is not in the table; columns are: "
                            + ", ".join(map(str, raw.columns)))
        values = _numeric(raw, spec, "FLOPs per token")
        check_positive(values, spec)
        return values, f"column {spec!r}"
    if callable(spec):
        if "N" not in out:
            return None, getattr(spec, "__name__", "a function of N")
        values = np.asarray(spec(out["N"].to_numpy(float)), dtype=float)
        check_positive(values, "FLOPs per token")
        return values, f"{getattr(spec, '__name__', 'a function')} of N"
    k = float(spec)
    if not np.isfinite(k) or k <= 0:
        raise DataError(f"FLOPs per token must be a positive multiple of N, a column or a function; got {spec!r}")
    return (k * out["N"].to_numpy(float) if "N" in out else None), f"{k:g} N"


def load_runs_selection(
    source: str | Path | pd.DataFrame,
    *,
    n: str | None = None,
    d: str | None = None,
    c: str | None = None,
    loss: str | None = None,
    seed: str | None = None,
    x: str | None = None,
    budget: str | None = None,
    weight: str | None = None,
    flops_per_token: FlopsPerToken = None,
    require: tuple[str, ...] = ("loss",),
) -> tuple[pd.DataFrame, dict]:
    """:func:`load_runs` plus a record of the selection: source, columns used, derived columns and how."""
    raw = read_table(source) if not isinstance(source, pd.DataFrame) else source
    where = str(source) if not isinstance(source, pd.DataFrame) else "the table"
    dup = pd.Index(raw.columns)[pd.Index(raw.columns).duplicated()]
    if len(dup):
        raise DataError(f"{where} names the column {dup[0]!r} twice; rename or delete one copy "
                        "(scalinglab will not guess which one is meant)")
    if len(raw) == 0:
        raise DataError(f"{where} has no runs (no rows{' with status complete' if where.endswith('.db') else ''})")
    raw = raw.reset_index(drop=True)
    out = pd.DataFrame(index=pd.RangeIndex(len(raw)))
    source_of: dict[str, tuple[str, ...]] = {}        # canonical column -> the raw columns it comes from
    columns: dict[str, str] = {}
    derived: dict[str, str] = {}
    flags = {"N": ("--n", n), "D": ("--d", d), "C": ("--c", c), "loss": ("--loss", loss)}
    for key, (flag, given) in flags.items():
        col = _pick(raw, key, given, flag)
        if col is not None:
            out[key] = _numeric(raw, col, key)
            source_of[key] = (col,)
            columns[key] = str(col)
    if "C" not in out and budget is not None and budget in raw.columns:
        out["C"] = _numeric(raw, budget, "C")         # nominal budgets are the only FLOPs the table has
        source_of["C"] = (budget,)
        derived["C"] = f"the budget column {budget!r}"
    fpt, fpt_text = _flops_per_token(flops_per_token, raw, out)
    if "N" not in out and {"D", "C"} <= set(out):
        if flops_per_token is not None and not callable(flops_per_token) and isinstance(flops_per_token, str):
            raise DataError("cannot derive N from C and D when FLOPs per token come from a column; give N (--n)")
        if callable(flops_per_token):
            out["N"] = _solve_n(flops_per_token, out["C"].to_numpy(float) / out["D"].to_numpy(float))
            derived["N"] = f"N solving {fpt_text} = C / D"
        else:
            k = 6.0 if flops_per_token is None else float(flops_per_token)
            out["N"] = out["C"] / (k * out["D"])
            derived["N"] = f"C / ({k:g} D)"
        source_of["N"] = source_of["D"] + source_of["C"]
        fpt, _ = _flops_per_token(flops_per_token, raw, out)
    if "D" not in out and "C" in out and fpt is not None:
        out["D"] = out["C"] / fpt
        source_of["D"] = source_of.get("N", ()) + source_of["C"]
        derived["D"] = f"C / ({fpt_text})"
    if "C" not in out and "D" in out and fpt is not None:
        out["C"] = fpt * out["D"]
        source_of["C"] = source_of.get("N", ()) + source_of["D"]
        derived["C"] = f"({fpt_text}) D"
    if "U" in require and "U" not in raw.columns:  # the data-constrained law's unique tokens, under an alias
        u_col = _pick(raw, "U", None, "")
        if u_col is not None:
            out["U"] = _numeric(raw, u_col, "U")
            source_of["U"] = (u_col,)
            columns["U"] = str(u_col)
    seed_col = _pick(raw, "seed", seed, "--seed")
    if seed_col is not None:
        out["seed"] = raw[seed_col].to_numpy()
        columns["seed"] = str(seed_col)
    run_col = _pick(raw, "run", None, "")
    out["run"] = raw[run_col].astype(str).to_numpy() if run_col is not None else np.arange(len(raw)).astype(str)
    for name, col, what in (("x", x, "--x"), ("budget", budget, "--budget"), ("weight", weight, "--weight")):
        if col is None or col in CANONICAL:
            continue
        if col not in raw.columns:
            raise DataError(f"column {col!r} (given with {what}) is not in the table; columns are: "
                            + ", ".join(map(str, raw.columns)))
        values = _numeric(raw, col, name)
        if name == "weight":
            if (~np.isfinite(values) | (values < 0)).any():
                raise DataError(f"weight column {col!r} has negative, missing or infinite values; "
                                "weights must be finite and >= 0")
            out["weight"] = values
        else:
            check_positive(values, col)
            out[col] = values
        columns[name] = str(col)
    if x is not None:
        require = (*require, x)

    used = {c for cols in source_of.values() for c in cols} | {seed_col, run_col, weight}
    for col in raw.columns:                           # keep the other columns for --where, --group-by, checks
        if col not in out.columns and col not in used:
            out[col] = raw[col].to_numpy()
    first = (*CANONICAL, "run", "seed")
    out = out[[k for k in first if k in out] + [k for k in out if k not in first]]
    for key in dict.fromkeys(require):
        if key not in out:
            wanted = {"N": "parameter counts (--n COLUMN, or give D and C)",
                      "D": "tokens (--d COLUMN, or give N and C)",
                      "C": "training FLOPs (--c COLUMN, or give N and D)", "loss": "losses (--loss COLUMN)",
                      "U": "unique training tokens (a column U or unique_tokens)"}
            cols = ", ".join(map(str, raw.columns))
            raise DataError(f"no column for {key}: this fit needs {wanted.get(key, key)}; columns are: {cols}")
        for col in source_of.get(key, ()):             # name the file's column, not the derived one
            check_positive(pd.to_numeric(raw[col], errors="coerce").to_numpy(dtype=float), col)
        check_positive(out[key].to_numpy(dtype=float), key)
    selection = {"source": where, "n_rows": int(len(raw)), "columns": columns, "derived": derived,
                 "flops_per_token": fpt_text}
    return out, selection


def _solve_n(flops_per_token: Callable, target: np.ndarray) -> np.ndarray:
    """N with flops_per_token(N) = target per run, by bisection in log N (the function must increase)."""
    lo, hi = np.full(target.shape, -10.0), np.full(target.shape, 80.0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        above = np.asarray(flops_per_token(np.exp(mid)), dtype=float) > target
        hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
    return np.exp(0.5 * (lo + hi))


def load_runs(source: str | Path | pd.DataFrame, **options) -> pd.DataFrame:
    """A clean runs frame (columns N, D, C, loss, run, [seed], then the table's other columns).

    ``n``, ``d``, ``c``, ``loss``, ``seed`` name the source columns (defaults:
    the first recognised alias, see ``ALIASES``); ``x``, ``budget`` name
    more numeric columns to check and keep; ``weight`` a per-run weight
    (kept as column ``weight``). A missing N, D or C is derived from the
    other two with C = (FLOPs per token) D, FLOPs per token being 6 N unless
    ``flops_per_token`` gives a multiple of N, a column or a function of N.
    ``require`` lists canonical columns that must end up present. See
    :func:`load_runs_selection` for the record of what was derived.
    """
    return load_runs_selection(source, **options)[0]


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
