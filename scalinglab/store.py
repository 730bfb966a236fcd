"""The run store: every run of every sweep, in one SQLite file.

Guarantees (tested in ``tests/test_store.py``, ``tests/test_faults.py`` and
``tests/test_sweep_resume.py``; in plain words in ``docs/guarantees.md``):

1. **A finished run is never modified or lost.** Rows whose status is
   ``complete`` or ``diverged`` are frozen by database triggers: any UPDATE or
   DELETE of them aborts. Each result is written in one transaction, so a
   crash leaves a run either finished or not, never half-written.
2. **Resuming re-runs only what did not finish.** A run is identified by a
   hash of its family and config; adding the same sweep again adds nothing.
   ``pending``, ``failed`` and abandoned ``running`` rows are claimable.
3. **No duplicate work between concurrent sweeps.** A driver claims a run
   atomically and renews a lease (heartbeat) while it runs. Another driver
   may take a ``running`` run over only when the lease has expired, or when
   the owning process, on this host, is gone.
4. **A crashed worker fails only its own run.** A worker that raises, dies or
   is killed (out of memory) marks its run ``failed`` with the error; the
   sweep goes on, and re-running it retries the failed runs.
5. **Crash safety.** WAL journal, ``synchronous=FULL``, a busy timeout so
   concurrent writers wait rather than fail.
6. **Foreign or damaged files are refused, never overwritten.** The file
   carries an application id and a schema version; a file that is not a
   scalinglab database, is corrupt, or has a newer schema raises
   :class:`~scalinglab.errors.StoreError` and is left untouched. Older schema
   versions are migrated in place, in one transaction.

Only the sweep driver writes; workers return results to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from scalinglab.errors import StoreError

APPLICATION_ID = 0x53434C42  # "SCLB"
SCHEMA_VERSION = 1
LEASE_SECONDS = 120.0  # a running run whose heartbeat is older than this is abandoned

FINISHED = ("complete", "diverged")
STATUSES = ("pending", "running", "complete", "failed", "diverged")

_SCHEMA = f"""
CREATE TABLE runs (
    key          TEXT PRIMARY KEY,          -- sha256 of family + canonical config JSON
    family       TEXT NOT NULL,
    config       TEXT NOT NULL,             -- JSON
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ({', '.join(repr(s) for s in STATUSES)})),
    cost_flops   REAL,                      -- planned training FLOPs (scheduling, ETA)
    params       INTEGER,
    flops        REAL,
    examples     INTEGER,
    val_loss     REAL,
    val_acc      REAL,
    curve        TEXT,                      -- JSON [[examples_seen, train_loss], ...]
    metrics      TEXT,                      -- JSON, family extras
    wall_s       REAL,
    error        TEXT,
    code_version TEXT,
    versions     TEXT,                      -- JSON: python, torch, numpy, scalinglab
    owner        TEXT,                      -- host:pid:token of the driver running it
    heartbeat    REAL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    created      REAL NOT NULL,
    finished     REAL
);
CREATE TABLE studies (
    name     TEXT PRIMARY KEY,
    family   TEXT NOT NULL,
    info     TEXT NOT NULL DEFAULT '{{}}',  -- JSON: grid, preset, machine, wall time ...
    created  REAL NOT NULL
);
CREATE TABLE study_runs (
    study TEXT NOT NULL REFERENCES studies(name),
    key   TEXT NOT NULL REFERENCES runs(key),
    PRIMARY KEY (study, key)
);
CREATE INDEX runs_status ON runs(status);
CREATE TRIGGER finished_runs_are_frozen BEFORE UPDATE ON runs
    WHEN OLD.status IN ('complete', 'diverged')
    BEGIN SELECT RAISE(ABORT, 'finished runs are immutable'); END;
CREATE TRIGGER finished_runs_are_kept BEFORE DELETE ON runs
    WHEN OLD.status IN ('complete', 'diverged')
    BEGIN SELECT RAISE(ABORT, 'finished runs cannot be deleted'); END;
"""

# Migrations from version v to v + 1, applied in order inside one transaction.
_MIGRATIONS: dict[int, str] = {}


def run_key(family: str, config: dict) -> str:
    """The identity of a run: same family and config, same key."""
    canonical = json.dumps({"family": family, "config": config}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def make_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def _owner_is_dead(owner: str | None) -> bool:
    """True when ``owner`` names a process on this host that no longer exists."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    if host != socket.gethostname():
        return False  # cannot tell: wait for the lease to expire
    try:
        os.kill(int(rest.partition(":")[0]), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError):
        return False
    return False


