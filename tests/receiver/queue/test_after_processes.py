"""Ordered handlers across worker processes sharing one PostgreSQL queue: for every job,
``second`` starts only after ``first`` ended, whether ``first`` succeeded or died."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from handlers import HandlerContext, JobEvent, PermanentFailure
from receiver.intake.recorder import Subscription
from tests.support.database import record_completed, scratch_postgres_engine
from tests.support.processes import framehook_env
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]
JOBS = 300
pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _log_run(handler: str, event: JobEvent, start: float) -> None:
    # One short line per append-mode write: atomic, so processes do not interleave.
    line = f"{handler} {event.job_id} {start:.6f} {time.monotonic():.6f} {os.getpid()}\n"
    with open(os.environ["FRAMEHOOK_TEST_RUNS"], "a") as runs:
        runs.write(line)


class First:
    """Sleeps a few ms (longer for some jobs), fails for good on every fifth job."""

    name = "first"
    events = frozenset({"completed"})

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        start = time.monotonic()
        n = int(event.job_id.rsplit("-", 1)[1])
        await asyncio.sleep(0.002 * (n % 7))
        _log_run(self.name, event, start)
        if n % 5 == 0:
            raise PermanentFailure("every fifth job")


class Second:
    """Runs after first; records when it started."""

    name = "second"
    events = frozenset({"completed"})
    after = frozenset({"first"})

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        _log_run(self.name, event, time.monotonic())


@pytest.fixture
def queue_db(postgres_server_url: str) -> Iterator[tuple[str, Engine]]:
    """A scratch PostgreSQL database for worker processes, and an engine on it."""
    with scratch_postgres_engine(postgres_server_url, "framehook_after") as found:
        yield found


def enqueue(engine: Engine, count: int) -> None:
    """Queue ``count`` completed jobs' tasks for first and second, as the receiver would."""
    subscriptions = [
        Subscription("first", frozenset({"completed"})),
        Subscription("second", frozenset({"completed"}), after=frozenset({"first"})),
    ]
    record_completed(engine, subscriptions, [f"job-{n}" for n in range(count)], batch=100)


def start_worker(url: str, runs: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    module = "tests.receiver.queue.test_after_processes"
    env = framehook_env(
        FRAMEHOOK_DATABASE_URL=url,
        FRAMEHOOK_HANDLERS=f"{module}:First,{module}:Second",
        FRAMEHOOK_TEST_RUNS=str(runs),
        FRAMEHOOK_POLL_SECONDS="5",  # long: a released task is found by a wake-up
        PYTHONPATH=str(ROOT),
    )
    with (tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "receiver", "worker", "--concurrency", "8"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def ended(engine: Engine) -> int:
    with engine.connect() as connection:
        sql = "SELECT count(*) FROM tasks WHERE status IN ('succeeded', 'dead')"
        return int(connection.execute(text(sql)).scalar_one())


def test_four_workers_keep_the_order_for_every_job(
    queue_db: tuple[str, Engine], tmp_path: Path
) -> None:
    """300 jobs, 4 worker processes: second runs once per job, always after first ended
    (a fifth of the firsts die, and their seconds still run), and not all in one process."""
    url, engine = queue_db
    runs = tmp_path / "runs.txt"
    workers = [start_worker(url, runs, tmp_path) for _ in range(4)]
    try:
        # Queued once every worker runs (and so handles SIGTERM): the work can end quicker
        # than a process starts.
        logs = list(tmp_path.glob("worker-*.log"))
        wait_until(lambda: all("worker started" in log.read_text() for log in logs), 60)
        enqueue(engine, JOBS)
        deadline = time.monotonic() + 120
        while ended(engine) != 2 * JOBS:
            assert time.monotonic() < deadline, f"{ended(engine)} of {2 * JOBS} tasks ended"
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(30) for worker in workers]
    assert codes == [0, 0, 0, 0]
    first_end: dict[str, float] = {}
    second_start: dict[str, float] = {}
    pids: set[str] = set()
    for line in runs.read_text().splitlines():
        handler, job, start, end, pid = line.split()
        target = first_end if handler == "first" else second_start
        assert job not in target, f"{handler} ran twice for {job}"
        target[job] = float(end if handler == "first" else start)
        pids.add(pid)
    assert len(first_end) == len(second_start) == JOBS
    early = [job for job, start in second_start.items() if start < first_end[job]]
    assert early == [], f"second started before first ended for {early[:5]}"
    assert len(pids) >= 2
    with engine.connect() as connection:
        dead = connection.execute(
            text("SELECT count(*) FROM tasks WHERE handler = 'first' AND status = 'dead'")
        ).scalar_one()
    assert dead == JOBS // 5
