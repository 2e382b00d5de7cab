"""Looking at a test database, and scratch PostgreSQL databases of a test's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, make_url, text

from receiver.apiframe.events import parse_body
from receiver.db.engine import create_db_engine, writing
from receiver.db.models import metadata
from receiver.db.schema import upgrade
from receiver.intake.recorder import Arrival, Recorder, Subscription

__all__ = ["TABLES", "postgres_admin", "rows", "scratch_postgres"]

# Every table, so a new one is emptied between tests too (alembic_version is not a model).
TABLES = tuple(sorted(metadata.tables))


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    """All rows of a query (for assertions)."""
    with engine.connect() as connection:
        return list(connection.execute(text(sql), params))


def postgres_admin(server_url: str) -> Engine:
    """An autocommit engine on the test server, for CREATE/ALTER/DROP DATABASE."""
    server = make_url(server_url).set(drivername="postgresql+psycopg")
    return create_engine(server, isolation_level="AUTOCOMMIT")


@contextmanager
def scratch_postgres(server_url: str, prefix: str) -> Iterator[tuple[str, str]]:
    """A new, migrated PostgreSQL database (URL, name), dropped on exit whatever its state."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = postgres_admin(server_url)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        engine = create_db_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url, name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def scratch_postgres_engine(server_url: str, prefix: str) -> Iterator[tuple[str, Engine]]:
    """:func:`scratch_postgres`, with an engine on it (for tests that start worker processes
    on the URL and read the outcome through the engine)."""
    with scratch_postgres(server_url, prefix) as (url, _):
        engine = create_db_engine(url)
        try:
            yield url, engine
        finally:
            engine.dispose()


def record_completed(
    engine: Engine, subscriptions: Sequence[Subscription], job_ids: Sequence[str], batch: int
) -> None:
    """Record a completed webhook for each of ``job_ids`` through the real :class:`Recorder`,
    ``batch`` at a time, as the receiver would: tasks are queued for ``subscriptions``."""
    recorder = Recorder(engine.dialect.name, list(subscriptions))
    bodies = [
        orjson.dumps({"event": "completed", "jobId": job_id, "result": "https://x/y.png"})
        for job_id in job_ids
    ]
    for start in range(0, len(bodies), batch):
        arrivals = [
            Arrival(parse_body(body), body, datetime.now(UTC), "test")
            for body in bodies[start : start + batch]
        ]
        with writing(engine) as connection:
            recorder.record_many(connection, arrivals)
