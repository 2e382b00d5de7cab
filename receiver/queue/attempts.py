"""Group commit for task attempts: many finished attempts recorded in one transaction.

A worker running many short tasks would otherwise spend a commit (and an fsync) per task, one
at a time per slot, and that caps its throughput far below what the database can do. Each
result here still waits for its own commit before the worker calls the task done, so nothing
is acknowledged early; results that arrive while one batch commits simply go together in the
next. When tasks are few, a batch is one result and nothing waits for a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import anyio

from receiver.db.sql.tasks import AttemptResult
from receiver.queue.tasks import TaskQueue

__all__ = ["AttemptWriter"]


class AttemptWriter:
    """Records results through ``queue.finish_many``, batching those that arrive together.

    Args:
        queue: the task queue (its engine and worker name).
        max_batch: most results in one transaction (bounds the statement's size).
    """

    def __init__(self, queue: TaskQueue, max_batch: int = 256) -> None:
        self.queue = queue
        self.max_batch = max_batch
        self._pending: list[tuple[AttemptResult, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def write(self, result: AttemptResult) -> bool:
        """Record ``result``; return whether it was kept (False: the task was claimed again
        meanwhile, so this attempt's result is fenced off).

        Raises:
            Exception: whatever the database raised; the task's lease then runs out and the
                task is claimed again.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((result, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="framehook-attempts")
        return await future

    async def drain(self) -> None:
        """Wait until every result handed in so far is written (or has failed)."""
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
            for result, future in batch:
                # A waiter cancelled meanwhile (shutdown) has no one to tell.
                if not future.done():
                    future.set_result(result.task_id in kept)
