"""The worker's batching, on SQLite and PostgreSQL: slots freed before the outcome commits,
claims that grow with fast tasks, claimed tasks given back together."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine

from handlers import HandlerContext, JobEvent
from receiver.db.sql.tasks import AttemptResult
from receiver.queue.tasks import ClaimedTask, TaskQueue
from receiver.queue.worker import Worker
from receiver.retry import RetryPolicy
from storage import MemoryStorage
from tests.receiver.queue.test_attempts import queue_tasks, statuses
from tests.support.waiting import wait_until


class Noop:
    """A handler that notes each job it ran."""

    name = "h"
    events = frozenset({"completed"})

    def __init__(self) -> None:
        self.ran: list[str] = []

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        self.ran.append(event.job_id)


class ObservedQueue(TaskQueue):
    """A real queue that notes its claims' sizes and can hold outcomes back at a gate."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, "observed")
        self.limits: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def claim(self, handlers: Collection[str], limit: int, now: datetime) -> list[ClaimedTask]:
        self.limits.append(limit)
        return super().claim(handlers, limit, now)

    def finish_many(self, outcomes: Sequence[AttemptResult], now: datetime) -> set[int]:
        assert self.gate.wait(10), "the test never opened the gate"
        return super().finish_many(outcomes, now)


async def drain(
    queue: ObservedQueue, handler: Noop, concurrency: int, done: Callable[[], bool]
) -> Worker:
    """Run a worker on ``queue`` until ``done()`` holds; returns the stopped worker."""
    async with httpx.AsyncClient() as http:
        worker = Worker(
            queue, [handler], RetryPolicy(), MemoryStorage(), http, concurrency=concurrency
        )
        stop = asyncio.Event()
        run = asyncio.create_task(worker.run(stop))
        try:
            # Checked on a thread: it reads the database, which the worker's loop must not wait on.
            await asyncio.to_thread(wait_until, done, 10.0)
        finally:
            stop.set()
            await run
    return worker


@pytest.mark.anyio
async def test_a_slot_is_free_while_its_outcome_commits(db: Engine) -> None:
    """With one slot, the next task starts while the previous outcome waits for its commit,
    and both outcomes are recorded once the commit goes through."""
    queue_tasks(db, 2)
    queue = ObservedQueue(db)
    queue.gate.clear()
    handler = Noop()

    def both_ran_then_open() -> bool:
        if len(handler.ran) == 2:
            queue.gate.set()  # only now may the first outcome commit
        return set(statuses(db).values()) == {"succeeded"}

    await drain(queue, handler, 1, both_ran_then_open)
    assert sorted(handler.ran) == ["job-0", "job-1"]


@pytest.mark.anyio
async def test_fast_tasks_grow_the_claims_and_a_dry_queue_shrinks_them(db: Engine) -> None:
    """Handlers that outrun the claims make them larger than the slots; once the queue is
    empty the worker claims a slot's worth again."""
    queue_tasks(db, 300)
    queue = ObservedQueue(db)
    handler = Noop()
    worker = await drain(queue, handler, 2, lambda: len(handler.ran) == 300)
    assert max(queue.limits) > 4 * worker.concurrency
    assert worker.prefetch == worker.concurrency
    assert len(queue.limits) < 60  # 300 tasks, not a claim per task or two


def test_tasks_given_back_together_skip_the_ones_claimed_again(db: Engine) -> None:
    """Releasing claimed tasks in one statement queues those still this worker's, attempt
    not counted, and leaves alone one a newer claim holds."""
    queue_tasks(db, 3)
    now = datetime.now(UTC) + timedelta(seconds=1)
    lost = TaskQueue(db, "lost", lease_seconds=1)
    kept, other, taken = sorted(lost.claim(["h"], 3, now), key=lambda t: t.id)
    later = now + timedelta(seconds=5)
    with db.begin() as connection:  # only ``taken``'s lease ran out
        connection.exec_driver_sql(
            "UPDATE tasks SET lease_expires_at = NULL WHERE id IN (?, ?)"
            if db.dialect.name == "sqlite"
            else "UPDATE tasks SET lease_expires_at = NULL WHERE id IN (%s, %s)",
            (kept.id, other.id),
        )
    rescuer = TaskQueue(db, "rescuer")
    assert rescuer.reclaim_expired(["h"], later) == 1
    (again,) = rescuer.claim(["h"], 1, later)
    assert again.id == taken.id
    assert lost.release_many([kept, other, taken], later) == 2
    assert statuses(db) == {kept.id: "queued", other.id: "queued", taken.id: "running"}
    assert {t.id: t.attempt for t in lost.claim(["h"], 2, later)} == {kept.id: 1, other.id: 1}


def test_wake_from_another_thread_starts_a_task_without_a_poll(db: Engine) -> None:
    """``wake()`` called off the worker's loop (an admin route, once the worker has its own
    thread) still cuts the worker's 30 s poll short."""
    handler = Noop()
    queue = ObservedQueue(db)
    stop = asyncio.Event()
    started = threading.Event()
    workers: list[Worker] = []

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            worker = Worker(
                queue, [handler], RetryPolicy(), MemoryStorage(), http, poll_seconds=30.0
            )
            workers.append(worker)
            started.set()
            await worker.run(stop)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    try:
        assert started.wait(10)
        wait_until(lambda: len(queue.limits) >= 1, 10.0)  # it looked once, found nothing
        queue_tasks(db, 1)
        workers[0].wake()
        wait_until(lambda: handler.ran == ["job-0"], 5.0)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
