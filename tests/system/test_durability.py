"""A 2xx means committed: SIGKILL the receiver under load and count what it acknowledged."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text

from receiver.db.engine import create_db_engine
from tests.support.database import scratch_postgres
from tests.support.processes import Server, framehook_env
from tests.support.webhooks import signed_headers, webhook_body

EVENTS = 3000


def _body(n: int) -> bytes:
    job, value = divmod(n, 20)
    return orjson.dumps(webhook_body("progress", jobId=f"kill-{job}", progress=value * 5))


def _key(n: int) -> str:
    job, value = divmod(n, 20)
    return f"job:kill-{job}:progress:{value * 5}"


def _send(url: str, numbers: list[int], acked: set[int], stop: threading.Event) -> None:
    with httpx.Client(timeout=5) as client:
        for n in numbers:
            if stop.is_set():
                return
            body = _body(n)
            try:
                response = client.post(
                    f"{url}/webhooks/apiframe", content=body, headers=signed_headers(body)
                )
            except httpx.TransportError:
                return  # the server died under us: unanswered, so not acknowledged
            if response.status_code in (200, 202):
                acked.add(n)


def _load(
    url: str, numbers: list[int], threads: int = 8
) -> tuple[set[int], threading.Event, list[threading.Thread]]:
    acked: set[int] = set()
    stop = threading.Event()
    workers = [
        threading.Thread(target=_send, args=(url, numbers[i::threads], acked, stop))
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    return acked, stop, workers


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database for a killed receiver: SQLite file, or a scratch PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fh.db'}"
        return
    with scratch_postgres(request.getfixturevalue("postgres_server_url"), "framehook_kill") as (
        url,
        _,
    ):
        yield url


@pytest.mark.slow
def test_every_acknowledged_event_survives_sigkill(tmp_path: Path, durable_url: str) -> None:
    """Kill -9 mid-load: every 2xx'd event is stored; resent ones are accepted or duplicate."""
    env = framehook_env(FRAMEHOOK_DATABASE_URL=durable_url, FRAMEHOOK_AUTO_MIGRATE="true")
    server = Server(env, tmp_path)
    server.wait_ready()
    acked, stop, workers = _load(server.url, list(range(EVENTS)))
    deadline = time.monotonic() + 20
    while len(acked) < EVENTS // 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()
    stop.set()
    for worker in workers:
        worker.join()
    assert 0 < len(acked) < EVENTS, "the kill should land mid-load"

    engine = create_db_engine(durable_url)
    with engine.connect() as connection:
        stored = {r[0] for r in connection.execute(text("SELECT key FROM ledger"))}
    missing = [n for n in acked if _key(n) not in stored]
    assert missing == [], f"{len(missing)} acknowledged events lost"

    # Apiframe retries what got no answer: after a restart all of it is taken in.
    restarted = Server(env, tmp_path)
    try:
        restarted.wait_ready()
        rest = [n for n in range(EVENTS) if n not in acked]
        again, _, workers = _load(restarted.url, rest)
        for worker in workers:
            worker.join()
        assert again == set(rest)
    finally:
        restarted.stop()
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM ledger")).scalar_one()
        jobs = connection.execute(
            text("SELECT count(*) FROM jobs WHERE progress = 95")
        ).scalar_one()
    engine.dispose()
    assert count == EVENTS
    assert jobs == EVENTS // 20