class RunStore:
    """A SQLite run database (created on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.parent.exists():
            raise StoreError(f"database folder {self.path.parent} does not exist; create it or choose "
                             "another --db path")
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory; --db needs a file path such as runs.db")
        existed = self.path.exists() and self.path.stat().st_size > 0
        if existed:
            _check_header(self.path)
        self.conn = None
        try:
            self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA busy_timeout = 30000")
            _enable_wal(self.conn)
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._open_schema(existed)
        except BaseException as exc:
            if self.conn is not None:
                self.conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(f"{self.path} is not a usable scalinglab database ({exc}); it was not "
                                 "changed. Move it aside and use a new --db path") from exc
            raise

    # -- schema -------------------------------------------------------------
    def _open_schema(self, existed: bool) -> None:
        with self._transaction():
            app_id = self.conn.execute("PRAGMA application_id").fetchone()[0]
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            tables = self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id == 0 and tables == 0:
                for statement in _split_sql(_SCHEMA):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                return
            if app_id != APPLICATION_ID:
                raise StoreError(f"{self.path} is an SQLite database of another program (it has "
                                 "tables but no scalinglab id); it was not changed. Choose another --db path")
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema version {version}, newer than this "
                                 f"scalinglab's {SCHEMA_VERSION}; upgrade scalinglab to read it")
            found = version
            while version < SCHEMA_VERSION:
                if version not in _MIGRATIONS:  # the transaction rolls back the steps already applied
                    raise StoreError(f"{self.path} has schema version {found}, which this scalinglab cannot "
                                     f"migrate to {SCHEMA_VERSION} (no step from {version}); it was not "
                                     "changed. Open it with the scalinglab that wrote it or use another --db")
                for statement in _split_sql(_MIGRATIONS[version]):
                    self.conn.execute(statement)
                version += 1
                self.conn.execute(f"PRAGMA user_version = {version}")

    def _transaction(self):
        return _Transaction(self.conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- studies and runs ---------------------------------------------------
    def add_study(self, name: str, family: str, configs: Iterable[dict],
                  costs: Iterable[float] | None = None, info: dict | None = None) -> list[str]:
        """Register a study and its runs (idempotent); returns the run keys in order."""
        configs = list(configs)
        # REAL column: a float, also when a family computes an integer too big for SQLite
        costs = [None] * len(configs) if costs is None else [None if c is None else float(c) for c in costs]
        now = time.time()
        keys = [run_key(family, c) for c in configs]
        with self._transaction():
            row = self.conn.execute("SELECT family FROM studies WHERE name = ?", (name,)).fetchone()
            if row is not None and row["family"] != family:
                raise StoreError(f"study {name!r} in {self.path} holds {row['family']} runs, not "
                                 f"{family}; choose another study name")
            self.conn.execute(
                "INSERT INTO studies (name, family, info, created) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO NOTHING", (name, family, json.dumps(info or {}), now))
            for key, config, cost in zip(keys, configs, costs):
                self.conn.execute(
                    "INSERT INTO runs (key, family, config, cost_flops, created) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(key) DO NOTHING",
                    (key, family, json.dumps(config, sort_keys=True), cost, now))
                self.conn.execute("INSERT OR IGNORE INTO study_runs (study, key) VALUES (?, ?)",
                                  (name, key))
        return keys

    def update_study_info(self, name: str, **info: Any) -> None:
        with self._transaction():
            row = self.conn.execute("SELECT info FROM studies WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise StoreError(f"no study named {name!r} in {self.path}")
            merged = {**json.loads(row["info"]), **info}
            self.conn.execute("UPDATE studies SET info = ? WHERE name = ?", (json.dumps(merged), name))

    def study_info(self, name: str) -> dict:
        row = self.conn.execute("SELECT info FROM studies WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise StoreError(f"no study named {name!r} in {self.path}")
        return json.loads(row["info"])

    def studies(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT name, family, info, created FROM studies ORDER BY created",
                                 self.conn)

    def claim(self, key: str, owner: str) -> bool:
        """Atomically take a run that is pending, failed, or abandoned by its driver."""
        now = time.time()
        with self._transaction():
            row = self.conn.execute("SELECT status, owner, heartbeat FROM runs WHERE key = ?",
                                    (key,)).fetchone()
            if row is None or row["status"] in FINISHED:
                return False
            if row["status"] == "running" and row["owner"] != owner:
                fresh = row["heartbeat"] is not None and now - row["heartbeat"] < LEASE_SECONDS
                if fresh and not _owner_is_dead(row["owner"]):
                    return False
            self.conn.execute(
                "UPDATE runs SET status = 'running', owner = ?, heartbeat = ?, error = NULL, "
                "attempts = attempts + 1 WHERE key = ?", (owner, now, key))
        return True

    def heartbeat(self, owner: str) -> None:
        """Renew the lease on every run this driver holds."""
        with self._transaction():
            self.conn.execute("UPDATE runs SET heartbeat = ? WHERE owner = ? AND status = 'running'",
                              (time.time(), owner))

    def finish(self, key: str, result: dict, *, wall_s: float, code_version: str,
               versions: dict) -> str:
        """Record a finished run's result; returns its final status."""
        status = "diverged" if _not_finite(result["val_loss"]) else "complete"
        with self._transaction():
            self.conn.execute(
                "UPDATE runs SET status = ?, params = ?, flops = ?, examples = ?, val_loss = ?, "
                "val_acc = ?, curve = ?, metrics = ?, wall_s = ?, code_version = ?, versions = ?, "
                "error = NULL, finished = ? WHERE key = ?",
                (status, int(result["params"]), float(result["flops"]), int(result["examples"]),
                 None if status == "diverged" else float(result["val_loss"]),
                 _float_or_none(result.get("val_acc")), json.dumps(result.get("curve", [])),
                 json.dumps(result.get("metrics", {}), default=float), wall_s, code_version,
                 json.dumps(versions), time.time(), key))
        return status

    def fail(self, key: str, error: str) -> None:
        with self._transaction():
            self.conn.execute(
                "UPDATE runs SET status = 'failed', error = ?, owner = NULL WHERE key = ? "
                "AND status = 'running'", (error[-4000:], key))

    def release(self, owner: str) -> None:
        """Hand back this driver's unfinished runs (on a clean interrupt)."""
        with self._transaction():
            self.conn.execute("UPDATE runs SET status = 'pending', owner = NULL "
                              "WHERE owner = ? AND status = 'running'", (owner,))

    def unfinished(self, study: str) -> list[tuple[str, dict, float]]:
        """(key, config, planned FLOPs) of the study's runs not yet finished, costliest first."""
        rows = self.conn.execute(
            "SELECT key, config, cost_flops FROM runs JOIN study_runs USING (key) "
            "WHERE study = ? AND status NOT IN ('complete', 'diverged') "
            "ORDER BY cost_flops DESC, key", (study,)).fetchall()
        return [(r["key"], json.loads(r["config"]), r["cost_flops"] or 0.0) for r in rows]

    def status_counts(self, study: str | None = None) -> dict[str, int]:
        sql, args = "SELECT status, count(*) AS n FROM runs", ()
        if study is not None:
            sql += " JOIN study_runs USING (key) WHERE study = ?"
            args = (study,)
        rows = self.conn.execute(sql + " GROUP BY status", args).fetchall()
        return {r["status"]: r["n"] for r in rows}

    def runs(self, study: str | None = None, status: str | Iterable[str] | None = None,
             family: str | None = None) -> pd.DataFrame:
        """All runs as a DataFrame: one row per run, config keys as columns."""
        sql, where, args = "SELECT runs.* FROM runs", [], []
        if study is not None:
            sql += " JOIN study_runs USING (key)"
            where.append("study_runs.study = ?")
            args.append(study)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args.extend(statuses)
        if family is not None:
            where.append("family = ?")
            args.append(family)
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.conn.execute(sql + " ORDER BY created, key", args).fetchall()
        return runs_frame([dict(r) for r in rows])

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]


