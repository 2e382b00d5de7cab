"""Group commit: many requests, one transaction, one fsync; each request awaits its own commit.

A durable commit costs an fsync (SQLite ``synchronous=FULL``) or a WAL flush (PostgreSQL).
Paying it per request caps the receiver at the disk's flush rate, so writer threads take
whatever requests are waiting, record them in one transaction and commit once. A request is
answered only after the commit that holds it returned: batching changes the cost, never the
promise. The queue is bounded; when it is full the receiver sheds load with 503 instead of
growing without limit.

Failure handling: if a batch fails as a whole, it is rolled back and each item is retried in a
transaction of its own, so one bad item fails alone. A database that is down fails every item
with ``Unavailable`` (503: Apiframe tries again).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from receiver.database import IMMEDIATE
from receiver.errors import Unavailable

__all__ = ["Committer"]

T = TypeVar("T")
R = TypeVar("R")

_log = structlog.get_logger("framehook.committer")


@dataclass(slots=True)
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    loop: asyncio.AbstractEventLoop


_STOP = object()


def _settle(pairs: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    # Runs on the event loop; a request that gave up (timeout, disconnect) is skipped.
    for future, result, error in pairs:
        if future.done():
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


def _as_unavailable(exc: BaseException) -> Unavailable:
    # Either way the sender is told to retry (503): nothing it sent was acknowledged.
    if isinstance(exc, OperationalError | InterfaceError | TimeoutError):
        return Unavailable("database_unavailable", "the database could not commit the event")
    return Unavailable("intake_failed", "the event could not be recorded; see the server log")


class Committer(Generic[T, R]):
    """Writer threads that run ``work`` over batches of items, committing once per batch.

    Args:
        work: records a batch on a connection inside an open transaction and returns one
            result per item, in order; it must not commit.
        writers: threads (and connections); 1 for SQLite, a few for PostgreSQL.
        batch_max: most items in one transaction.
        max_pending: items allowed to wait; past that ``submit`` raises ``Unavailable``.
        wait_seconds: how long ``submit`` waits for the commit before giving up.
        on_commit: called in the writer thread with each committed batch's results.
    """

    def __init__(
        self,
        work: Callable[[Connection, Sequence[T]], list[R]],
        *,
        writers: int = 1,
        batch_max: int = 256,
        max_pending: int = 4096,
        wait_seconds: float = 10.0,
        on_commit: Callable[[list[R]], None] | None = None,
    ) -> None:
        self._work = work
        self._writers = writers
        self._batch_max = batch_max
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._on_commit = on_commit
        self._wait_seconds = wait_seconds
        self._threads: list[threading.Thread] = []
        self._engine: Engine | None = None
        self._accepting = False

    @property
    def pending(self) -> int:
        """Items waiting for a writer (an approximation, for metrics and load shedding)."""
        return self._queue.qsize()

    def start(self, engine: Engine) -> None:
        """Start the writer threads on ``engine``."""
        self._engine = engine
        self._accepting = True
        for n in range(self._writers):
            thread = threading.Thread(target=self._run, name=f"framehook-writer-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, let the writers commit what is queued, and join them."""
        self._accepting = False
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait until the transaction holding it has committed.

        Raises:
            Unavailable: the queue is full (``overloaded``), the commit failed
                (``database_unavailable``) or did not finish in time (``commit_timeout``).
        """
        if not self._accepting:
            raise Unavailable("shutting_down", "framehook is shutting down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        try:
            self._queue.put_nowait(_Pending(item, future, loop))
        except queue.Full:
            raise Unavailable("overloaded", "too many events waiting to be committed") from None
        try:
            return await asyncio.wait_for(future, self._wait_seconds)
        except TimeoutError:
            raise Unavailable("commit_timeout", "the database did not commit in time") from None

    def _take_batch(self, first: _Pending[T, R]) -> list[_Pending[T, R]]:
        batch = [first]
        while len(batch) < self._batch_max:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is _STOP:
                # Another writer's stop signal: hand it back and finish this batch.
                self._queue.put(_STOP)
                break
            batch.append(nxt)
        return batch

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = self._take_batch(first)
            self._commit(batch)

    def _transaction(self, items: Sequence[T]) -> list[R]:
        assert self._engine is not None
        with (
            self._engine.connect().execution_options(**IMMEDIATE) as connection,
            connection.begin(),
        ):
            return self._work(connection, items)

    def _commit(self, batch: list[_Pending[T, R]]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]
        try:
            results = self._transaction([p.item for p in batch])
            outcomes = [(p.future, r, None) for p, r in zip(batch, results, strict=True)]
            committed = results
        except Exception as exc:
            if len(batch) == 1:
                _log.error(
                    "commit failed", error=repr(exc), exc_info=not isinstance(exc, DBAPIError)
                )
                outcomes = [(batch[0].future, None, _as_unavailable(exc))]
                committed = []
            else:
                _log.warning(
                    "batch failed; committing items one by one", size=len(batch), error=repr(exc)
                )
                outcomes, committed = self._one_by_one(batch)
        if committed and self._on_commit is not None:
            try:
                self._on_commit(committed)
            except Exception:
                _log.exception("on_commit hook failed")
        self._resolve(batch, outcomes)

    def _one_by_one(
        self, batch: list[_Pending[T, R]]
    ) -> tuple[list[tuple[asyncio.Future[Any], Any, BaseException | None]], list[R]]:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        committed: list[R] = []
        for pending in batch:
            try:
                (result,) = self._transaction([pending.item])
            except Exception as exc:
                _log.error(
                    "commit failed", error=repr(exc), exc_info=not isinstance(exc, DBAPIError)
                )
                outcomes.append((pending.future, None, _as_unavailable(exc)))
            else:
                outcomes.append((pending.future, result, None))
                committed.append(result)
        return outcomes, committed

    @staticmethod
    def _resolve(
        batch: list[_Pending[T, R]],
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]],
    ) -> None:
        by_loop: dict[
            asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]
        ] = {}
        for pending, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(pending.loop, []).append(outcome)
        for loop, pairs in by_loop.items():
            # A closed loop means nobody is waiting for these answers any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, pairs)
