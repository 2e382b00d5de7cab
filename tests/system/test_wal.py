"""The SQLite WAL stays bounded under steady load, with readers, and shrinks back afterwards."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from receiver.db.engine import WAL_SIZE_LIMIT
from tests.support.processes import Server, framehook_env
from tests.support.webhooks import signed_headers, webhook_body

RATE = 100
SECONDS = 20
"""Long enough that an unbounded WAL would be well past ``WAL_BOUND``: without the checkpointer
it grew ~1.2-1.5 MB/s at this rate (36-46 MB in 30 s), so ~24-31 MB in these 20 s."""
SENDERS = 4
WAL_BOUND = 16 * 1_048_576
"""What the WAL may reach at 100 webhooks/s: its 4 MiB limit plus what arrives before the
checkpointer cuts it back, with room for a slow, shared CI disk (4.6 MiB measured)."""
IDLE_SECONDS = 3.0
"""How long the idle checkpointer gets to cut the WAL back to its limit after the load."""
TOKEN = "wal-test-admin-token-0123456789abcdef"


def _send(
    url: str, numbers: range, started: float, answers: list[int], latencies: list[float]
) -> None:
    with httpx.Client(timeout=10) as client:
        for n in numbers:
            # On a fixed schedule: a slow answer is caught up on, not added to the run.
            delay = started + n / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body = orjson.dumps(webhook_body("progress", jobId=f"wal-{n // 20}", progress=n % 20))
            sent = time.monotonic()
            response = client.post(
                f"{url}/webhooks/apiframe", content=body, headers=signed_headers(body)
            )
            latencies.append(time.monotonic() - sent)
            answers.append(response.status_code)


def _read(url: str, stop: threading.Event) -> None:
    # The dashboard's reads: each is a read transaction a checkpoint must wait out.
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        while not stop.wait(0.05):
            client.get(f"{url}/api/deliveries", params={"limit": 50})
            client.get(f"{url}/api/jobs", params={"limit": 50})


def _sample(wal: Path, stop: threading.Event, sizes: list[int]) -> None:
    while not stop.wait(0.02):
        try:
            sizes.append(wal.stat().st_size)
        except FileNotFoundError:
            sizes.append(0)


@pytest.mark.slow
def test_wal_stays_bounded_at_100_webhooks_a_second(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """20 s at 100 webhooks/s with readers: the WAL stays under 16 MiB and shrinks after."""
    database = tmp_path / "fh.db"
    env = framehook_env(
        FRAMEHOOK_DATABASE_URL=f"sqlite:///{database}",
        FRAMEHOOK_AUTO_MIGRATE="true",
        FRAMEHOOK_ADMIN_TOKEN=TOKEN,
    )
    server = Server(env, tmp_path)
    sizes: list[int] = []
    answers: list[int] = []
    latencies: list[float] = []
    stop = threading.Event()
    try:
        server.wait_ready()
        background = [
            threading.Thread(target=_sample, args=(Path(f"{database}-wal"), stop, sizes)),
            threading.Thread(target=_read, args=(server.url, stop)),
        ]
        started = time.monotonic()
        senders = [
            threading.Thread(
                target=_send,
                args=(server.url, range(k, RATE * SECONDS, SENDERS), started, answers, latencies),
            )
            for k in range(SENDERS)
        ]
        for thread in background + senders:
            thread.start()
        for thread in senders:
            thread.join()
        elapsed = time.monotonic() - started
        wal = Path(f"{database}-wal")
        # Idle: the checkpointer catches up and cuts the WAL back (no need to wait longer).
        deadline = time.monotonic() + IDLE_SECONDS
        while wal.stat().st_size > WAL_SIZE_LIMIT and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for thread in background:
            thread.join()
        after = wal.stat().st_size
    finally:
        stop.set()
        server.stop()
    with capsys.disabled():
        print(  # noqa: T201 - the figure the README quotes
            f"\nWAL at {RATE}/s for {elapsed:.0f} s: max {max(sizes) / 1_048_576:.1f} MiB, "
            f"{after / 1_048_576:.1f} MiB when idle; database "
            f"{database.stat().st_size / 1_048_576:.1f} MiB; answered in "
            f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
            f"p99 {statistics.quantiles(latencies, n=100)[98] * 1000:.1f} ms, "
            f"max {max(latencies) * 1000:.0f} ms"
        )
    assert sorted(set(answers)) == [202]
    assert len(answers) == RATE * SECONDS
    assert max(sizes) < WAL_BOUND
    assert after <= WAL_SIZE_LIMIT