def runs_frame(rows: list[dict]) -> pd.DataFrame:
    """Flatten run rows into a DataFrame: config keys become columns beside the results."""
    records = []
    for row in rows:
        config = json.loads(row["config"])
        record = {**config, **{k: v for k, v in row.items() if k != "config"}}
        record["curve"] = json.loads(row["curve"]) if row.get("curve") else []
        record["metrics"] = json.loads(row["metrics"]) if row.get("metrics") else {}
        records.append(record)
    return pd.DataFrame.from_records(records)


def _check_header(path: Path) -> None:
    """Refuse, without writing a byte, a file that is not ours or not a database.

    Only SQLite reads the file: closing any other descriptor of it would drop
    the POSIX locks that this process's open connections hold on it (e.g. the
    sweep's heartbeat thread opens a second store), and other processes
    would then stop seeing this process's commits.
    """
    try:  # read-only: sees committed WAL content, writes nothing
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            if con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID:
                return
            tables = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise StoreError(f"{path} is not an SQLite database (corrupted, or another kind of file); "
                             "it was not changed. Move it aside or choose another --db path") from None
        raise StoreError(f"{path} is not a usable SQLite database ({exc}); it was not changed. "
                         "Move it aside or choose another --db path") from exc
    if tables:
        raise StoreError(f"{path} is an SQLite database of another program (it has tables but no "
                         "scalinglab id); it was not changed. Choose another --db path")


def _split_sql(script: str) -> list[str]:
    """Split a schema script into statements, keeping trigger bodies whole."""
    statements, current = [], []
    for line in script.strip().splitlines():
        code = line.split("--")[0].rstrip()
        if not code:
            continue
        current.append(code)
        if code.endswith(";") and (not current[0].lstrip().startswith("CREATE TRIGGER")
                                   or code.endswith("END;")):
            statements.append("\n".join(current))
            current = []
    return statements


def _enable_wal(conn: sqlite3.Connection, wait_s: float = 30.0) -> None:
    """Switch the file to WAL, waiting for rivals that are switching it at the same moment.

    SQLite may answer "database is locked" to this pragma at once, without
    calling the busy handler, while another connection converts a new file;
    so retry here until ``wait_s`` has passed.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02 + 0.03 * os.urandom(1)[0] / 255)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (autocommit connection)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def _not_finite(x) -> bool:
    return x is None or not (float(x) == float(x)) or abs(float(x)) == float("inf")


def _float_or_none(x) -> float | None:
    return None if x is None or _not_finite(x) else float(x)
