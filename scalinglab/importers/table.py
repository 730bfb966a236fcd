"""Runs from a CSV or JSON-lines export: one row (or line) per run.

Shapes read (docs/importing.md shows each):

* the W&B UI's runs-table CSV: ``Name``, ``State``, config and summary
  columns under their own names. Only rows whose ``State`` is ``finished``
  are imported when the column exists.
* a ``wandb.Api().runs()`` dump, as JSON lines (``{"id", "name", "config":
  {...}, "summary": {...}, "history": [{"_step": 0, "train_loss": ...}]}``)
  or as a CSV whose cells hold those dicts (JSON or Python repr): nested
  keys become ``config.lr``, ``summary.loss``, ...
* a history, in a column of lists (``[{"_step": .., METRIC: ..}, ...]`` or
  ``[[step, value], ...]``), or in a separate file (``--history``): long
  (one row per run and step: a run column, ``_step``/``step``, metric
  columns) or the W&B panel CSV (``Step``, ``<run> - <metric>`` columns).

A run is identified by its id column (``ID``, ``id``, ``run_id``) or else
its name; ``--map id=COLUMN`` / ``--map run=COLUMN`` choose others.
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from scalinglab.errors import DataError
from scalinglab.fit.table import read_table
from scalinglab.importers.common import ImportMapping, Records, SourceRun, bare, build_records, resolve_field

ID_FIELDS = ("ID", "id", "run_id", "Run ID")
NAME_FIELDS = ("Name", "name", "run_name", "display_name", "run", "Run")
STEP_FIELDS = ("_step", "step", "Step", "global_step")
_PANEL = re.compile(r"^(?P<run>.+) - (?P<metric>.+?)$")


def read_table_export(path: str | Path, *, mapping: ImportMapping | None = None,
                      history: str | Path | None = None) -> Records:
    """``(config, result)`` records of the runs in a CSV / JSON-lines export (and its history file)."""
    mapping = mapping or ImportMapping()
    path = Path(path)
    rows = _flat_rows(path)
    if not rows:
        raise DataError(f"{path} holds no runs (no rows)")
    names = set().union(*rows)
    id_col = _pick(names, mapping.fields.get("id"), ID_FIELDS, "id")
    name_col = _pick(names, mapping.fields.get("run"), NAME_FIELDS, "run")
    if id_col is None and name_col is None:
        raise DataError(f"{path} has no run name or id column (looked for {', '.join(NAME_FIELDS + ID_FIELDS)}); "
                        "name one with --map run=COLUMN")
    state_col = next((c for c in ("State", "state") if c in names), None)
    finished = [not state_col or str(r.get(state_col) or "finished").lower() == "finished" for r in rows]
    skipped = [r for r, ok in zip(rows, finished) if not ok]
    extra = _history_file(history, id_col, name_col) if history is not None else {}
    runs = []
    for row in (r for r, ok in zip(rows, finished) if ok):
        name = str(row.get(name_col) if name_col else row[id_col])
        source_id = str(row[id_col]) if id_col and row.get(id_col) is not None else name
        series = _history_cells(row)
        series.update(extra.get(source_id, extra.get(name, {})))
        runs.append(SourceRun(source_id=source_id, name=name,
                              fields={k: v for k, v in row.items() if not isinstance(v, list)},
                              series=set(series), history=lambda f, s=series: s.get(f, []),
                              wall_s=_float(row.get("Runtime", row.get("summary._runtime")))))
    if history is not None and not any(r.series for r in runs):
        raise DataError(f"no run of {path} is named in the history {history}; its run column must hold the "
                        f"runs' {id_col or name_col} values")
    records = build_records(runs, mapping, source="table", description=str(path))
    if skipped:
        states = sorted({str(r.get(state_col)) for r in skipped})
        records.notes.append(f"skipped {len(skipped)} run(s) whose {state_col} is not finished ({', '.join(states)})")
    return records


def _flat_rows(path: Path) -> list[dict[str, Any]]:
    """The file's rows as flat dicts: nested dicts (cells or JSON objects) become dotted keys."""
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        text = path.read_text(encoding="utf-8")
        try:
            if text.lstrip().startswith("["):
                items = json.loads(text)
            else:
                items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} is not JSON lines (one JSON object per line): {exc}") from None
        if not all(isinstance(i, dict) for i in items):
            raise DataError(f"{path}: every line must be a JSON object (one run)")
    else:
        items = read_table(path).to_dict(orient="records")
    return [_flatten({k: _cell(v) for k, v in item.items()}) for item in items]


