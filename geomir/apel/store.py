"""The durable checkpoint store of APEL: run journals, leases, events and saved state.

A run's journal is its list of steps; a step's result is committed before the next step
starts, so a crashed run resumes by replaying it. Several worker processes (on several
machines with PostgreSQL) share one store: a run is owned by one worker at a time through
a lease, every journal or status write checks that lease in the same transaction, and
``claim_expired`` hands runs whose owner died to exactly one new worker. Events wait
under a correlation id until exactly one run takes each. ``save_state`` keeps named
checkpoints (training state among them) in the same store.

Values are stored as given: blobs are ``bytes`` (see ``state_codec``), times are
``time.time()`` seconds. Leases compare the clocks of the workers, which must agree to
well within a lease. ``open_store`` picks the backend from a URL or path.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from geomir.diagnostics import GeomirError

RUN_STATUSES = ("running", "waiting", "completed", "compensated", "failed")
FINAL_STATUSES = ("completed", "compensated", "failed")
BUSY_TIMEOUT_S = 30.0


class StoreError(GeomirError):
    """The store cannot be opened, or refuses an operation."""


class RunExists(StoreError):
    """A run with this id is already in the store."""


class LeaseLost(StoreError):
    """A worker wrote to a run whose lease it no longer holds; nothing was committed."""


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    workflow: str
    source_hash: str
    status: str
    input: bytes
    output: bytes | None
    error: str | None
    correlation_id: str | None
    owner: str | None
    lease_until: float | None
    waiting_for: str | None
    created: float
    updated: float
    wake_at: float | None = None  # a waiting run's receive timeout: a worker resumes it then


@dataclass(frozen=True)
class StepRecord:
    run_id: str
    seq: int
    step_id: str
    kind: str
    status: str
    result: bytes | None
    error: str | None
    started: float
    finished: float | None
    attempt: int


@dataclass(frozen=True)
class EventRecord:
    event_id: int
    correlation_id: str
    name: str
    payload: bytes
    created: float
    consumed_by: str | None


class Store(ABC):
    """What the runtime needs from a store. Every method is one atomic transaction."""

    # -- runs -------------------------------------------------------------------------
    @abstractmethod
    def create_run(self, run_id: str, workflow: str, source_hash: str, input: bytes,
                   correlation_id: str | None, owner: str | None, lease_s: float) -> RunRecord:
        """A new run in status "running", leased to ``owner`` (None: unowned, claimable)."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord | None: ...

    @abstractmethod
    def list_runs(self, status: str | None = None, workflow: str | None = None,
                  correlation_id: str | None = None) -> list[RunRecord]:
        """Runs matching every given filter, oldest first."""

    # -- leases -----------------------------------------------------------------------
    @abstractmethod
    def acquire(self, run_id: str, owner: str, lease_s: float) -> bool:
        """Lease a "running" or "waiting" run that is unowned, expired, or already ``owner``'s."""

    @abstractmethod
    def renew(self, run_id: str, owner: str, lease_s: float) -> bool:
        """Extend ``owner``'s lease; False once another worker has taken the run or it ended."""

    @abstractmethod
    def release(self, run_id: str, owner: str) -> None:
        """Give up the lease if ``owner`` holds it (no-op otherwise)."""

    @abstractmethod
    def holder(self, run_id: str) -> tuple[str, float] | None:
        """The recorded ``(owner, lease_until)``, expired or not; None when unowned."""

    @abstractmethod
    def claim_expired(self, owner: str, lease_s: float, limit: int = 10) -> list[str]:
        """Lease up to ``limit`` "running" runs that are unowned or expired, oldest first.

        Concurrent claimers (threads, processes, machines) never get the same run."""

    @abstractmethod
    def claim_due(self, owner: str, lease_s: float, limit: int = 10) -> list[str]:
        """Lease up to ``limit`` "waiting" runs whose ``wake_at`` has passed (a receive
        timed out), earliest first; as ``claim_expired``, each goes to one claimer."""

    # -- journal (lease-checked) ------------------------------------------------------
    @abstractmethod
    def begin_step(self, run_id: str, owner: str, seq: int, step_id: str, kind: str, attempt: int = 1) -> None:
        """Record step ``step_id`` at position ``seq`` as "started" (a retry restarts it).

        ``attempt`` is the number of the attempt about to run, written before it runs: a
        crash during it leaves the count in the journal, and the engine's attempt budget
        reads it when the run is resumed (docs/apel.md, Attempts across crashes).

        Raises LeaseLost unless ``owner`` holds a live lease, and StoreError if the step
        is already completed or ``seq`` holds another step."""

    @abstractmethod
    def complete_step(self, run_id: str, owner: str, seq: int, step_id: str, kind: str, result: bytes) -> None:
        """Commit the step's result (creating the row if needed); checked like ``begin_step``."""

    @abstractmethod
    def fail_step(self, run_id: str, owner: str, seq: int, step_id: str, kind: str, error: str) -> None:
        """Record the step as "failed" (creating the row if needed); checked like ``begin_step``."""

    @abstractmethod
    def journal(self, run_id: str) -> list[StepRecord]:
        """The run's steps ordered by ``seq``."""

    @abstractmethod
    def set_status(self, run_id: str, owner: str, status: str, output: bytes | None = None,
                   error: str | None = None, waiting_for: str | None = None, wake_at: float | None = None) -> None:
        """Set the run's status (lease-checked). Every status but "running" clears the
        owner: a finished run is nobody's, and a "waiting" one is resumed by whichever
        worker acquires it when its event comes, or claims it at ``wake_at``."""

    # -- events -----------------------------------------------------------------------
    @abstractmethod
    def post_event(self, correlation_id: str, name: str, payload: bytes) -> int:
        """Queue an event; returns its id (ids increase in posting order)."""

    @abstractmethod
    def take_event(self, correlation_id: str, name: str, run_id: str) -> EventRecord | None:
        """Consume the oldest unconsumed matching event for ``run_id``; each event is taken once."""

    @abstractmethod
    def events(self, correlation_id: str) -> list[EventRecord]:
        """All events of a correlation id, consumed or not, in posting order."""

    # -- named state ------------------------------------------------------------------
    @abstractmethod
    def save_state(self, namespace: str, key: str, blob: bytes, meta: dict) -> None:
        """Save (or overwrite) a checkpoint; it becomes the namespace's most recent one."""

    @abstractmethod
    def load_state(self, namespace: str, key: str | None = None) -> tuple[str, bytes, dict] | None:
        """``(key, blob, meta)`` of ``key``, or of the most recently saved key if None."""

    @abstractmethod
    def state_keys(self, namespace: str) -> list[str]:
        """The namespace's keys, least recently saved first."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(url: str | Path) -> Store:
    """``postgresql://...`` / ``postgres://...``: PostgresStore; ``sqlite:///rel.db``,
    ``sqlite:////abs.db`` (SQLAlchemy's spelling) or a plain path: SqliteStore."""
    if isinstance(url, Path):
        return SqliteStore(url)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    if url.startswith("sqlite:"):
        if not url.startswith("sqlite:///"):
            raise StoreError(f"cannot open store {url!r}: write sqlite:///relative.db or sqlite:////absolute.db")
        return SqliteStore(url.removeprefix("sqlite:///"))
    if "://" in url:
        raise StoreError(f"cannot open store: unknown scheme {url.split('://')[0]!r} "
                         "(use postgresql://..., sqlite:///path or a file path)")
    return SqliteStore(url)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS apel_runs (
    ord {serial}, run_id TEXT NOT NULL UNIQUE, workflow TEXT NOT NULL, source_hash TEXT NOT NULL,
    status TEXT NOT NULL, input {blob} NOT NULL, output {blob}, error TEXT, correlation_id TEXT,
    owner TEXT, lease_until {real}, waiting_for TEXT, created {real} NOT NULL, updated {real} NOT NULL,
    wake_at {real});
