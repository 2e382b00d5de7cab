"""Task outcomes recorded in batches, on SQLite and PostgreSQL: fenced one by one, read back
through the models unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from receiver.apiframe.events import parse_body
from receiver.db.engine import writing
from receiver.db.models import Task, TaskAttempt
from receiver.db.sql.tasks import AttemptResult
from receiver.intake.recorder import Arrival, Recorder, Subscription
from receiver.queue.attempts import AttemptWriter
from receiver.queue.tasks import ClaimedTask, TaskQueue, attempt_result


def queue_tasks(db: Engine, count: int) -> None:
    recorder = Recorder(db.dialect.name, [Subscription("h", frozenset({"completed"}))])
    bodies = [
        orjson.dumps({"event": "completed", "jobId": f"job-{n}", "result": {"images": []}})
        for n in range(count)
    ]
    with writing(db) as connection:
        recorder.record_many(
            connection, [Arrival(parse_body(b), b, datetime.now(UTC), "r") for b in bodies]
        )


def test_one_batch_records_each_outcome_and_fences_the_stale_one(db: Engine) -> None:
    """Succeeded, retry and dead go in one transaction; an attempt that lost its lease to a
    newer claim is refused (and leaves no attempt row) while the others are kept."""
    queue_tasks(db, 3)
    now = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=123456)
    lost = TaskQueue(db, "lost", lease_seconds=1)
    done, retried, lapsed = sorted(lost.claim(["h"], 3, now), key=lambda t: t.id)
    later = now + timedelta(seconds=5)
    rescuer = TaskQueue(db, "rescuer")
    assert rescuer.reclaim_expired(["h"], later) == 3
    claims = {t.id: t for t in rescuer.claim(["h"], 3, later)}
    # One batch: the rescuer's outcomes for two tasks, and the lost worker's stale attempt 1
    # of the third, which the rescuer now holds as attempt 2.
    retry_at = later + timedelta(minutes=7)
    outcomes = [
        attempt_result(claims[done.id], "succeeded"),
        attempt_result(claims[retried.id], "retry", "HTTP 503", retry_at),
        attempt_result(lapsed, "dead", "too late"),  # attempt 1: the task is on attempt 2
    ]
    kept = rescuer.finish_many(outcomes, later)
    assert kept == {done.id, retried.id}

    with Session(db) as session:
        tasks = {t.id: t for t in session.exec(select(Task))}
        attempts = session.exec(select(TaskAttempt)).all()
    assert (tasks[done.id].status, tasks[done.id].finished_at) == ("succeeded", later)
    assert tasks[done.id].lease_expires_at is None
    assert tasks[retried.id].status == "queued"
    assert tasks[retried.id].run_at == retry_at
    assert tasks[retried.id].finished_at is None
    assert tasks[retried.id].last_error == "HTTP 503"
    assert (tasks[lapsed.id].status, tasks[lapsed.id].attempts) == ("running", 2)
    assert sorted((a.task_id, a.attempt, a.outcome, a.worker) for a in attempts) == sorted(
        [(done.id, 2, "succeeded", "rescuer"), (retried.id, 2, "retry", "rescuer")]
    )
    started = {a.task_id: a.started_at for a in attempts}
    assert started[done.id] == later
    # The retried task comes back when due, with the claim's formats intact.
    assert rescuer.claim(["h"], 5, retry_at - timedelta(seconds=1)) == []
    (again,) = rescuer.claim(["h"], 5, retry_at)
    assert (again.id, again.attempt) == (retried.id, 3)


class CountingQueue(TaskQueue):
    """A real queue that counts its outcome transactions (and can be told to fail)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, "counting")
        self.batches: list[int] = []
        self.fail: Exception | None = None

    def finish_many(self, outcomes: Sequence[AttemptResult], now: datetime) -> set[int]:
        if self.fail is not None:
            raise self.fail
        self.batches.append(len(outcomes))
        return super().finish_many(outcomes, now)


def statuses(db: Engine) -> dict[int | None, str]:
    with Session(db) as session:
        return {t.id: t.status for t in session.exec(select(Task))}


def claim_all(queue: TaskQueue, count: int) -> list[ClaimedTask]:
    claimed = queue.claim(["h"], count, datetime.now(UTC))
    assert len(claimed) == count
    return claimed


@pytest.mark.anyio
async def test_outcomes_that_arrive_together_share_a_transaction(db: Engine) -> None:
    """Forty tasks finishing at once cost a couple of commits, not forty, and each waiter
    learns its own outcome was kept."""
    queue_tasks(db, 40)
    queue = CountingQueue(db)
    claimed = claim_all(queue, 40)
    writer = AttemptWriter(queue)
    kept = await asyncio.gather(*(writer.write(attempt_result(t, "succeeded")) for t in claimed))
    assert kept == [True] * 40
    assert sum(queue.batches) == 40
    assert len(queue.batches) <= 2
    assert set(statuses(db).values()) == {"succeeded"}


@pytest.mark.anyio
async def test_a_failed_batch_fails_its_waiters_and_the_next_one_is_written(db: Engine) -> None:
    """The database refusing a batch reaches every outcome in it; the writer keeps working."""
    queue_tasks(db, 2)
    queue = CountingQueue(db)
    first, second = claim_all(queue, 2)
    writer = AttemptWriter(queue)
    queue.fail = ConnectionError("database away")
    with pytest.raises(ConnectionError, match="database away"):
        await writer.write(attempt_result(first, "succeeded"))
    queue.fail = None
    assert await writer.write(attempt_result(second, "succeeded")) is True
    assert statuses(db) == {first.id: "running", second.id: "succeeded"}