def _cell(value: Any) -> Any:
    """A CSV cell holding a dict or list (JSON or Python repr, as pandas writes them) as that object."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str) and value[:1] in "[{":
        for parse in (json.loads, ast.literal_eval):
            try:
                return parse(value)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                continue
    return value


def _flatten(item: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in item.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _pick(names: set[str], spec: str | None, defaults: tuple[str, ...], key: str) -> str | None:
    if spec is not None:
        return resolve_field(key, spec, names)
    return next((n for n in defaults if n in names), None)


def _history_cells(row: dict) -> dict[str, list[tuple[float, float]]]:
    """Histories held in the row's list cells: records with a step key, or [step, value] pairs."""
    series: dict[str, list[tuple[float, float]]] = {}
    for column, cell in row.items():
        if not isinstance(cell, list) or not cell:
            continue
        if all(isinstance(p, dict) for p in cell):
            step_key = next((k for k in STEP_FIELDS if k in cell[0]), None)
            for i, point in enumerate(cell):
                step = point.get(step_key, i) if step_key else i
                for metric, value in point.items():
                    if metric != step_key and _float(value) is not None:
                        series.setdefault(metric, []).append((float(step), float(value)))
        elif all(isinstance(p, (list, tuple)) and len(p) == 2 for p in cell):
            series[bare(column)] = [(float(s), float(v)) for s, v in cell]
    return {k: sorted(v) for k, v in series.items()}


def _history_file(path: str | Path, id_col: str | None, name_col: str | None) -> dict[str, dict]:
    """{run id or name: {metric: [(step, value), ...]}} from a long history table or a W&B panel CSV."""
    frame = read_table(path) if Path(path).suffix.lower() not in (".jsonl", ".ndjson", ".json") \
        else pd.DataFrame(_flat_rows(Path(path)))
    step = next((c for c in STEP_FIELDS if c in frame.columns), None)
    if step is None:
        raise DataError(f"history {path} has no step column ({', '.join(STEP_FIELDS)})")
    wide = [c for c in frame.columns if c != step and _PANEL.match(str(c))]
    out: dict[str, dict] = {}
    if wide and len(wide) == len(frame.columns) - 1:        # W&B panel export: "<run> - <metric>"
        for column in wide:
            m = _PANEL.match(str(column))
            if m["metric"].endswith(("__MIN", "__MAX")):
                continue
            points = frame[[step, column]].dropna()
            out.setdefault(m["run"], {})[m["metric"]] = sorted(zip(points[step].astype(float),
                                                                  points[column].astype(float)))
        return out
    run_col = next((c for c in (id_col, name_col, *ID_FIELDS, *NAME_FIELDS) if c and c in frame.columns), None)
    if run_col is None:
        raise DataError(f"history {path} has no run column ({', '.join(ID_FIELDS + NAME_FIELDS)}) to match runs by")
    for run, part in frame.groupby(run_col, sort=False):
        metrics = {}
        for column in part.columns:
            if column in (run_col, step):
                continue
            values = pd.to_numeric(part[column], errors="coerce")
            keep = values.notna()
            if keep.any():
                metrics[str(column)] = sorted(zip(part.loc[keep, step].astype(float), values[keep].astype(float)))
        out[str(run)] = metrics
    return out


def _float(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None
