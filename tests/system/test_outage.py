"""When the database cannot commit: 503 (never 2xx), and recovery without a restart."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from receiver import Settings, create_app
from receiver.db.engine import create_db_engine
from tests.support.database import postgres_admin, rows, scratch_postgres
from tests.support.webhooks import API_KEY, signed_headers, webhook_body

URL = "/webhooks/apiframe"


def progress(job: str, value: int) -> bytes:
    return orjson.dumps(webhook_body("progress", jobId=job, progress=value))


@pytest.fixture
def own_postgres(postgres_server_url: str) -> Iterator[tuple[str, str]]:
    """A PostgreSQL database this test may take offline, and its name."""
    with scratch_postgres(postgres_server_url, "framehook_outage") as database:
        yield database


def _set_postgres_online(server_url: str, name: str, online: bool) -> None:
    admin = postgres_admin(server_url)
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(online).lower()}'))
        if not online:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
    admin.dispose()


@pytest.mark.postgres
def test_postgres_down_answers_503_and_recovers(
    postgres_server_url: str, own_postgres: tuple[str, str]
) -> None:
    """PostgreSQL refusing connections: 503 database_unavailable, /readyz 503; then 202 again."""
    url, name = own_postgres
    settings = Settings(
        api_key=API_KEY, database_url=url, handlers=["download"], intake_timeout_seconds=5
    )
    first, second = progress("pg-job", 10), progress("pg-job", 20)
    with TestClient(create_app(settings)) as client:
        assert client.post(URL, content=first, headers=signed_headers(first)).status_code == 202
        _set_postgres_online(postgres_server_url, name, online=False)
        down = client.post(URL, content=second, headers=signed_headers(second))
        assert (down.status_code, down.json()["reason"]) == (503, "database_unavailable")
        assert down.headers["retry-after"] == "1"
        assert client.get("/readyz").status_code == 503
        _set_postgres_online(postgres_server_url, name, online=True)
        assert client.get("/readyz").status_code == 200
        again = client.post(URL, content=second, headers=signed_headers(second))
        assert (again.status_code, again.json()["outcome"]) == (202, "accepted")
    engine = create_db_engine(url)
    assert [r.outcome for r in rows(engine, "SELECT outcome FROM deliveries ORDER BY id")] == [
        "accepted",
        "accepted",
    ]
    engine.dispose()


def test_sqlite_locked_answers_503_and_the_retry_is_not_lost(tmp_path: Path) -> None:
    """A write lock held elsewhere: 503 commit_timeout; once released, the retry is stored."""
    path = tmp_path / "fh.db"
    settings = Settings(
        api_key=API_KEY,
        database_url=f"sqlite:///{path}",
        handlers=["download"],
        intake_timeout_seconds=0.5,
    )
    body = progress("lite-job", 30)
    with TestClient(create_app(settings)) as client:
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        locked = client.post(URL, content=body, headers=signed_headers(body))
        assert (locked.status_code, locked.json()["reason"]) == (503, "commit_timeout")
        blocker.execute("ROLLBACK")
        blocker.close()
        retry = client.post(URL, content=body, headers=signed_headers(body))
        # The timed-out request may have committed late: then the retry is its duplicate.
        assert retry.status_code in (200, 202)
    stored = (
        sqlite3.connect(path)
        .execute("SELECT outcome FROM deliveries WHERE job_id = 'lite-job'")
        .fetchall()
    )
    assert ("accepted",) in stored
