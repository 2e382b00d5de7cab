"""A prune of a big history, run while ``framehook serve`` takes webhooks, never makes the
intake answer 503: the prune works in short transactions and the intake commits between them.

In one transaction (the prune before issue 19) the intake could not commit for the prune's
whole length and answered 503 once its wait ran out (10 s by default; 1 s here, so a history
the old prune needed ~3 s for is enough to show it and the test stays short).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from bench.history import fill_history
from receiver.db.engine import create_db_engine
from tests.support.database import rows
from tests.support.processes import Server, framehook_env, run_cli
from tests.support.webhooks import signed_headers, webhook_body

HISTORY = 600_000
"""Old deliveries (with a succeeded task and an attempt each): the one-transaction prune took
~3 s for them here, three times the intake's wait, and 6 of 358 webhooks were refused; the
batched prune takes ~25-50 s (each batch's write also leaves ix_deliveries_unpruned, and
waits as long again)."""
RATE = 40
"""Webhooks a second, all through the prune."""
INTAKE_WAIT = "1"


def _send(url: str, stop: threading.Event, answers: list[int], latencies: list[float]) -> None:
    started = time.monotonic()
    with httpx.Client(timeout=30) as client:
        n = 0
        while not stop.is_set():
            # On a fixed schedule: a slow answer is caught up on, not added to the run.
            delay = started + n / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body = orjson.dumps(webhook_body("progress", jobId=f"load-{n // 10}", progress=n % 10))
            sent = time.monotonic()
            response = client.post(
                f"{url}/webhooks/apiframe", content=body, headers=signed_headers(body)
            )
            latencies.append(time.monotonic() - sent)
            answers.append(response.status_code)
            n += 1


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_webhooks_are_answered_while_a_big_history_is_pruned(tmp_path: Path) -> None:
    """600k old deliveries pruned by ``framehook prune`` while ``serve`` takes 40 webhooks/s:
    every webhook is answered 2xx, the prune reports and removes exactly the old history, and
    the new deliveries keep their bodies."""
    url = f"sqlite:///{tmp_path / 'fh.db'}"
    env = framehook_env(
        FRAMEHOOK_DATABASE_URL=url,
        FRAMEHOOK_INTAKE_TIMEOUT_SECONDS=INTAKE_WAIT,
        FRAMEHOOK_RETENTION_DAYS="0",  # only the command prunes
    )
    assert run_cli(["db", "upgrade"], env, tmp_path).returncode == 0
    engine = create_db_engine(url)
    fill_history(engine, HISTORY, datetime.now(UTC) - timedelta(days=60), jobs=False)
    server = Server(env, tmp_path)
    answers: list[int] = []
    latencies: list[float] = []
    stop = threading.Event()
    try:
        server.wait_ready()
        sender = threading.Thread(target=_send, args=(server.url, stop, answers, latencies))
        sender.start()
        time.sleep(1.0)  # the intake at its steady pace before the prune starts
        done = run_cli(["prune", "--older-than", "30d"], env, tmp_path, timeout=180)
        time.sleep(1.0)
        stop.set()
        sender.join(30)
    finally:
        stop.set()
        server.stop()
    refused = [status for status in answers if status not in (200, 202)]
    latencies.sort()
    worst = f"slowest answers {[round(s, 3) for s in latencies[-3:]]} s"
    assert not refused, f"{len(refused)} of {len(answers)} webhooks refused: {refused[:5]}; {worst}"
    assert len(answers) >= RATE * 3
    assert done.returncode == 0, done.stderr
    assert f"pruned {HISTORY} bodies, {HISTORY} tasks ({HISTORY} attempts)" in done.stderr
    assert "so far" in done.stderr  # progress while it ran
    history = "request_id LIKE 'history-%'"
    assert rows(engine, f"SELECT count(*) AS n FROM deliveries WHERE {history}")[0].n == HISTORY
    kept = f"SELECT count(*) AS n FROM deliveries WHERE {history} AND body IS NOT NULL"
    assert rows(engine, kept)[0].n == 0
    gone = "SELECT count(*) AS n FROM {} WHERE {} LIKE {}"
    assert rows(engine, gone.format("tasks", "job_id", "'%-history'"))[0].n == 0
    assert rows(engine, gone.format("task_attempts", "worker", "'history'"))[0].n == 0
    fresh = "SELECT count(*) AS n FROM deliveries WHERE request_id NOT LIKE 'history-%'"
    assert rows(engine, fresh + " AND body IS NOT NULL")[0].n == rows(engine, fresh)[0].n > 0
    engine.dispose()
