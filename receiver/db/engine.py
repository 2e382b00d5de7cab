"""Engines for SQLite and PostgreSQL, set up for durability first.

SQLite: WAL with ``synchronous=FULL`` (a committed event survives a power loss, not only a
crash), a busy timeout, and transactions that say ``BEGIN IMMEDIATE`` when they will write, so
two writers queue on the lock instead of failing on a read-to-write upgrade. The WAL is kept
small (``WAL_SIZE_LIMIT``, with ``receiver.db.checkpoints``): a WAL that only grows fills the
disk, and then even the checkpoint that would shrink it has no room to run.
PostgreSQL (psycopg 3): ``synchronous_commit`` forced on for our sessions, whatever the server
default; a restarted server costs the failed statement, not a dead pool (see below).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL, Connection

from receiver.db.writelock import WriteLock
from receiver.errors import ConfigurationError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "CACHE_KIB",
    "IMMEDIATE",
    "WAL_SIZE_LIMIT",
    "create_db_engine",
    "disk_trouble",
    "normalize_url",
    "ping",
    "write_lock",
    "write_transaction",
    "writing",
]

IMMEDIATE: dict[str, Any] = {"sqlite_begin": "IMMEDIATE"}
"""Execution options for a connection that will write (``BEGIN IMMEDIATE`` on SQLite)."""

BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite connection waits for another process's lock before failing."""

CACHE_KIB = 65_536
"""Each SQLite connection's page cache (64 MiB, against SQLite's 2 MB default), an upper bound
reached only by a connection that reads that many pages. Job ids and dedupe keys are random, so
each delivery inserts at a random place in four indexes (the ledger's and the jobs' keys,
deliveries and tasks by job); with millions of rows the inner pages of those trees alone are
tens of MB, and with 2 MB each insert read them again from the OS, inside the write lock.
Measured at 5M prior deliveries: 39 KB read per delivery, 24 KB with this cache."""

WAL_SIZE_LIMIT = 4 * 1_048_576
"""The SQLite WAL's size limit (4 MiB): ``journal_size_limit`` cuts a reset WAL back to it, and
the checkpointer forces a reset (``TRUNCATE``) once the WAL grows past it. Under load the WAL
stays within this plus what is written in the tenth of a second before the checkpointer looks
(measured: 4.6 MiB at most at 100 webhooks/s, against 36 MB and growing without it). It is
also about what a full disk needs freed for the receiver to recover: the checkpoint copies the
WAL's pages into the database file, which may grow by as much, before the WAL's own space comes
back."""

# The SQLite result codes (low byte) and PostgreSQL SQLSTATEs that say the disk, not the
# request, is the trouble: nothing committed, and nothing will until an operator acts.
_SQLITE_TROUBLE = {13: "disk_full", 10: "disk_io_error"}  # SQLITE_FULL, SQLITE_IOERR
_POSTGRES_TROUBLE = {"53100": "disk_full", "58030": "disk_io_error"}


def normalize_url(url: str) -> URL:
    """Parse a database URL, choosing psycopg 3 for ``postgresql://`` and ``postgres://``.

    Raises:
        ConfigurationError: the URL cannot be parsed or names an unsupported database.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigurationError(f"FRAMEHOOK_DATABASE_URL is not a database URL: {exc}") from exc
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql://"
        )
    return parsed


def _sqlite_engine(url: URL, pool_size: int) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=4,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN is ours to spell (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # receiver.db.checkpoints checkpoints in the background instead of inside a commit.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _postgres_engine(url: URL, pool_size: int) -> Engine:
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=4,
        # No pre-ping: it costs a round trip per checkout on every hot path. A connection the
        # server dropped fails its first statement, SQLAlchemy invalidates it, and the caller
        # (intake: 503, Apiframe retries; worker: next loop) retries on a fresh one.
        connect_args={"connect_timeout": 5, "application_name": "framehook"},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Acknowledged means durable: never let a server-wide setting weaken that.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = on")
        dbapi_connection.commit()

    return engine


def create_db_engine(url: str, pool_size: int = 5) -> Engine:
    """An engine for ``url`` with framehook's durability settings.

    Args:
        url: any SQLAlchemy URL for SQLite or PostgreSQL.
        pool_size: connections kept open.

    Raises:
        ConfigurationError: the URL is unusable.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, pool_size)
    return _postgres_engine(parsed, pool_size)


_WRITE_LOCKS: dict[str, WriteLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def write_lock(engine: Engine) -> WriteLock | None:
    """The lock this process's writers to a SQLite database queue on (``None`` otherwise).

    SQLite has one writer at a time, and a writer that finds the lock taken sleeps in its busy
    handler with a growing back-off (up to 100 ms a try) instead of waking when the lock is
    free: under load that turns a millisecond's wait into the receiver's tail latency. Writers
    in one process (the intake, the embedded worker, replays) therefore hand the lock over
    here, at once, the intake first (``acquire(urgent=True)``); only other processes meet
    SQLite's busy handler.
    """
    if engine.dialect.name != "sqlite":
        return None
    key = str(engine.url.database)
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, WriteLock())


@contextmanager
def write_transaction(connection: Connection) -> Iterator[Connection]:
    """A write transaction on ``connection`` (opened with ``IMMEDIATE``), holding the
    process's ``write_lock`` for its whole length; committed on success, else rolled back."""
    with write_lock(connection.engine) or nullcontext(), connection.begin():
        yield connection


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A new connection in a ``write_transaction``."""
    with (
        engine.connect().execution_options(**IMMEDIATE) as connection,
        write_transaction(connection),
    ):
        yield connection


def ping(engine: Engine) -> None:
    """Run a trivial query; raises whatever the driver raises when the database is away."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def disk_trouble(exc: BaseException) -> str | None:
    """``"disk_full"`` or ``"disk_io_error"`` when ``exc`` says the database's disk is full or
    failing (SQLite's ``SQLITE_FULL``/``SQLITE_IOERR``, PostgreSQL's 53100/58030), else ``None``.

    ``exc`` may be SQLAlchemy's wrapper or the driver's own exception (the intake runs its
    statements on the DBAPI cursor); its causes are looked at too.
    """
    seen: BaseException | None = exc
    for _ in range(4):  # the wrapper, the driver's error, and what either was raised from
        if seen is None:
            return None
        code = getattr(seen, "sqlite_errorcode", None)
        if isinstance(code, int) and (code & 0xFF) in _SQLITE_TROUBLE:
            return _SQLITE_TROUBLE[code & 0xFF]
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str) and state in _POSTGRES_TROUBLE:
            return _POSTGRES_TROUBLE[state]
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None
