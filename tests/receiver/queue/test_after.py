"""Handlers ordered for one delivery (``after``), on SQLite and PostgreSQL: a task waits for
the tasks it names, runs once they have ended whatever their outcome, waits again on replay."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from handlers import HandlerContext, JobEvent, PermanentFailure
from receiver.apiframe.events import parse_body
from receiver.db.engine import writing
from receiver.db.models import AttemptOutcome
from receiver.db.retention import prune
from receiver.errors import RegistryError
from receiver.intake.recorder import Arrival, Recorder
from receiver.queue.registry import load_handlers, subscriptions_for
from receiver.queue.replay import replay_job, retry_task
from receiver.queue.tasks import TaskQueue
from tests.receiver.admin.scenario import AUTH, QUICK_WORKER, TOKEN, completed, post, progress
from tests.support.database import rows
from tests.support.processes import framehook_env, run_cli
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Timed:
    """A test handler: records each run's job, start and end (monotonic clock); sleeps
    ``seconds``, then fails for good when ``fail``."""

    name: str
    after: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset({"completed", "failed"})
    models: frozenset[str] | None = None
    seconds: float = 0.0
    fail: bool = False
    runs: list[tuple[str, float, float]] = field(default_factory=list)

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        start = time.monotonic()
        try:
            await asyncio.sleep(self.seconds)
            if self.fail:
                raise PermanentFailure("told to fail")
        finally:
            self.runs.append((event.job_id, start, time.monotonic()))


# For the start-up test: two handlers that run after each other.
CYCLE_A = Timed("a", after=frozenset({"b"}))
CYCLE_B = Timed("b", after=frozenset({"a"}))


def statuses(db: Engine) -> dict[str, tuple[str, str | None]]:
    """Each handler's task: status and waits_for (one delivery in the test)."""
    return {
        r.handler: (r.status, r.waits_for)
        for r in rows(db, "SELECT handler, status, waits_for FROM tasks ORDER BY id")
    }


def record(db: Engine, recorder: Recorder, *payloads: dict[str, Any]) -> None:
    """Record webhook bodies in one intake batch, as the receiver does."""
    arrivals = [
        Arrival(parse_body(b), b, datetime.now(UTC), "test")
        for b in (orjson.dumps(p) for p in payloads)
    ]
    with writing(db) as connection:
        recorder.record_many(connection, arrivals)


def recorder_for(db: Engine, *handlers: Any) -> Recorder:
    return Recorder(db.dialect.name, subscriptions_for(load_handlers([], handlers)))


def run_one(queue: TaskQueue, outcome: AttemptOutcome) -> list[str]:
    """Claim what is due; end every claimed task with ``outcome``; return their handlers."""
    now = datetime.now(UTC)
    claimed = queue.claim(["first", "second"], 10, now)
    for task in claimed:
        assert queue.finish(task, outcome, now)
    return [t.handler for t in claimed]


def test_second_waits_for_first_then_is_queued_when_first_ends(db: Engine) -> None:
    """A delivery both want: second is created waiting (for first); first's end queues it."""
    recorder = recorder_for(db, Timed("first"), Timed("second", after=frozenset({"first"})))
    record(db, recorder, completed("job-1", "https://x.test/a.png"))
    assert statuses(db) == {"first": ("queued", None), "second": ("waiting", "first")}
    queue = TaskQueue(db, "w")
    assert run_one(queue, AttemptOutcome.SUCCEEDED) == ["first"]
    assert statuses(db)["second"] == ("queued", "first")
    assert run_one(queue, AttemptOutcome.SUCCEEDED) == ["second"]


def test_a_retry_of_first_keeps_second_waiting_and_its_death_releases_it(db: Engine) -> None:
    """first queued again for a retry is unfinished: second waits; first dead: second runs."""
    recorder = recorder_for(db, Timed("first"), Timed("second", after=frozenset({"first"})))
    record(db, recorder, completed("job-2", "https://x.test/a.png"))
    queue = TaskQueue(db, "w")
    now = datetime.now(UTC)
    (task,) = queue.claim(["first", "second"], 10, now)
    assert queue.finish(task, AttemptOutcome.RETRY, now, "boom", run_at=now)
    assert statuses(db)["second"] == ("waiting", "first")
    assert run_one(queue, AttemptOutcome.DEAD) == ["first"]
    assert statuses(db) == {"first": ("dead", None), "second": ("queued", "first")}


