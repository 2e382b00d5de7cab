"""Worker processes sharing one PostgreSQL queue: exactly once, and reclaim after a crash."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from receiver.intake.recorder import Subscription
from tests.support.database import record_completed, scratch_postgres_engine
from tests.support.processes import framehook_env

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def queue_db(postgres_server_url: str) -> Iterator[tuple[str, Engine]]:
    """A scratch PostgreSQL database for worker processes, and an engine on it."""
    with scratch_postgres_engine(postgres_server_url, "framehook_workers") as found:
        yield found


def enqueue(engine: Engine, count: int) -> None:
    """Queue ``count`` tasks for the file-logged handler, as the receiver would."""
    subscriptions = [Subscription("file-logged", frozenset({"completed"}))]
    record_completed(engine, subscriptions, [str(uuid.uuid4()) for _ in range(count)], batch=250)


def start_worker(url: str, runs: Path, tmp_path: Path, **extra: str) -> subprocess.Popen[bytes]:
    settings = {
        "FRAMEHOOK_DATABASE_URL": url,
        "FRAMEHOOK_HANDLERS": "tests.support.plugins:FileLogged",
        "FRAMEHOOK_TEST_RUNS": str(runs),
        "FRAMEHOOK_POLL_SECONDS": "0.5",
        "PYTHONPATH": str(ROOT),
    }
    env = framehook_env(**{**settings, **extra})
    # The child keeps its own descriptor; ours is closed at once.
    with (tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "receiver", "worker", "--concurrency", "8"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql)).scalar_one())


def wait_for(engine: Engine, sql: str, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while count(engine, sql) != expected:
        assert time.monotonic() < deadline, f"{sql} did not reach {expected}"
        time.sleep(0.2)


def test_four_workers_run_two_thousand_tasks_exactly_once(
    queue_db: tuple[str, Engine], tmp_path: Path
) -> None:
    """2,000 tasks, 4 worker processes: every task runs once, the work is shared, all succeed."""
    url, engine = queue_db
    enqueue(engine, 2000)
    runs = tmp_path / "runs.txt"
    workers = [start_worker(url, runs, tmp_path) for _ in range(4)]
    try:
        wait_for(engine, "SELECT count(*) FROM tasks WHERE status = 'succeeded'", 2000, 120)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(30) for worker in workers]
    assert codes == [0, 0, 0, 0]
    lines = [line.split() for line in runs.read_text().splitlines()]
    per_task = Counter(task for task, _, _ in lines)
    assert len(per_task) == 2000
    assert set(per_task.values()) == {1}
    assert {attempt for _, attempt, _ in lines} == {"1"}
    assert len({pid for _, _, pid in lines}) >= 2  # shared, not one process doing it all
    assert count(engine, "SELECT count(*) FROM task_attempts") == 2000


def test_a_killed_workers_task_is_reclaimed_after_its_lease(
    queue_db: tuple[str, Engine], tmp_path: Path
) -> None:
    """SIGKILL mid-task: nobody else runs it while the lease holds; then it completes once."""
    url, engine = queue_db
    enqueue(engine, 1)
    runs = tmp_path / "runs.txt"
    stuck = start_worker(
        url, runs, tmp_path, FRAMEHOOK_TEST_SLEEP="60", FRAMEHOOK_LEASE_SECONDS="3"
    )
    wait_for(engine, "SELECT count(*) FROM tasks WHERE status = 'running'", 1, 30)
    claimed_at = time.monotonic()
    stuck.kill()
    stuck.wait(10)
    rescuer = start_worker(url, runs, tmp_path, FRAMEHOOK_LEASE_SECONDS="3")
    try:
        while time.monotonic() - claimed_at < 2.0:
            # The dead worker's lease still holds: the task must not run again yet.
            assert count(engine, "SELECT attempts FROM tasks") == 1
            time.sleep(0.1)
        wait_for(engine, "SELECT count(*) FROM tasks WHERE status = 'succeeded'", 1, 30)
    finally:
        rescuer.send_signal(signal.SIGTERM)
        rescuer.wait(30)
    (line,) = runs.read_text().splitlines()
    assert line.split()[1] == "2"  # the second attempt did the work, once
    assert count(engine, "SELECT attempts FROM tasks") == 2


def test_notify_wakes_a_worker_in_another_process(
    queue_db: tuple[str, Engine], tmp_path: Path
) -> None:
    """With a 30 s poll, a task queued after the worker started runs within seconds: NOTIFY."""
    url, engine = queue_db
    runs = tmp_path / "runs.txt"
    worker = start_worker(url, runs, tmp_path, FRAMEHOOK_POLL_SECONDS="30")
    try:
        time.sleep(3)  # started, listening, and into its 30 s sleep
        queued = time.monotonic()
        enqueue(engine, 1)
        wait_for(engine, "SELECT count(*) FROM tasks WHERE status = 'succeeded'", 1, 10)
        assert time.monotonic() - queued < 3
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
