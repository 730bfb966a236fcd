"""The run store: every run of every sweep, in one SQLite file.

Guarantees (tested in ``tests/test_store.py``, ``tests/test_store_faults.py``,
``tests/test_faults.py`` and ``tests/test_sweep_resume.py``; in plain words,
with each test named, in ``docs/guarantees.md``):

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
   the owning process, on this host, is gone. If the first driver then
   finishes too, the first result stays and :meth:`RunStore.finish` returns
   ``TAKEN_OVER`` to the late one instead of raising.
4. **A crashed worker fails only its own run.** A worker that raises, dies or
   is killed (out of memory) marks its run ``failed`` with the error; the
   sweep goes on, and re-running it retries the failed runs.
5. **Crash safety.** WAL journal, ``synchronous=FULL``, a busy timeout so
   concurrent writers wait rather than fail.
6. **Foreign or damaged files are refused, never overwritten.** The file
   carries an application id and a schema version; a file that is not a
   scalinglab database, is corrupt, or has a newer schema raises
   :class:`~scalinglab.errors.StoreError` and is left untouched: every check
   runs on a read-only connection before the first write. Older schema
   versions are migrated in place, in one transaction.
7. **Reading never writes.** ``RunStore(path, readonly=True)`` (``runs``,
   ``report``, ``fit``) opens a ``mode=ro`` connection: it creates no schema,
   refuses an empty or missing file, and reads a database on a read-only disk.
8. **SQLite failures are one-line errors.** A damaged page, a full disk, an
   I/O error or a read-only file raise :class:`~scalinglab.errors.StoreError`
   naming SQLite's error and what to do; the transaction in flight is rolled
   back, so what was recorded before stays intact.

Only the sweep driver writes; workers return results to it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

import pandas as pd

from scalinglab.errors import StoreError

APPLICATION_ID = 0x53434C42  # "SCLB"
SCHEMA_VERSION = 1
LEASE_SECONDS = 120.0  # a running run whose heartbeat is older than this is abandoned

FINISHED = ("complete", "diverged")
STATUSES = ("pending", "running", "complete", "failed", "diverged")
TAKEN_OVER = "taken_over"  # what finish() returns when another driver finished the run first

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


def _translate_sqlite_errors(cls):
    """Wrap every public method of ``cls`` so SQLite failures become one-line StoreErrors.

    IntegrityError (a trigger refusing to change a finished run) is a bug in
    the caller, not a fault of the file, so it passes through unchanged.
    """
    def wrap(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except sqlite3.IntegrityError:
                raise
            except sqlite3.DatabaseError as exc:
                raise StoreError(explain_sqlite_error(self.path, exc)) from None
        return wrapper

    for name, value in list(vars(cls).items()):
        if callable(value) and not name.startswith("_"):
            setattr(cls, name, wrap(value))
    return cls


@_translate_sqlite_errors
class RunStore:
    """A SQLite run database (created on first use; ``readonly=True`` only reads an existing one)."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        if not self.path.parent.exists():
            raise StoreError(f"database folder {self.path.parent} does not exist; create it or choose "
                             "another --db path")
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory; --db needs a file path such as runs.db")
        if not readonly and self.path.exists() and self.path.stat().st_size:
            _check_header(self.path)  # every refusal happens here, before any write
        self.conn = None
        try:
            if readonly:
                self.conn = open_readonly(self.path)
            else:
                self.conn = sqlite3.connect(_uri(self.path, "rwc"), uri=True, timeout=30.0,
                                            isolation_level=None)
                self.conn.execute("PRAGMA busy_timeout = 30000")
                self._open_schema()  # checks again under the write lock, then creates or migrates
                _enable_wal(self.conn)  # only once the file is known to be ours, at our version
                self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA foreign_keys = ON")
        except BaseException as exc:
            if self.conn is not None:
                self.conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(explain_sqlite_error(self.path, exc)) from None
            raise

    # -- schema -------------------------------------------------------------
    def _open_schema(self) -> None:
        with self._transaction():
            app_id, version, tables = _identity(self.conn)
            if app_id == 0 and version == 0 and tables == 0:
                for statement in _split_sql(_SCHEMA):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                return
            problem = _refusal(self.path, app_id, version, tables, readonly=False)
            if problem:
                raise StoreError(problem)
            while version < SCHEMA_VERSION:  # every step exists: _refusal checked
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
    def _register_study(self, name: str, family: str, info: dict | None, now: float) -> None:
        """Create study ``name`` if new (inside the caller's transaction); refuse one of another family."""
        row = self.conn.execute("SELECT family FROM studies WHERE name = ?", (name,)).fetchone()
        if row is not None and row["family"] != family:
            raise StoreError(f"study {name!r} in {self.path} holds {row['family']} runs, not "
                             f"{family}; choose another study name")
        self.conn.execute(
            "INSERT INTO studies (name, family, info, created) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO NOTHING", (name, family, json.dumps(info or {}), now))

    def add_study(self, name: str, family: str, configs: Iterable[dict],
                  costs: Iterable[float] | None = None, info: dict | None = None) -> list[str]:
        """Register a study and its runs (idempotent); returns the run keys in order."""
        configs = list(configs)
        # REAL column: a float, also when a family computes an integer too big for SQLite
        costs = [None] * len(configs) if costs is None else [None if c is None else float(c) for c in costs]
        now = time.time()
        keys = [run_key(family, c) for c in configs]
        with self._transaction():
            self._register_study(name, family, info, now)
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
        rows = self.conn.execute("SELECT name, family, info, created FROM studies ORDER BY created").fetchall()
        return pd.DataFrame([dict(r) for r in rows], columns=["name", "family", "info", "created"])

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

    def heartbeat(self, owner: str) -> bool:
        """Renew the lease on every run this driver holds; False when the write failed.

        Best effort: a missed beat (a full disk, a long lock) costs nothing while
        the lease (120 s) outlasts the next beats, so it must not stop the sweep.
        """
        try:
            with self._transaction():
                self.conn.execute("UPDATE runs SET heartbeat = ? WHERE owner = ? AND status = 'running'",
                                  (time.time(), owner))
        except sqlite3.OperationalError:
            return False
        return True

    def finish(self, key: str, result: dict, *, wall_s: float, code_version: str,
               versions: dict, owner: str | None = None) -> str:
        """Record a finished run's result; returns its final status, or ``TAKEN_OVER``.

        The first result to arrive is kept. A driver whose lease expired while
        it trained (a suspended laptop, SIGSTOP) may find that the driver that
        took the run over has already finished it: its result is then dropped
        and ``TAKEN_OVER`` returned, and nothing raises. If the run is still
        unfinished (the other driver is training it, or failed it), this result
        is recorded, since it is as good as the one still to come.
        """
        status = "diverged" if _not_finite(result["val_loss"]) else "complete"
        with self._transaction():
            row = self.conn.execute("SELECT status FROM runs WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise StoreError(f"run {key} is not in {self.path}; register it with add_study first")
            if row["status"] in FINISHED:
                return TAKEN_OVER
            self.conn.execute(
                "UPDATE runs SET status = ?, params = ?, flops = ?, examples = ?, val_loss = ?, "
                "val_acc = ?, curve = ?, metrics = ?, wall_s = ?, code_version = ?, versions = ?, "
                "error = NULL, finished = ?, owner = coalesce(?, owner) WHERE key = ?",
                (status, int(result["params"]), float(result["flops"]), int(result["examples"]),
                 None if status == "diverged" else float(result["val_loss"]),
                 _float_or_none(result.get("val_acc")), json.dumps(result.get("curve", [])),
                 json.dumps(result.get("metrics", {}), default=float), wall_s, code_version,
                 json.dumps(versions), time.time(), owner, key))
        return status

    def fail(self, key: str, error: str, owner: str | None = None) -> bool:
        """Mark a running run failed; with ``owner``, only if that driver still holds it.

        Returns False when nothing changed: the run finished, or (with
        ``owner``) another driver took it over and is training it.
        """
        sql = "UPDATE runs SET status = 'failed', error = ?, owner = NULL WHERE key = ? AND status = 'running'"
        args: tuple = (error[-4000:], key)
        if owner is not None:
            sql, args = sql + " AND owner = ?", args + (owner,)
        with self._transaction():
            return self.conn.execute(sql, args).rowcount > 0

    def release(self, owner: str) -> None:
        """Hand back this driver's unfinished runs (on a clean interrupt).

        Best effort: when the database cannot be written (a full disk), the
        runs stay ``running`` and are taken over once this process is gone.
        """
        try:
            with self._transaction():
                self.conn.execute("UPDATE runs SET status = 'pending', owner = NULL "
                                  "WHERE owner = ? AND status = 'running'", (owner,))
        except sqlite3.OperationalError:
            pass

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
        """All runs as a DataFrame: one row per run, config keys as columns.

        An unknown ``status`` or ``study`` is a StoreError listing the valid
        values, not an empty table that would read as "no such runs yet".
        """
        sql, where, args = "SELECT runs.* FROM runs", [], []
        if study is not None:
            known = [r[0] for r in self.conn.execute("SELECT name FROM studies ORDER BY created")]
            if study not in known:
                raise StoreError(f"no study named {study!r} in {self.path}; its studies: "
                                 f"{', '.join(known) if known else 'none yet'}")
            sql += " JOIN study_runs USING (key)"
            where.append("study_runs.study = ?")
            args.append(study)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            bad = [s for s in statuses if s not in STATUSES]
            if bad:
                raise StoreError(f"status {', '.join(map(repr, bad))} is invalid: must be one of "
                                 f"{', '.join(STATUSES)}")
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

    def add_finished_runs(self, name: str, family: str, runs: Iterable[tuple[dict, dict]], *,
                          info: dict | None = None) -> list[str]:
        """Register study ``name`` with runs finished elsewhere (imports), in ONE transaction.

        ``runs`` are ``(config, result)`` pairs; a result has the keys of
        :meth:`finish` (``params``, ``examples``, ``flops`` may be None) and an
        optional ``wall_s``. Returns the keys added: a run already stored (same
        key) is linked to the study and left as it was, so a re-import adds nothing.
        """
        runs, now, added = list(runs), time.time(), []
        with self._transaction():
            self._register_study(name, family, info, now)
            for config, result in runs:
                key = run_key(family, config)
                status = "diverged" if _not_finite(result.get("val_loss")) else "complete"
                as_int = [None if result.get(k) is None else int(result[k]) for k in ("params", "examples")]
                cursor = self.conn.execute(
                    "INSERT INTO runs (key, family, config, status, cost_flops, params, flops, examples, "
                    "val_loss, val_acc, curve, metrics, wall_s, created, finished) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
                    (key, family, json.dumps(config, sort_keys=True), status, _float_or_none(result.get("flops")),
                     as_int[0], _float_or_none(result.get("flops")), as_int[1],
                     None if status == "diverged" else float(result["val_loss"]),
                     _float_or_none(result.get("val_acc")), json.dumps(result.get("curve", [])),
                     json.dumps(result.get("metrics", {}), default=float), _float_or_none(result.get("wall_s")),
                     now, now))
                if cursor.rowcount:
                    added.append(key)
                self.conn.execute("INSERT OR IGNORE INTO study_runs (study, key) VALUES (?, ?)", (name, key))
        return added


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


def _uri(path: Path, mode: str) -> str:
    """A ``file:`` URI for ``path``; '#', '?', '%' and spaces are escaped, so SQLite opens this very file."""
    return f"file:{quote(str(path.absolute()))}?mode={mode}"


def _connect_ro(path: Path) -> sqlite3.Connection:
    """A read-only connection (``mode=ro``): SQLite writes nothing into the database file.

    A WAL database on a read-only disk whose last writer closed cleanly (no
    ``-wal`` content) cannot get the ``-shm`` file SQLite wants; nothing can
    change such a file, so it is then read as immutable.
    """
    con = sqlite3.connect(_uri(path, "ro"), uri=True, timeout=30.0, isolation_level=None)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError as exc:
        con.close()
        wal = Path(f"{path}-wal")
        if "unable to open" not in str(exc) or (wal.exists() and wal.stat().st_size > 0):
            raise
    return sqlite3.connect(_uri(path, "ro") + "&immutable=1", uri=True, isolation_level=None)


def _identity(con: sqlite3.Connection) -> tuple[int, int, int]:
    """(application id, schema version, number of schema objects) of an open database."""
    app_id = con.execute("PRAGMA application_id").fetchone()[0]
    version = con.execute("PRAGMA user_version").fetchone()[0]
    tables = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    return app_id, version, tables


def _refusal(path: Path, app_id: int, version: int, tables: int, *, readonly: bool) -> str | None:
    """Why this file cannot be opened as asked, or None. A brand-new file is fine only for writing."""
    if app_id != APPLICATION_ID:
        if tables:
            return (f"{path} is an SQLite database of another program (it has tables but no scalinglab id); "
                    "it was not changed. Choose another --db path")
        if app_id or version:
            return (f"{path} is an SQLite database of another program (application id {app_id}, user version "
                    f"{version}, no scalinglab id); it was not changed. Choose another --db path")
        if readonly:
            return (f"{path} is an empty SQLite database, not a scalinglab run store; it was not changed. "
                    "Run a sweep into it first, or check --db")
        return None
    if version > SCHEMA_VERSION:
        return (f"{path} has schema version {version}, newer than this scalinglab's {SCHEMA_VERSION}; "
                "upgrade scalinglab to read it (the file was not changed)")
    missing = [v for v in range(version, SCHEMA_VERSION) if v not in _MIGRATIONS]
    if missing:
        return (f"{path} has schema version {version}, which this scalinglab cannot migrate to "
                f"{SCHEMA_VERSION} (no step from {missing[0]}); it was not changed. Open it with the "
                "scalinglab that wrote it or use another --db")
    if readonly and version < SCHEMA_VERSION:
        return (f"{path} has schema version {version}, older than this scalinglab's {SCHEMA_VERSION}; reading "
                "commands do not upgrade it: run a sweep on it once (that upgrades it in place)")
    return None


def _check(con: sqlite3.Connection, path: Path, *, readonly: bool) -> None:
    """Refuse a foreign, unsupported or damaged database, reading only."""
    problem = _refusal(path, *_identity(con), readonly=readonly)
    if problem:
        raise StoreError(problem)
    verdict = con.execute("PRAGMA quick_check(1)").fetchone()[0]
    if verdict != "ok":
        verdict = "; ".join(line.strip("* ") for line in verdict.splitlines() if line.strip("* "))
        raise StoreError(explain_sqlite_error(path, sqlite3.DatabaseError(f"quick_check: {verdict}")))


def _check_header(path: Path) -> None:
    """Refuse, without writing a byte, a file that is not ours, not a database or damaged.

    Only SQLite reads the file: closing any other descriptor of it would drop
    the POSIX locks that this process's open connections hold on it (e.g. the
    sweep's heartbeat thread opens a second store), and other processes
    would then stop seeing this process's commits.
    """
    try:
        con = _connect_ro(path)
        try:
            _check(con, path, readonly=False)
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(explain_sqlite_error(path, exc)) from None


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A checked, read-only connection to the scalinglab database at ``path`` (for any reader).

    Raises StoreError for a missing, empty, foreign, newer, older or damaged
    file; the file is never written.
    """
    path = Path(path)
    what = ("does not exist" if not path.exists() else "is not a file" if not path.is_file()
            else "is empty (0 bytes)" if path.stat().st_size == 0 else None)
    if what:
        raise StoreError(f"{path} {what}, so it holds no runs; it was not changed. Run a sweep into it "
                         "first, or check --db")
    con = None
    try:
        con = _connect_ro(path)
        _check(con, path, readonly=True)
        return con
    except BaseException as exc:
        if con is not None:
            con.close()
        if isinstance(exc, sqlite3.DatabaseError):
            raise StoreError(explain_sqlite_error(path, exc)) from None
        raise


def explain_sqlite_error(path: str | Path, exc: Exception) -> str:
    """One line for a failed SQLite call on ``path``: SQLite's own words, then what to do."""
    text = str(exc).strip() or type(exc).__name__
    low = text.lower()
    if "disk i/o" in low and _no_space_left(Path(path)):
        low = "full"  # SQLite reports some failed writes to a full disk (the WAL's) as I/O errors
    if "unable to open" in low and not (os.access(path, os.W_OK) and os.access(Path(path).parent, os.W_OK)):
        low = "readonly"  # a read-only disk or folder: SQLite cannot create the -wal and -shm files
    if "full" in low:
        return (f"{path}: the disk is full (SQLite: {text}); the database is intact and keeps every result "
                "recorded so far. Free some space and run the same command again")
    if "disk i/o" in low:
        return (f"{path}: a read or write failed (SQLite: {text}); the last transaction was rolled back, "
                "earlier results are intact. Check the disk and its free space, then run the same command again")
    if "readonly" in low or "read-only" in low:
        return (f"{path} cannot be written (SQLite: {text}); reading commands (runs, report, fit) still work. "
                "To sweep, copy the database to a writable folder or make it writable")
    if "locked" in low or "busy" in low:
        return (f"{path} stayed locked by another process for 30 s (SQLite: {text}); wait for the other "
                "sweep, or stop a stuck one, then run the command again")
    if "not a database" in low:
        return (f"{path} is not an SQLite database (corrupted, or another kind of file); it was not changed. "
                "Move it aside or choose another --db path")
    if "malformed" in low or "corrupt" in low or "quick_check" in low:
        return (f"{path} is damaged (SQLite: {text}); it was not changed. Keep it, use a new --db path, and "
                f"try `sqlite3 {path} .recover | sqlite3 recovered.db` to rescue its finished runs")
    if "unable to open" in low:
        return (f"{path} cannot be opened (SQLite: {text}); check the folder's permissions. On a read-only "
                "disk, a database whose -wal file holds data cannot be read: copy the files to a writable disk")
    return (f"{path} is not a usable scalinglab database (SQLite: {text}); it was not changed. Move it "
            "aside or use another --db path")


def _no_space_left(path: Path) -> bool:
    try:
        return os.statvfs(path.parent).f_bavail == 0
    except OSError:
        return False


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
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return False
            except sqlite3.Error:  # e.g. a full disk at commit: undo, then report it
                self._rollback()
                raise
        self._rollback()
        return False

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:  # SQLite already rolled back (after some I/O errors)
            pass


def _not_finite(x) -> bool:
    return x is None or not (float(x) == float(x)) or abs(float(x)) == float("inf")


def _float_or_none(x) -> float | None:
    return None if x is None or _not_finite(x) else float(x)