def test_second_is_queued_at_once_when_first_is_not_subscribed(db: Engine) -> None:
    """first wants only another model's jobs: second's task is queued at once, waiting for
    nothing; the same for a handler named in ``after`` that is not loaded at all."""
    first = Timed("first", models=frozenset({"flux-pro"}))
    recorder = recorder_for(db, first, Timed("second", after=frozenset({"first"})))
    record(db, recorder, completed("job-3", "https://x.test/a.png"))
    assert statuses(db) == {"second": ("queued", None)}
    with capture_logs() as logs:
        alone = recorder_for(db, Timed("third", after=frozenset({"download"})))
    assert [log["event"] for log in logs] == [
        'handler "third" runs after "download", which is not loaded: its tasks do not wait for it'
    ]
    record(db, alone, completed("job-4", "https://x.test/a.png"))
    assert statuses(db)["third"] == ("queued", None)


def test_a_lease_run_out_on_the_last_attempt_releases_second(db: Engine) -> None:
    """first's worker died on its last attempt: buried dead, and second is queued with it."""
    recorder = recorder_for(db, Timed("first"), Timed("second", after=frozenset({"first"})))
    record(db, recorder, completed("job-5", "https://x.test/a.png"))
    queue = TaskQueue(db, "w", lease_seconds=1, max_attempts=1)
    now = datetime.now(UTC)
    assert [t.handler for t in queue.claim(["first", "second"], 10, now)] == ["first"]
    assert queue.bury_exhausted(now + timedelta(minutes=1)) == 1
    assert statuses(db) == {"first": ("dead", None), "second": ("queued", "first")}


def test_a_superseded_progress_task_releases_the_one_waiting_for_it(db: Engine) -> None:
    """first's queued progress task superseded by its completed one (second wants progress
    only): second's progress task, which waited for it, is queued; in one batch or two."""
    first = Timed("first", events=frozenset({"progress", "completed"}))
    second = Timed("second", events=frozenset({"progress"}), after=frozenset({"first"}))
    recorder = recorder_for(db, first, second)
    record(db, recorder, progress("job-6", 30))
    assert statuses(db) == {"first": ("queued", None), "second": ("waiting", "first")}
    record(db, recorder, completed("job-6", "https://x.test/a.png"))
    found = [(r.handler, r.event, r.status) for r in rows(db, "SELECT * FROM tasks ORDER BY id")]
    assert found == [
        ("first", "progress", "superseded"),
        ("second", "progress", "queued"),
        ("first", "completed", "queued"),
    ]
    record(db, recorder, progress("job-7", 30), completed("job-7", "https://x.test/a.png"))
    found = [
        (r.handler, r.event, r.status)
        for r in rows(db, "SELECT * FROM tasks WHERE job_id = 'job-7' ORDER BY id")
    ]
    assert found == [
        ("first", "progress", "superseded"),
        ("second", "progress", "queued"),
        ("first", "completed", "queued"),
    ]


def test_pruning_keeps_the_body_a_waiting_task_needs(db: Engine) -> None:
    """Retention drops old bodies, but not one whose task still waits to run."""
    recorder = recorder_for(db, Timed("first"), Timed("second", after=frozenset({"first"})))
    record(db, recorder, completed("job-p", "https://x.test/a.png"))
    with writing(db) as connection:  # as if first had run: only second's task keeps it
        connection.execute(text("UPDATE tasks SET status = 'succeeded' WHERE handler = 'first'"))
    assert prune(db, timedelta(0), now=datetime.now(UTC) + timedelta(days=1)).bodies == 0
    assert rows(db, "SELECT body FROM deliveries")[0].body is not None


