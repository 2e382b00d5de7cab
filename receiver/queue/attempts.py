"""Group commit for task outcomes: many finished attempts recorded in one transaction.

A worker running many short tasks would otherwise spend a commit (and an fsync) per task, one
at a time per slot, and that caps its throughput far below what the database can do. Each
outcome here still waits for its own commit before the worker calls the task done, so nothing
is acknowledged early; outcomes that arrive while one batch commits simply go together in the
next. When tasks are few, a batch is one outcome and nothing waits for a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import anyio

from receiver.db.sql.tasks import AttemptOutcome
from receiver.queue.tasks import TaskQueue

__all__ = ["OutcomeWriter"]


class OutcomeWriter:
    """Records outcomes through ``queue.finish_many``, batching those that arrive together.

    Args:
        queue: the task queue (its engine and worker name).
        max_batch: most outcomes in one transaction (bounds the statement's size).
    """

    def __init__(self, queue: TaskQueue, max_batch: int = 256) -> None:
        self.queue = queue
        self.max_batch = max_batch
        self._pending: list[tuple[AttemptOutcome, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, outcome: AttemptOutcome) -> bool:
        """Record ``outcome``; return whether it was kept (False: the task was claimed again
        meanwhile, so this attempt's outcome is fenced off).

        Raises:
            Exception: whatever the database raised; the task's lease then runs out and the
                task is claimed again.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((outcome, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="framehook-outcomes")
        return await future

    async def drain(self) -> None:
        """Wait until every outcome handed in so far is written (or has failed)."""
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                kept = await anyio.to_thread.run_sync(
                    self.queue.finish_many, [o for o, _ in batch], datetime.now(UTC)
                )
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for outcome, future in batch:
                # A waiter cancelled meanwhile (shutdown) has no one to tell.
                if not future.done():
                    future.set_result(outcome.task_id in kept)
