"""Group commit: many requests, one transaction, one flush; each request awaits its own commit.

A durable commit costs an fsync (SQLite ``synchronous=FULL``) or a WAL flush (PostgreSQL).
Paying it per request caps the receiver at the disk's flush rate, so requests that arrive while
a commit is in flight wait for the next one, which takes them all. A request is answered only
after the commit that holds it returned: batching changes the cost, never the promise. The
number of waiting requests is bounded; past it the receiver sheds load with 503.

Where the work runs depends on the database:

* ``inline`` (SQLite): the event loop runs the batch's statements itself (microseconds, no
  I/O until commit: the write lock is already held) and only ``BEGIN`` (which may wait for
  another process's lock) and the commit (the fsync) go to a thread. One Python thread does
  the Python work, so no time is lost handing the GIL back and forth.
* threads (PostgreSQL): each writer runs whole transactions in a thread of its own, since every
  statement is a network round trip the event loop must not wait for.

Deadlines: a request waits at most ``wait_seconds`` for its commit, then is answered 503
``commit_timeout`` (its item stays queued and may still commit: Apiframe's retry is then a
duplicate). One timer per committer, set for the oldest waiting request, enforces them: a timer,
a ``shield`` and a waiter per request cost more than the rest of the committer together.

Failure handling: a batch that fails as a whole is rolled back and its items are retried in a
transaction each, so one bad item fails alone. A database that is down fails every item with
``Unavailable`` (503: Apiframe tries again). A full or failing disk (``disk_trouble``) is no
item's fault: the whole batch fails at once with 503 ``disk_full``, the connection is replaced
rather than reused, and ``disk_failure`` says so (for ``/readyz``) until a commit succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection, RootTransaction
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from receiver.db.engine import IMMEDIATE, disk_trouble, write_lock
from receiver.errors import Unavailable
from receiver.logs import get_logger

__all__ = ["Committer", "DiskFailure"]

T = TypeVar("T")
R = TypeVar("R")

_log = get_logger("framehook.committer")


@dataclass(slots=True)
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    deadline: float  # on the loop's clock: past it, the request is answered commit_timeout


def _is_outage(exc: BaseException) -> bool:
    # SQLAlchemy's wrappers, or a driver's own (the intake's statements run on the DBAPI
    # cursor): PEP 249 names the "database went away" classes the same in every driver.
    if isinstance(exc, OperationalError | InterfaceError | TimeoutError):
        return True
    return any(c.__name__ in ("OperationalError", "InterfaceError") for c in type(exc).__mro__)


@dataclass(frozen=True, slots=True)
class DiskFailure:
    """A commit that failed on the database's disk.

    Attributes:
        trouble: ``disk_full`` or ``disk_io_error`` (see ``receiver.db.engine.disk_trouble``).
        error: the database's message.
        at: when, on ``time.monotonic()``'s clock.
    """

    trouble: str
    error: str
    at: float


def _as_unavailable(exc: BaseException) -> Unavailable:
    # Either way the sender is told to retry (503): nothing it sent was acknowledged.
    if disk_trouble(exc) == "disk_full":
        return Unavailable("disk_full", "the database's disk is full: the event was not stored")
    if _is_outage(exc):
        return Unavailable("database_unavailable", "the database could not commit the event")
    return Unavailable("intake_failed", "the event could not be recorded; see the server log")


class _Writer:
    """One writer's connection (kept between batches: a pool checkout and reset per batch
    costs more than the batch), and the thread its blocking calls run on."""

    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        self._lock = write_lock(engine)
        self._locked = False
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def begin(self) -> tuple[Connection, RootTransaction]:
        """Take the process's SQLite write lock (if any) and begin; ``end`` releases it."""
        if self._lock is not None:
            # Before the worker's and the checkpointer's writers: a webhook waits for at most
            # the transaction in progress (receiver/db/writelock.py).
            self._lock.acquire(urgent=True)
            self._locked = True
        try:
            if self._connection is None:
                self._connection = self._engine.connect().execution_options(**IMMEDIATE)
            return self._connection, self._connection.begin()
        except BaseException:
            self.end()
            raise

    def end(self) -> None:
        """After the commit or rollback: let the next writer in."""
        if self._locked and self._lock is not None:
            self._locked = False
            self._lock.release()

    def drop(self, invalidate: bool = False) -> None:
        """Forget the connection after a failure (rolling back); the next batch reconnects.
        ``invalidate`` (after a disk error) closes it for good instead of pooling it again."""
        if self._connection is not None:
            with contextlib.suppress(Exception):
                if invalidate:
                    self._connection.invalidate()
                self._connection.close()
            self._connection = None
        self.end()

    def close(self) -> None:
        self.drop()
        self.thread.shutdown(wait=True)