def test_replay_makes_second_wait_again_and_retrying_it_alone_queues_it(db: Engine) -> None:
    """Replaying the job re-queues both: second waits for the new first. Retrying second
    alone, first ended, queues it at once; a waiting task is not retried."""
    recorder = recorder_for(db, Timed("first"), Timed("second", after=frozenset({"first"})))
    record(db, recorder, completed("job-8", "https://x.test/a.png"))
    queue = TaskQueue(db, "w")
    assert run_one(queue, AttemptOutcome.SUCCEEDED) == ["first"]
    assert run_one(queue, AttemptOutcome.DEAD) == ["second"]
    assert replay_job(db, "job-8") == 2
    assert statuses(db) == {"first": ("queued", None), "second": ("waiting", "first")}
    (waiting,) = rows(db, "SELECT id FROM tasks WHERE handler = 'second'")
    assert retry_task(db, waiting.id) is False
    assert run_one(queue, AttemptOutcome.SUCCEEDED) == ["first"]
    assert run_one(queue, AttemptOutcome.DEAD) == ["second"]
    assert retry_task(db, waiting.id) is True
    assert statuses(db)["second"] == ("queued", "first")
    assert run_one(queue, AttemptOutcome.DEAD) == ["second"]
    # first re-queued alone, then second retried: it waits for that first run.
    assert replay_job(db, "job-8", handler="first") == 1
    assert retry_task(db, waiting.id) is True
    assert statuses(db) == {"first": ("queued", None), "second": ("waiting", "first")}
    assert run_one(queue, AttemptOutcome.SUCCEEDED) == ["first"]
    assert statuses(db)["second"] == ("queued", "first")


def test_the_worker_never_starts_second_before_first_ended(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """Embedded worker: second starts only after first's run ended, also when first fails
    for good; replayed, the order holds again."""
    first = Timed("first", seconds=0.3)
    second = Timed("second", after=frozenset({"first"}))
    client = make_client(registered=(first, second), handlers=[], **QUICK_WORKER)
    assert post(client, completed("job-w1", "https://x.test/a.png")).status_code == 202
    wait_until(lambda: len(second.runs) == 1)
    first.fail = True
    assert post(client, completed("job-w2", "https://x.test/a.png")).status_code == 202
    wait_until(lambda: len(second.runs) == 2)
    assert replay_job(db, "job-w1") == 2
    client.app.state.worker.wake_threadsafe()  # type: ignore[attr-defined]
    wait_until(lambda: len(second.runs) == 3)
    ends: dict[str, list[float]] = {}
    starts: dict[str, list[float]] = {}
    for job, _start, end in first.runs:
        ends.setdefault(job, []).append(end)
    for job, start, _end in second.runs:
        starts.setdefault(job, []).append(start)
    assert {job: len(s) for job, s in starts.items()} == {"job-w1": 2, "job-w2": 1}
    for job, runs in starts.items():
        # Second's k-th run for a job starts after first's k-th run for it ended.
        assert all(start >= end for start, end in zip(runs, ends[job], strict=True)), job
    dead = rows(db, "SELECT handler, status FROM tasks WHERE job_id = 'job-w2' ORDER BY id")
    assert [(r.handler, r.status) for r in dead] == [("first", "dead"), ("second", "succeeded")]


def test_the_admin_api_shows_a_waiting_task_and_refuses_to_retry_it(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """No worker: ``/api/tasks?status=waiting`` lists second, with what it waits for; retrying
    it is 409 task_waiting."""
    first, second = Timed("first"), Timed("second", after=frozenset({"first"}))
    api = make_client(registered=(first, second), handlers=[], admin_token=TOKEN)
    assert post(api, completed("job-a", "https://x.test/a.png")).status_code == 202
    page = api.get("/api/tasks", params={"status": "waiting"}, headers=AUTH)
    assert page.status_code == 200, page.text
    (task,) = page.json()["items"]
    assert (task["handler"], task["status"], task["waitsFor"]) == ("second", "waiting", ["first"])
    answer = api.post(f"/api/tasks/{task['id']}/retry", headers=AUTH)
    assert answer.status_code == 409
    assert answer.json()["reason"] == "task_waiting"


def test_handlers_that_run_after_each_other_are_refused_at_start(tmp_path: Path) -> None:
    """A cycle is a RegistryError naming the handlers; ``framehook worker`` says it in one
    line and exits."""
    with pytest.raises(RegistryError, match=r'cycle \("a" -> "b" -> "a"'):
        load_handlers([], [CYCLE_A, CYCLE_B])
    with pytest.raises(RegistryError, match='"a" names itself'):
        load_handlers([], [Timed("a", after=frozenset({"a"}))])
    spec = "tests.receiver.queue.test_after:CYCLE_A,tests.receiver.queue.test_after:CYCLE_B"
    env = framehook_env(
        FRAMEHOOK_HANDLERS=spec,
        FRAMEHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'f.db'}",
        PYTHONPATH=str(ROOT),
    )
    done = run_cli(["worker"], env, tmp_path)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert 'cycle ("a" -> "b" -> "a"' in lines[0]
