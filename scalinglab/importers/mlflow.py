"""Runs from an MLflow tracking store, read with MLflow's own client.

Sources: a file store folder (``./mlruns``, or ``file:///.../mlruns``) or a
SQLite store (``sqlite:///mlflow.db``, or the path of the ``.db`` file).
Fields: ``params.<name>`` (numbers when they parse), ``metrics.<name>``
(the latest value) and ``tags.<name>`` (user tags); every metric has its
history, so a logged training loss becomes the run's curve. Only FINISHED
runs are imported. The source is only read: a path that is not an MLflow
store is refused before MLflow opens it (MLflow would create one there).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

from scalinglab.errors import ConfigError, DataError
from scalinglab.importers.common import ImportMapping, Records, SourceRun, build_records, require_library

_HINT = "pass an MLflow store: a folder such as ./mlruns, or sqlite:///path/to/mlflow.db"


def tracking_uri(uri: str | Path) -> str:
    """The MLflow tracking URI of an existing local store; refuses anything else without touching it."""
    text = str(uri)
    if text.startswith("sqlite:"):
        if not text.startswith("sqlite:///"):
            raise ConfigError(f"{text}: write a SQLite store as sqlite:///relative/path.db or sqlite:////abs/path.db")
        path = Path(unquote(text[len("sqlite:///"):]))
        return f"sqlite:///{_mlflow_database(path)}"
    if "://" in text and not text.startswith("file:"):
        raise ConfigError(f"{text}: only local MLflow stores can be imported (a folder or sqlite:///FILE); "
                          "export the runs from a tracking server with `mlflow experiments csv` and use "
                          "`scalinglab import table`")
    path = Path(unquote(urlparse(text).path)) if text.startswith("file:") else Path(text)
    if not path.exists():
        raise DataError(f"no MLflow store at {path}; {_HINT}")
    if path.is_file():
        return f"sqlite:///{_mlflow_database(path)}"
    if not any((d / "meta.yaml").exists() for d in path.iterdir() if d.is_dir()):
        raise DataError(f"{path} is not an MLflow file store (no experiment folder with a meta.yaml); {_HINT}")
    return path.resolve().as_uri()


def _mlflow_database(path: Path) -> str:
    """The absolute path of an MLflow SQLite store, checked read-only first."""
    if not path.is_file():
        raise DataError(f"no MLflow database at {path}; {_HINT}")
    try:
        con = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError:
        raise DataError(f"{path} is not an SQLite database; {_HINT}") from None
    if not {"experiments", "runs", "metrics", "params"} <= tables:
        raise DataError(f"{path} is an SQLite database but not an MLflow store (no experiments/runs tables); "
                        f"it was not changed; {_HINT}")
    return str(path.resolve())


@contextlib.contextmanager
def _quiet_client(uri: str):
    """An MlflowClient on ``uri`` with the file store allowed (MLflow 3 refuses it by default) and logs muted."""
    require_library("mlflow", "from MLflow")
    from mlflow.tracking import MlflowClient

    saved_env = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield MlflowClient(tracking_uri=uri)
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if saved_env is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = saved_env


def read_mlflow(uri: str | Path, *, experiment: str | None = None,
                mapping: ImportMapping | None = None) -> Records:
    """``(config, result)`` records of the FINISHED runs of one experiment in an MLflow store.

    ``experiment`` is required when more than one experiment holds runs.
    """
    uri = tracking_uri(uri)
    with _quiet_client(uri) as client:
        exp = _experiment(client, uri, experiment)
        runs, others = [], []
        token = None
        while True:
            page = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
            for run in page:
                (runs if run.info.status == "FINISHED" else others).append(run)
            token = page.token
            if not token:
                break
        sources = [_source_run(client, run) for run in runs]
        description = f"MLflow experiment {exp.name!r} in {uri}"
        if not sources:
            raise DataError(f"{description} has no FINISHED runs"
                            + (f" ({len(others)} unfinished)" if others else "") + "; nothing to import")
        # histories are fetched inside build_records, while the client is open
        records = build_records(sources, mapping, source="mlflow", description=description)
    if others:
        states = sorted({r.info.status for r in others})
        records.notes.append(f"skipped {len(others)} run(s) that are not FINISHED ({', '.join(states)})")
    return records


def _experiment(client, uri: str, name: str | None):
    experiments = client.search_experiments()
    if name is not None:
        exp = client.get_experiment_by_name(name)
        if exp is None or exp.lifecycle_stage != "active":
            names = ", ".join(e.name for e in experiments) or "none"
            raise DataError(f"no experiment named {name!r} in {uri}; its experiments: {names}")
        return exp
    with_runs = [e for e in experiments if client.search_runs([e.experiment_id], max_results=1)]
    if not with_runs:
        raise DataError(f"the MLflow store {uri} holds no runs; log some with mlflow.log_metric first")
    if len(with_runs) > 1:
        raise DataError(f"{uri} holds {len(with_runs)} experiments with runs ({', '.join(e.name for e in with_runs)}); "
                        "choose one with --experiment NAME")
    return with_runs[0]


def _source_run(client, run) -> SourceRun:
    fields = {f"params.{k}": _parse(v) for k, v in run.data.params.items()}
    fields.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
    fields.update({f"tags.{k}": v for k, v in run.data.tags.items() if not k.startswith("mlflow.")})
    run_id = run.info.run_id

    def history(field: str) -> list[tuple[float, float]]:
        points = client.get_metric_history(run_id, field.removeprefix("metrics."))
        return [(m.step, m.value) for m in sorted(points, key=lambda m: (m.step, m.timestamp))]

    end, start = run.info.end_time, run.info.start_time
    return SourceRun(source_id=run_id, name=run.info.run_name or run_id, fields=fields,
                     series={f"metrics.{k}" for k in run.data.metrics}, history=history,
                     wall_s=(end - start) / 1000.0 if end and start else None)


def _parse(text: str):
    """An MLflow param (always stored as a string) as an int or float when it is one."""
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text
