"""Engines for SQLite and PostgreSQL, set up for durability first.

SQLite: WAL with ``synchronous=FULL`` (a committed event survives a power loss, not only a
crash), a busy timeout, and transactions that say ``BEGIN IMMEDIATE`` when they will write, so
two writers queue on the lock instead of failing on a read-to-write upgrade.
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

from receiver.errors import ConfigurationError

__all__ = [
    "IMMEDIATE",
    "create_db_engine",
    "normalize_url",
    "ping",
    "write_lock",
    "write_transaction",
    "writing",
]

IMMEDIATE: dict[str, Any] = {"sqlite_begin": "IMMEDIATE"}
"""Execution options for a connection that will write (``BEGIN IMMEDIATE`` on SQLite)."""


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
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN is ours to spell (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        # receiver.db.checkpoints checkpoints in the background instead of inside a commit.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute("PRAGMA foreign_keys=ON")
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


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def write_lock(engine: Engine) -> threading.Lock | None:
    """The lock this process's writers to a SQLite database queue on (``None`` otherwise).

    SQLite has one writer at a time, and a writer that finds the lock taken sleeps in its busy
    handler with a growing back-off (up to 100 ms a try) instead of waking when the lock is
    free: under load that turns a millisecond's wait into the receiver's tail latency. Writers
    in one process (the intake, the embedded worker, replays) therefore hand the lock over
    here, at once; only other processes meet SQLite's busy handler.
    """
    if engine.dialect.name != "sqlite":
        return None
    key = str(engine.url.database)
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.Lock())


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
