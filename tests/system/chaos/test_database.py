"""PostgreSQL restarted under load: a private server, stopped and started while events pour in.

The cluster runs on a PostgreSQL server of this test's own (``pgserver.PrivatePostgres``), so
restarting it disturbs no other test: the shared server on 5432 is never touched.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from tests.support.database import rows
from tests.system.chaos.conftest import Harness, wait_for_acks
from tests.system.chaos.pgserver import PostgresUnavailable, PrivatePostgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# Long enough for every receiver to meet the outage many times over (a few hundred requests)
# and for workers to fail claims, lease renewals and completions; short enough for the run.
OUTAGE_SECONDS = 4.0


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server this test may restart; skipped (failed under CI) where none can
    be made."""
    try:
        server = PrivatePostgres().__enter__()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def chaos_database(private_postgres: PrivatePostgres) -> str:
    """The harness's database, on the private server (overrides conftest's). Never dropped:
    the whole server goes when the test ends. (The cluster migrates it when it starts.)"""
    with psycopg.connect(private_postgres.url(), autocommit=True) as connection:
        connection.execute("CREATE DATABASE framehook_chaos")
    return private_postgres.url("framehook_chaos")


def test_postgres_restarted_mid_load_answers_503_then_recovers_by_itself(
    make_harness: Callable[..., Harness], private_postgres: PrivatePostgres
) -> None:
    """Stop PostgreSQL (``pg_ctl stop -m fast``, as a restart does) a third of the way into the
    load, keep it down for a few seconds, start it again. While it is down every answer is 503
    with a Retry-After (never a 2xx, never a 500); afterwards the same receiver and worker
    processes, never restarted, accept and drain again; every invariant holds: nothing
    acknowledged is lost and no task is left running."""
    harness = make_harness()
    plan = harness.plan(jobs=200, seed=11)
    sender = harness.sender(plan, rate=len(plan.events) / 14)
    sender.start()
    try:
        wait_for_acks(sender, len(plan.events) // 3)
        assert sender.is_alive(), "the load ended before PostgreSQL was stopped"
        private_postgres.stop("fast")
        down = time.monotonic()  # pg_ctl -w returned: the server is gone
        time.sleep(OUTAGE_SECONDS)
        up = time.monotonic()
        private_postgres.start()
        back, back_at = time.monotonic(), datetime.now(UTC)
        assert sender.is_alive(), "the load ended during the outage"
    finally:
        sender.join()
    report = harness.finish(plan, sender)

    during = [a for a in sender.timeline if a.started >= down and a.ended <= up]
    outcomes = Counter(f"{a.outcome} {a.reason}" for a in during)
    print(f"answers while PostgreSQL was down: {dict(outcomes)}", file=sys.stderr)  # noqa: T201
    assert len(during) >= 50, f"too little traffic met the outage: {len(during)} attempts"
    assert all(a.outcome == "503" for a in during), f"not all 503: {dict(outcomes)}"
    assert {a.reason for a in during} <= {"database_unavailable", "commit_timeout"}
    assert all(a.retry_after for a in during), "a 503 without Retry-After"
    assert not any(outcome.startswith("5") and outcome != "503" for outcome in sender.answers)
    assert any(a.ok and a.started >= back for a in sender.timeline), "nothing accepted after"

    report.assert_ok()
    # Recovered by themselves: every member is still its first incarnation.
    cluster = harness.cluster
    assert all(m.starts == 1 and m.process.poll() is None for m in cluster.members.values())
    # Every worker reconnected: each finished some task after the server came back.
    finished_after = {
        attempt.worker.rsplit(":", 1)[1]
        for attempt in rows(
            harness.engine,
            "SELECT worker FROM task_attempts WHERE finished_at > :t",
            t=back_at,
        )
    }
    assert {str(w.pid) for w in cluster.workers} <= finished_after
    assert private_postgres.stops == 1
    print(  # noqa: T201
        f"PostgreSQL down {up - down:.1f} s; pg_ctl start took {back - up:.1f} s",
        file=sys.stderr,
    )