class Committer(Generic[T, R]):
    """Runs ``work`` over batches of submitted items, committing once per batch.

    Args:
        work: records a batch on a connection inside an open transaction and returns one
            result per item, in order; it must not commit.
        writers: concurrent transactions (1 for SQLite, a few for PostgreSQL).
        inline: run ``work`` on the event loop and only the commit in a thread (SQLite).
        batch_max: most items in one transaction.
        max_pending: items allowed to wait; past that ``submit`` raises ``Unavailable``.
        wait_seconds: how long ``submit`` waits for the commit before giving up.
        on_commit: called on the event loop with each committed batch's results.
    """

    def __init__(
        self,
        work: Callable[[Connection, Sequence[T]], list[R]],
        *,
        writers: int = 1,
        inline: bool = False,
        batch_max: int = 256,
        max_pending: int = 4096,
        wait_seconds: float = 10.0,
        on_commit: Callable[[list[R]], None] | None = None,
    ) -> None:
        self._work = work
        self._writers = writers
        self._inline = inline
        self._batch_max = batch_max
        self._max_pending = max_pending
        self._wait_seconds = wait_seconds
        self._on_commit = on_commit
        self._pending: deque[_Pending[T, R]] = deque()
        # Every item whose request still waits (queued or in a transaction), oldest first, and
        # the one timer that answers the oldest when its time is up: a deadline per committer
        # rather than a timer (``wait_for``) and a ``shield`` per request.
        self._waiting: deque[_Pending[T, R]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting = False
        self._disk_failure: DiskFailure | None = None

    @property
    def pending(self) -> int:
        """Items waiting for a writer (for metrics and load shedding)."""
        return len(self._pending)

    @property
    def disk_failure(self) -> DiskFailure | None:
        """The last commit's failure on a full or failing disk, if no commit succeeded since."""
        return self._disk_failure

    async def start(self, engine: Engine) -> None:
        """Start the writers on ``engine`` (call from the event loop that will submit)."""
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._accepting = True
        self._tasks = [
            asyncio.create_task(self._run(_Writer(engine, f"framehook-writer-{n}")))
            for n in range(self._writers)
        ]

    async def stop(self) -> None:
        """Stop accepting, commit what is already queued, and stop the writers."""
        self._accepting = False
        if self._wake is not None:
            self._wake.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait until the transaction holding it has committed.

        Raises:
            Unavailable: the queue is full (``overloaded``), the commit failed
                (``database_unavailable``/``intake_failed``), did not finish in time
                (``commit_timeout``), or the committer is stopping (``shutting_down``).
        """
        if not self._accepting or self._wake is None or self._loop is None:
            raise Unavailable("shutting_down", "framehook is shutting down")
        if len(self._pending) >= self._max_pending:
            raise Unavailable("overloaded", "too many events waiting to be committed")
        loop = self._loop
        future: asyncio.Future[R] = loop.create_future()
        pending = _Pending(item, future, loop.time() + self._wait_seconds)
        self._pending.append(pending)
        self._waiting.append(pending)
        if self._timer is None:
            self._timer = loop.call_at(pending.deadline, self._expire)
        self._wake.set()
        # A request that gives up (its task cancelled) cancels the future: the item still
        # commits, and settling it skips the cancelled future.
        return await future

    def _expire(self) -> None:
        """Answer ``commit_timeout`` to every request past its deadline (their items stay
        queued or in their transaction, and may still commit: a retry is then a duplicate),
        and set the timer for the next one."""
        assert self._loop is not None
        self._timer = None
        now = self._loop.time()
        waiting = self._waiting
        while waiting and (waiting[0].future.done() or waiting[0].deadline <= now):
            future = waiting.popleft().future
            if not future.done():
                future.set_exception(
                    Unavailable("commit_timeout", "the database did not commit in time")
                )
        if waiting:
            self._timer = self._loop.call_at(waiting[0].deadline, self._expire)

    def _forget_settled(self) -> None:
        # Settled requests leave the deadline queue as soon as the oldest ones are settled,
        # so it holds (and keeps alive) only what is in flight.
        waiting = self._waiting
        while waiting and waiting[0].future.done():
            waiting.popleft()

    async def _run(self, writer: _Writer) -> None:
        assert self._wake is not None
        try:
            while True:
                if not self._pending:
                    if not self._accepting:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                batch = [
                    self._pending.popleft() for _ in range(min(self._batch_max, len(self._pending)))
                ]
                await self._commit(writer, batch)
                self._forget_settled()
        finally:
            await asyncio.get_running_loop().run_in_executor(None, writer.close)

    async def _transaction(self, writer: _Writer, items: Sequence[T]) -> list[R]:
        loop = asyncio.get_running_loop()
        if not self._inline:
            return await loop.run_in_executor(writer.thread, self._blocking, writer, items)
        try:
            # BEGIN IMMEDIATE may wait for another process's write lock: not on the loop.
            connection, transaction = await loop.run_in_executor(writer.thread, writer.begin)
            results = self._work(connection, items)
        except Exception as exc:
            writer.drop(invalidate=disk_trouble(exc) is not None)
            raise
        try:
            # The commit (and its fsync) releases the GIL: the loop serves requests meanwhile.
            await loop.run_in_executor(writer.thread, transaction.commit)
        except Exception as exc:
            writer.drop(invalidate=disk_trouble(exc) is not None)
            raise
        writer.end()
        return results

    def _blocking(self, writer: _Writer, items: Sequence[T]) -> list[R]:
        try:
            connection, transaction = writer.begin()
            with transaction:
                results = self._work(connection, items)
        except Exception as exc:
            writer.drop(invalidate=disk_trouble(exc) is not None)
            raise
        writer.end()
        return results

    async def _commit(self, writer: _Writer, batch: list[_Pending[T, R]]) -> None:
        try:
            results = await self._transaction(writer, [p.item for p in batch])
        except Exception as exc:
            trouble = self._note_disk_failure(exc)
            if len(batch) == 1 or trouble is not None:
                # One by one could only fail the same way, each paying for a transaction.
                self._log_failure(exc, size=len(batch))
                for pending in batch:
                    self._settle(pending, error=_as_unavailable(exc))
                return
            _log.warning("batch failed; committing one by one", size=len(batch), error=repr(exc))
            await self._one_by_one(writer, batch)
            return
        for pending, result in zip(batch, results, strict=True):
            self._settle(pending, result)
        self._committed(results)

    async def _one_by_one(self, writer: _Writer, batch: list[_Pending[T, R]]) -> None:
        for pending in batch:
            try:
                (result,) = await self._transaction(writer, [pending.item])
            except Exception as exc:
                self._note_disk_failure(exc)
                self._log_failure(exc)
                self._settle(pending, error=_as_unavailable(exc))
            else:
                self._settle(pending, result)
                self._committed([result])

    def _note_disk_failure(self, exc: BaseException) -> str | None:
        trouble = disk_trouble(exc)
        if trouble is not None:
            # The driver's own words: SQLAlchemy's wrapper would add the statement's parameters
            # (webhook bodies), and /readyz shows this to whoever asks.
            message = str(getattr(exc, "orig", None) or exc)
            self._disk_failure = DiskFailure(trouble, message, time.monotonic())
        return trouble

    def _committed(self, results: list[R]) -> None:
        self._disk_failure = None
        if self._on_commit is not None:
            try:
                self._on_commit(results)
            except Exception:
                _log.exception("on_commit hook failed")

    @staticmethod
    def _log_failure(exc: BaseException, size: int = 1) -> None:
        _log.error(
            "commit failed", size=size, error=repr(exc), exc_info=not isinstance(exc, DBAPIError)
        )

    @staticmethod
    def _settle(
        pending: _Pending[T, R], result: Any = None, error: BaseException | None = None
    ) -> None:
        # A request that gave up (timeout, disconnect) no longer listens.
        if pending.future.done():
            return
        if error is None:
            pending.future.set_result(result)
        else:
            pending.future.set_exception(error)