CREATE INDEX IF NOT EXISTS apel_runs_status ON apel_runs (status, ord);
CREATE INDEX IF NOT EXISTS apel_runs_correlation ON apel_runs (correlation_id);
CREATE TABLE IF NOT EXISTS apel_steps (
    run_id TEXT NOT NULL REFERENCES apel_runs (run_id), seq {int} NOT NULL, step_id TEXT NOT NULL,
    kind TEXT NOT NULL, status TEXT NOT NULL, result {blob}, error TEXT, started {real} NOT NULL,
    finished {real}, attempt {int} NOT NULL, PRIMARY KEY (run_id, step_id), UNIQUE (run_id, seq));
CREATE TABLE IF NOT EXISTS apel_events (
    event_id {serial}, correlation_id TEXT NOT NULL, name TEXT NOT NULL, payload {blob} NOT NULL,
    created {real} NOT NULL, consumed_by TEXT);
CREATE INDEX IF NOT EXISTS apel_events_pending ON apel_events (correlation_id, name, event_id);
CREATE TABLE IF NOT EXISTS apel_states (
    namespace TEXT NOT NULL, state_key TEXT NOT NULL, blob {blob} NOT NULL, meta TEXT NOT NULL,
    ord {int} NOT NULL, PRIMARY KEY (namespace, state_key));
