"""A full disk under SQLite: the intake answers 503 (never 500, never an unstored 2xx), /readyz
says why, and the same process takes everything again soon after space is freed."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text

from receiver.db.engine import create_db_engine
from receiver.health import MIN_FREE_BYTES
from tests.support.mounts import Tmpfs
from tests.support.processes import Server, framehook_env
from tests.support.webhooks import signed_headers, webhook_body

MiB = 1_048_576
RECOVERY_BOUND = 10.0
"""Seconds from freeing space to the first accepted webhook: a checkpointer round or two."""


def _body(n: int) -> bytes:
    # Padded: the disk fills in a few hundred webhooks rather than thousands.
    return orjson.dumps(
        webhook_body("progress", jobId=f"full-{n}", progress=50, padding="x" * 16_000)
    )


def _key(n: int) -> str:
    return f"job:full-{n}:progress:50"


class _Sender:
    """Signed webhooks, one new event each, remembering what was acknowledged (thread-safe)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self.acked: set[int] = set()
        self.statuses: Counter[int] = Counter()

    def post(self, client: httpx.Client) -> int:
        with self._lock:
            n = next(self._numbers)
        body = _body(n)
        status = client.post(
            f"{self.url}/webhooks/apiframe", content=body, headers=signed_headers(body)
        ).status_code
        with self._lock:
            self.statuses[status] += 1
            if status in (200, 202):
                self.acked.add(n)
        return status

    def ready(self) -> httpx.Response:
        return httpx.get(f"{self.url}/readyz", timeout=10)


class _Flood:
    """Webhooks from a few threads as fast as answers come, as Apiframe's retries would."""

    def __init__(self, sender: _Sender, threads: int = 4) -> None:
        self._sender = sender
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                self._sender.post(client)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def _wait_for(sender: _Sender, status: int, seconds: float) -> float:
    # The flood's answers are counted in ``sender.statuses``: wait for the first ``status``.
    started = time.monotonic()
    seen = sender.statuses[status]
    while sender.statuses[status] == seen:
        assert time.monotonic() - started < seconds, f"no {status} within {seconds} s"
        time.sleep(0.005)
    return time.monotonic() - started


@pytest.fixture
def full_disk_server(
    tmp_path: Path, tmpfs: Callable[[str, int], Tmpfs]
) -> tuple[Server, Tmpfs, Path]:
    """A receiver whose SQLite database is on a 48 MiB tmpfs (stopped by the test)."""
    disk = tmpfs("disk", 48 * MiB)
    database = disk.path / "fh.db"
    env = framehook_env(
        FRAMEHOOK_DATABASE_URL=f"sqlite:///{database}",
        FRAMEHOOK_AUTO_MIGRATE="true",
        FRAMEHOOK_STORAGE_URL=str(tmp_path / "assets"),
    )
    server = Server(env, tmp_path)
    return server, disk, database


def _stored(database: Path) -> set[str]:
    engine = create_db_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        keys = {r[0] for r in connection.execute(text("SELECT key FROM ledger"))}
    engine.dispose()
    return keys


def _checkpoint_recovered(log: Path, since: datetime) -> datetime:
    # The server's JSON log says when its checkpoints got through again.
    for line in log.read_text().splitlines():
        entry = orjson.loads(line) if line.startswith("{") else {}
        if entry.get("event") == "checkpoint succeeded again":
            at = datetime.fromisoformat(entry["timestamp"])
            if at >= since:
                return at
    raise AssertionError("the checkpointer never recovered")


@pytest.mark.slow
def test_a_full_disk_answers_503_and_recovers_once_space_is_freed(
    full_disk_server: tuple[Server, Tmpfs, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Webhooks flood in until the disk is full: 503 only (no 500). 8 MiB freed while they go
    on: the same process accepts again within 10 s, then takes every webhook; each one it
    acknowledged, before or after, is in the database."""
    server, disk, database = full_disk_server
    sender = _Sender(server.url)
    try:
        server.wait_ready()
        with httpx.Client(timeout=30) as client:
            assert {sender.post(client) for _ in range(20)} == {202}
        reserve = disk.path / "reserve"
        reserve.write_bytes(bytes(MIN_FREE_BYTES))
        disk.fill(leave=12 * MiB)  # what is left for the database and its WAL to fill
        flood = _Flood(sender)
        try:
            _wait_for(sender, 503, 60)
            time.sleep(2)  # full: the flood goes on meeting 503s, as Apiframe's retries would
            full = dict(sender.statuses)
            unready = sender.ready()
            assert unready.status_code == 503
            assert unready.json()["reason"] in ("disk_full", "commits_failing")
            freed_at = datetime.now(UTC)
            reserve.unlink()
            recovered = _wait_for(sender, 202, RECOVERY_BOUND)
        finally:
            flood.stop()
        assert set(sender.statuses) <= {202, 503}, sender.statuses
        with httpx.Client(timeout=30) as client:
            after = Counter(sender.post(client) for _ in range(200))
        assert after == {202: 200}
    finally:
        server.stop()
    checkpointed = _checkpoint_recovered(server.log, freed_at) - freed_at
    with capsys.disabled():
        print(  # noqa: T201 - the figures the README quotes
            f"\nfull disk: {full}; {MIN_FREE_BYTES / MiB:g} MiB freed with the flood going on: "
            f"first webhook accepted after {recovered:.2f} s, "
            f"WAL checkpointed after {checkpointed.total_seconds():.2f} s"
        )
    assert checkpointed.total_seconds() < RECOVERY_BOUND
    missing = {_key(n) for n in sender.acked} - _stored(database)
    assert missing == set(), f"{len(missing)} acknowledged webhooks are not stored"


@pytest.mark.slow
def test_readyz_names_a_full_disk_and_recovers_when_it_grows(
    full_disk_server: tuple[Server, Tmpfs, Path],
) -> None:
    """/readyz answers 503 with reason disk_full while the database's disk is full, and 200
    once the filesystem has grown (no webhook needed to notice)."""
    server, disk, _database = full_disk_server
    sender = _Sender(server.url)
    try:
        server.wait_ready()
        disk.fill()
        full = sender.ready()
        assert (full.status_code, full.json()["reason"]) == (503, "disk_full"), full.text
        assert "retry-after" not in full.headers
        disk.remount(f"size={96 * MiB}")
        assert sender.ready().status_code == 200
    finally:
        server.stop()