CREATE INDEX IF NOT EXISTS apel_states_order ON apel_states (namespace, ord)
"""

_RUN = ("run_id, workflow, source_hash, status, input, output, error, correlation_id, owner, "
        "lease_until, waiting_for, created, updated, wake_at")
_STEP = "run_id, seq, step_id, kind, status, result, error, started, finished, attempt"
_EVENT = "event_id, correlation_id, name, payload, created, consumed_by"
_LIVE = "status IN ('running', 'waiting')"
_EXPIRED = "(owner IS NULL OR lease_until IS NULL OR lease_until <= ?)"

_BEGIN_STEP = """
INSERT INTO apel_steps (run_id, seq, step_id, kind, status, result, error, started, finished, attempt)
VALUES (?, ?, ?, ?, 'started', NULL, NULL, ?, NULL, ?)
ON CONFLICT (run_id, step_id) DO UPDATE SET seq = excluded.seq, kind = excluded.kind, status = 'started',
    result = NULL, error = NULL, started = excluded.started, finished = NULL, attempt = excluded.attempt
WHERE apel_steps.status <> 'completed'
"""
_FINISH_STEP = """
INSERT INTO apel_steps (run_id, seq, step_id, kind, status, result, error, started, finished, attempt)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
ON CONFLICT (run_id, step_id) DO UPDATE SET seq = excluded.seq, kind = excluded.kind,
    status = excluded.status, result = excluded.result, error = excluded.error, finished = excluded.finished
WHERE apel_steps.status <> 'completed'
"""


class _Query:
    """Runs ``?``-placeholder SQL on one connection (PostgreSQL spells them ``%s``)."""

    def __init__(self, conn: Any, percent: bool):
        self._conn, self._percent = conn, percent

    def _execute(self, sql: str, params: tuple) -> Any:
        return self._conn.execute(sql.replace("?", "%s") if self._percent else sql, params)

    def one(self, sql: str, params: tuple = ()) -> tuple | None:
        rows = self._execute(sql, params).fetchall()  # fetch all: SQLite finishes RETURNING only then
        return rows[0] if rows else None

    def all(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._execute(sql, params).fetchall()

    def run(self, sql: str, params: tuple = ()) -> int:
        """Execute a write; returns the number of rows it changed."""
        return self._execute(sql, params).rowcount


class _Held:
    """A connection of one thread of one process; closed when that thread ends."""

    def __init__(self, conn: Any):
        self.conn, self.pid = conn, os.getpid()

    def close(self) -> None:
        if self.pid == os.getpid():  # never close a connection a forked child inherited
            self.conn.close()

    __del__ = close


class _SqlStore(Store):
    """The store on a SQL database; subclasses give the dialect and the connections."""

    _types: dict[str, str]
    _for_update = ""  # suffix locking a row read for a read-modify-write
    _skip_locked = ""  # suffix locking rows, skipping those another transaction holds
    _next_state_ord: str  # SQL expression: a state order number above all earlier ones
    _percent = False
    _errors: tuple[type[Exception], ...]
    _integrity_error: type[Exception]
    _has_column: str  # SQL taking (table, column): a row when the column exists

    def __init__(self, name: str):
        self.name = name
        self._local = threading.local()
        self._held: weakref.WeakSet[_Held] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False
        try:
            with self._tx() as q:
                for statement in self._ddl():
                    q.run(statement)
                if not q.all(self._has_column, ("apel_runs", "wake_at")):  # a store made before wake_at
                    q.run(f"ALTER TABLE apel_runs ADD COLUMN wake_at {self._types['real']}")
        except StoreError as e:
            self.close()
            raise StoreError(f"cannot open store {name!r}: {e.message}") from None

    @abstractmethod
    def _connect(self) -> Any: ...

    @abstractmethod
    def _transaction(self, conn: Any) -> Any:
        """A context manager: one write transaction, committed on success."""

    def _usable(self, conn: Any) -> bool:
        return True

    def _ddl(self) -> list[str]:
        return [s for s in _SCHEMA.format(**self._types).split(";") if s.strip()]

    def _conn(self) -> Any:
        if self._closed:
            raise StoreError(f"store {self.name!r} is closed")
        held = getattr(self._local, "held", None)
        if held is None or held.pid != os.getpid() or not self._usable(held.conn):
            held = _Held(self._connect())
            self._local.held = held
            with self._lock:
                self._held.add(held)
        return held.conn

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[_Query]:
        """A write transaction (or, with ``write=False``, autocommitted reads)."""
        try:
            conn = self._conn()
            if write:
                with self._transaction(conn):
                    yield _Query(conn, self._percent)
            else:
                yield _Query(conn, self._percent)
        except self._errors as e:
            raise StoreError(f"store {self.name!r}: {e}") from e

    def close(self) -> None:
        self._closed = True
        with self._lock:
            held, self._held = list(self._held), weakref.WeakSet()
        for h in held:
            h.close()

    # -- runs -------------------------------------------------------------------------
    def create_run(self, run_id, workflow, source_hash, input, correlation_id, owner, lease_s):
        now = time.time()
        lease_until = None if owner is None else now + lease_s
        with self._tx() as q:
            added = q.run(f"INSERT INTO apel_runs ({_RUN}) VALUES (?, ?, ?, 'running', ?, NULL, NULL, ?, ?, ?, NULL, ?, ?, NULL) "
                          "ON CONFLICT (run_id) DO NOTHING",
                          (run_id, workflow, source_hash, input, correlation_id, owner, lease_until, now, now))
            if not added:
                raise RunExists(f"run {run_id!r} already exists")
        return RunRecord(run_id, workflow, source_hash, "running", input, None, None, correlation_id,
                         owner, lease_until, None, now, now)

    def get_run(self, run_id):
        with self._tx(write=False) as q:
            row = q.one(f"SELECT {_RUN} FROM apel_runs WHERE run_id = ?", (run_id,))
        return None if row is None else RunRecord(*row)

    def list_runs(self, status=None, workflow=None, correlation_id=None):
        filters = {"status": status, "workflow": workflow, "correlation_id": correlation_id}
        given = {k: v for k, v in filters.items() if v is not None}
        where = " AND ".join(f"{k} = ?" for k in given) or "1 = 1"
        with self._tx(write=False) as q:
            rows = q.all(f"SELECT {_RUN} FROM apel_runs WHERE {where} ORDER BY ord", tuple(given.values()))
        return [RunRecord(*r) for r in rows]

    # -- leases -----------------------------------------------------------------------
    def acquire(self, run_id, owner, lease_s):
        now = time.time()
        with self._tx() as q:
            return q.run(f"UPDATE apel_runs SET owner = ?, lease_until = ?, updated = ? "
                         f"WHERE run_id = ? AND {_LIVE} AND (owner = ? OR {_EXPIRED})",
                         (owner, now + lease_s, now, run_id, owner, now)) == 1

    def renew(self, run_id, owner, lease_s):
        with self._tx() as q:
            return q.run("UPDATE apel_runs SET lease_until = ? WHERE run_id = ? AND owner = ?",
                         (time.time() + lease_s, run_id, owner)) == 1

    def release(self, run_id, owner):
        with self._tx() as q:
            q.run("UPDATE apel_runs SET owner = NULL, lease_until = NULL WHERE run_id = ? AND owner = ?",
                  (run_id, owner))

    def holder(self, run_id):
        with self._tx(write=False) as q:
            row = q.one("SELECT owner, lease_until FROM apel_runs WHERE run_id = ?", (run_id,))
        return None if row is None or row[0] is None else (row[0], row[1])

    def claim_expired(self, owner, lease_s, limit=10):
        now = time.time()
        with self._tx() as q:
            rows = q.all(f"SELECT run_id FROM apel_runs WHERE status = 'running' AND {_EXPIRED} "
                         f"ORDER BY ord LIMIT ?{self._skip_locked}", (now, limit))
            for (run_id,) in rows:
                q.run("UPDATE apel_runs SET owner = ?, lease_until = ?, updated = ? WHERE run_id = ?",
                      (owner, now + lease_s, now, run_id))
        return [run_id for (run_id,) in rows]

    def claim_due(self, owner, lease_s, limit=10):
        now = time.time()
        with self._tx() as q:
            rows = q.all(f"SELECT run_id FROM apel_runs WHERE status = 'waiting' AND wake_at <= ? AND {_EXPIRED} "
                         f"ORDER BY wake_at LIMIT ?{self._skip_locked}", (now, now, limit))
            for (run_id,) in rows:
                q.run("UPDATE apel_runs SET owner = ?, lease_until = ?, updated = ? WHERE run_id = ?",
                      (owner, now + lease_s, now, run_id))
        return [run_id for (run_id,) in rows]

    def _check_lease(self, q: _Query, run_id: str, owner: str, now: float) -> float:
        """Lock the run's row and return ``owner``'s lease end; LeaseLost if not live."""
        row = q.one(f"SELECT owner, lease_until FROM apel_runs WHERE run_id = ?{self._for_update}", (run_id,))
        if row is None:
            raise StoreError(f"no run {run_id!r} in store {self.name!r}")
        holder, until = row
        if holder == owner and until is not None and until > now:
            return until
        if holder == owner:
            raise LeaseLost(f"run {run_id!r}: the lease of {owner!r} expired {now - (until or now):.1f}s ago")
        held = "it has no owner" if holder is None else f"{holder!r} holds it now"
        raise LeaseLost(f"run {run_id!r}: {owner!r} no longer holds the lease ({held})")

    # -- journal ----------------------------------------------------------------------
    def begin_step(self, run_id, owner, seq, step_id, kind, attempt=1):
        now = time.time()
        self._write_step(owner, now, _BEGIN_STEP, (run_id, seq, step_id, kind, now, attempt))

    def complete_step(self, run_id, owner, seq, step_id, kind, result):
        now = time.time()
        self._write_step(owner, now, _FINISH_STEP, (run_id, seq, step_id, kind, "completed", result, None, now, now))

    def fail_step(self, run_id, owner, seq, step_id, kind, error):
        now = time.time()
        self._write_step(owner, now, _FINISH_STEP, (run_id, seq, step_id, kind, "failed", None, error, now, now))

    def _write_step(self, owner: str, now: float, sql: str, params: tuple) -> None:
        run_id, seq, step_id = params[:3]
        with self._tx() as q:
            self._check_lease(q, run_id, owner, now)
            try:
                written = q.run(sql, params)
            except self._integrity_error:
                raise StoreError(f"run {run_id!r}: seq {seq} already holds a step other than {step_id!r}") from None
            if not written:
                raise StoreError(f"run {run_id!r}: step {step_id!r} is already completed")

    def journal(self, run_id):
        with self._tx(write=False) as q:
            rows = q.all(f"SELECT {_STEP} FROM apel_steps WHERE run_id = ? ORDER BY seq", (run_id,))
        return [StepRecord(*r) for r in rows]

    def set_status(self, run_id, owner, status, output=None, error=None, waiting_for=None, wake_at=None):
        if status not in RUN_STATUSES:
            raise StoreError(f"unknown run status {status!r} (expected one of {', '.join(RUN_STATUSES)})")
        now = time.time()
        with self._tx() as q:
            until = self._check_lease(q, run_id, owner, now)
            keep = status == "running"
            q.run("UPDATE apel_runs SET status = ?, output = ?, error = ?, waiting_for = ?, owner = ?, "
                  "lease_until = ?, updated = ?, wake_at = ? WHERE run_id = ?",
                  (status, output, error, waiting_for, owner if keep else None, until if keep else None, now,
                   wake_at if status == "waiting" else None, run_id))

    # -- events -----------------------------------------------------------------------
    def post_event(self, correlation_id, name, payload):
        with self._tx() as q:
            (event_id,) = q.one("INSERT INTO apel_events (correlation_id, name, payload, created, consumed_by) "
                                "VALUES (?, ?, ?, ?, NULL) RETURNING event_id",
                                (correlation_id, name, payload, time.time()))
        return event_id

    def take_event(self, correlation_id, name, run_id):
        with self._tx() as q:
            row = q.one(f"SELECT {_EVENT} FROM apel_events WHERE correlation_id = ? AND name = ? "
                        f"AND consumed_by IS NULL ORDER BY event_id LIMIT 1{self._skip_locked}",
                        (correlation_id, name))
            if row is None:
                return None
            q.run("UPDATE apel_events SET consumed_by = ? WHERE event_id = ?", (run_id, row[0]))
        return EventRecord(*row[:-1], consumed_by=run_id)

    def events(self, correlation_id):
        with self._tx(write=False) as q:
            rows = q.all(f"SELECT {_EVENT} FROM apel_events WHERE correlation_id = ? ORDER BY event_id",
                         (correlation_id,))
        return [EventRecord(*r) for r in rows]

    # -- named state ------------------------------------------------------------------
    def save_state(self, namespace, key, blob, meta):
        try:
            meta_json = json.dumps(meta)
        except (TypeError, ValueError) as e:
            raise StoreError(f"state {namespace}/{key}: meta must be JSON: {e}") from None
        with self._tx() as q:
            q.run("INSERT INTO apel_states (namespace, state_key, blob, meta, ord) "
                  f"VALUES (?, ?, ?, ?, {self._next_state_ord}) "
                  "ON CONFLICT (namespace, state_key) DO UPDATE SET blob = excluded.blob, meta = excluded.meta, "
                  "ord = excluded.ord", (namespace, key, blob, meta_json))

    def load_state(self, namespace, key=None):
        with self._tx(write=False) as q:
            if key is None:
                row = q.one("SELECT state_key, blob, meta FROM apel_states WHERE namespace = ? "
                            "ORDER BY ord DESC LIMIT 1", (namespace,))
            else:
                row = q.one("SELECT state_key, blob, meta FROM apel_states WHERE namespace = ? AND state_key = ?",
                            (namespace, key))
        return None if row is None else (row[0], row[1], json.loads(row[2]))

    def state_keys(self, namespace):
        with self._tx(write=False) as q:
            rows = q.all("SELECT state_key FROM apel_states WHERE namespace = ? ORDER BY ord", (namespace,))
        return [k for (k,) in rows]


class SqliteStore(_SqlStore):
    """One SQLite file (WAL mode). Writers serialize on ``BEGIN IMMEDIATE``; safe across
    threads (a connection each) and processes on one machine."""

    _types = {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB", "real": "REAL", "int": "INTEGER"}
    _next_state_ord = "(SELECT COALESCE(MAX(ord), 0) + 1 FROM apel_states)"
    _errors = (sqlite3.Error,)
    _integrity_error = sqlite3.IntegrityError
    _has_column = "SELECT name FROM pragma_table_info(?) WHERE name = ?"

    def __init__(self, path: str | Path):
        if str(path) in ("", ":memory:"):
            raise StoreError("cannot open store: SQLite stores need a file path")
        if sqlite3.sqlite_version_info < (3, 35):
            raise StoreError(f"cannot open store {str(path)!r}: SQLite {sqlite3.sqlite_version} is too old (need 3.35)")
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot open store {str(path)!r}: {e}") from None
        super().__init__(str(self.path))

    def _connect(self):
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")  # a commit survives power loss, not just SIGKILL
        return conn

    @contextmanager
    def _transaction(self, conn):
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


class PostgresStore(_SqlStore):
    """PostgreSQL through psycopg 3, for workers on many machines: row locks
    (``FOR UPDATE``, ``SKIP LOCKED`` for claims and events) make each method atomic."""

    _types = {"serial": "BIGSERIAL PRIMARY KEY", "blob": "BYTEA", "real": "DOUBLE PRECISION", "int": "BIGINT"}
    _for_update = " FOR UPDATE"
    _skip_locked = " FOR UPDATE SKIP LOCKED"
    _next_state_ord = "nextval('apel_states_ord')"
    _percent = True
    _has_column = ("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                   "AND table_name = ? AND column_name = ?")

    def __init__(self, dsn: str):
        try:
            import psycopg
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:
            raise StoreError("cannot open store: PostgreSQL needs psycopg (pip install 'geomir[postgres]')") from None
        try:
            info = conninfo_to_dict(dsn)
        except psycopg.Error:
            raise StoreError("cannot open store: invalid PostgreSQL DSN (not shown, it may hold a password)") from None
        self._psycopg = psycopg
        self._dsn = dsn
        self._password = info.get("password")
        self._connect_args = {} if "connect_timeout" in info else {"connect_timeout": 10}
        self._errors = (psycopg.Error,)
        self._integrity_error = psycopg.IntegrityError
        user = f"{info['user']}@" if info.get("user") else ""
        port = f":{info['port']}" if info.get("port") else ""
        super().__init__(f"postgresql://{user}{info.get('host') or 'localhost'}{port}/{info.get('dbname') or ''}")

    def _ddl(self):
        return ["SELECT pg_advisory_xact_lock(4107252)",  # workers opening the store at once
                "CREATE SEQUENCE IF NOT EXISTS apel_states_ord", *super()._ddl()]

    def _connect(self):
        try:
            return self._psycopg.connect(self._dsn, autocommit=True, **self._connect_args)
        except self._psycopg.Error as e:
            message = str(e).strip()
            if self._password:
                message = message.replace(self._password, "***")
            raise StoreError(message) from None

    def _usable(self, conn):
        return not conn.closed

    def _transaction(self, conn):
        return conn.transaction()
