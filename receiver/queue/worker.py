"""The worker: claims tasks, runs handlers, records outcomes, keeps its leases alive.

Each handler run is isolated: its own asyncio task with a timeout, so one slow or failing
handler never blocks another, nor the receiver when the worker is embedded in ``serve``. A new
task starts without waiting for a poll: the receiver wakes an embedded worker after each commit
that queued something, and PostgreSQL's LISTEN/NOTIFY wakes workers in other processes
(``receiver.queue.notify``). Polling (``poll_seconds``) is only the fallback.

Stopping: no new claims; running handlers get ``grace_seconds`` to finish; what is still
running then is cancelled and released (queued again, the attempt not counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx

from handlers import AssetLinker, Handler, HandlerContext, NoLinks, PermanentFailure, RetryLater
from receiver.db.models import AttemptOutcome
from receiver.logs import get_logger
from receiver.metrics import HandlerMeter, Metrics
from receiver.queue.assets import DatabaseAssets
from receiver.queue.attempts import AttemptWriter
from receiver.queue.order import after_of
from receiver.queue.tasks import ClaimedTask, TaskQueue, attempt_result
from receiver.retry import RetryPolicy
from storage import Storage, StorageRefused

__all__ = ["Worker", "worker_name"]

_log = get_logger("framehook.worker")
DEFAULT_TIMEOUT_SECONDS = 300.0
# The most tasks claimed ahead: the buffer grows to it only while handlers outrun the claims.
MAX_PREFETCH = 128


def worker_name() -> str:
    """``host:pid``: enough to find the process that holds a task."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> datetime:
    return datetime.now(UTC)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Worker:
    """Runs the tasks of ``handlers`` from ``queue``.

    Args:
        queue: task operations (carries the engine, worker name and lease length).
        handlers: the loaded handlers; only their tasks are claimed.
        policy: when failed attempts run again.
        storage: the asset store handlers get.
        http: the HTTP client handlers get (owned by the caller).
        concurrency: handler runs at once.
        poll_seconds: longest sleep without a wake-up.
        timeout_seconds: default per-run timeout (a handler's ``timeout`` attribute wins).
        grace_seconds: how long running handlers may finish after a stop.
        metrics: counts attempts, their durations and captured bytes (nothing when ``None``).
        links: makes the download links handlers hand out (``context.links``); none when
            ``None``.
    """

    def __init__(
        self,
        queue: TaskQueue,
        handlers: Sequence[Handler],
        policy: RetryPolicy,
        storage: Storage,
        http: httpx.AsyncClient,
        *,
        concurrency: int = 8,
        poll_seconds: float = 1.0,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        grace_seconds: float = 25.0,
        metrics: Metrics | None = None,
        links: AssetLinker | None = None,
    ) -> None:
        self.queue = queue
        self.handlers = {h.name: h for h in handlers}
        self._assets = {
            name: DatabaseAssets(queue.engine, name, metrics, reads=after_of(handler))
            for name, handler in self.handlers.items()
        }
        self._meters: dict[str, HandlerMeter] = (
            {name: metrics.handler(name) for name in self.handlers} if metrics is not None else {}
        )
        self.policy = policy
        self.storage = storage
        self.http = http
        self.links: AssetLinker = links if links is not None else NoLinks()
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.grace_seconds = grace_seconds
        self._wake = asyncio.Event()
        self._running: dict[int, tuple[ClaimedTask, asyncio.Task[None]]] = {}
        # Handlers that returned, their outcome being committed: still held under lease, but
        # their slot is free, so a commit's wait never idles a slot.
        self._recording: dict[int, tuple[ClaimedTask, asyncio.Task[None]]] = {}
        # Claimed ahead (held under lease like running ones) so a freed slot starts a task at
        # once and a claim, which costs a commit, fetches many: claims are sequential, and one
        # task per claim would cap the worker at one commit's rate. It starts at a slot's worth
        # and doubles whenever handlers ran dry waiting for a claim (short tasks), so slow
        # handlers never make a worker hoard tasks other workers could run.
        self._ready: deque[ClaimedTask] = deque()
        self.prefetch = concurrency
        self._loop: asyncio.AbstractEventLoop | None = None
        self._attempts = AttemptWriter(queue)

    def wake(self) -> None:
        """Look for new tasks now (from the worker's event loop; from elsewhere it hands the
        wake-up over as ``wake_threadsafe`` does, since an ``asyncio.Event`` set from another
        thread or loop would not wake this one)."""
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if self._loop is None or here is self._loop:
            self._wake.set()
        else:
            self.wake_threadsafe()

    def wake_threadsafe(self) -> None:
        """Look for new tasks now (call from any thread)."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then stop gracefully."""
        self._loop = asyncio.get_running_loop()
        if not self.handlers:
            await stop.wait()
            return
        _log.info("worker started", worker=self.queue.worker, handlers=sorted(self.handlers))
        renewer = asyncio.create_task(self._renew_leases(stop))
        try:
            while not stop.is_set():
                # Cleared before looking, never after: a wake-up that arrives while we look
                # (a task finished, a commit) must still cut the next sleep short.
                self._wake.clear()
                wanted = self._wanted()
                claimed = await self._claim(wanted)
                self._adapt(wanted, len(claimed))
                self._ready.extend(claimed)
                self._fill()
                if claimed and len(claimed) == wanted:
                    continue  # there may be more due right now
                # Only a claim that came back short says the queue has nothing due; a full
                # worker just waits for a slot.
                await self._sleep(stop, look_ahead=wanted > 0)
        finally:
            await self._shutdown()
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    def _room(self) -> int:
        """How many tasks there is room for: the free slots plus room in the ready buffer
        (none while more outcomes wait for their commit than one batch holds)."""
        if len(self._recording) >= self._attempts.max_batch:
            return 0
        return self.concurrency - len(self._running) + self.prefetch - len(self._ready)

    def _adapt(self, wanted: int, claimed: int) -> None:
        """Size the buffer after a claim: doubled when it came back full while slots sat
        idle waiting for it (handlers outrun the claims); back to a slot's worth when it came
        back short (the queue has run dry, so a burst starts with small claims again)."""
        if claimed < wanted:
            self.prefetch = self.concurrency
        elif claimed and not self._ready and len(self._running) < self.concurrency:
            self.prefetch = min(MAX_PREFETCH, max(self.prefetch * 2, self.concurrency))

    def _wanted(self) -> int:
        """How many tasks to claim now: all there is room for once the buffer is half empty
        (or a slot would idle), so claims are few and large rather than one per freed slot."""
        room = self._room()
        if self._ready and len(self._running) >= self.concurrency and room < self.prefetch // 2:
            return 0
        return room

    def _fill(self) -> None:
        while self._ready and len(self._running) < self.concurrency:
            self._start(self._ready.popleft())

    async def _claim(self, wanted: int) -> list[ClaimedTask]:
        if wanted <= 0:
            return []
        try:
            return await anyio.to_thread.run_sync(
                self.queue.claim, list(self.handlers), wanted, _now()
            )
        except Exception as exc:
            # The database is away: keep the process alive and try again after a pause.
            _log.warning("claiming tasks failed", error=_describe(exc))
            return []

    async def _sleep(self, stop: asyncio.Event, look_ahead: bool) -> None:
        timeout = self.poll_seconds
        if look_ahead:
            with contextlib.suppress(Exception):
                due = await anyio.to_thread.run_sync(self.queue.next_due, list(self.handlers))
                if due is not None:
                    timeout = min(timeout, max(0.0, (due - _now()).total_seconds()))
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        _done, pending = await asyncio.wait(
            waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for waiter in pending:
            waiter.cancel()

    def _start(self, task: ClaimedTask) -> None:
        run = asyncio.create_task(self._execute(task), name=f"framehook-task-{task.id}")
        self._running[task.id] = (task, run)
        run.add_done_callback(lambda _: self._finished(task.id))

    def _finished(self, task_id: int) -> None:
        self._recording.pop(task_id, None)
        self._vacate(task_id)
        # Its outcome is committed: a retry's due time, or tasks that waited for it, may now
        # be there to claim.
        self._wake.set()

    def _vacate(self, task_id: int) -> None:
        """The handler of ``task_id`` is done: its slot is free."""
        entry = self._running.pop(task_id, None)
        if entry is None:
            return
        if not entry[1].done():
            self._recording[task_id] = entry
        # Start a claimed task in the slot now; the loop refills the buffer.
        self._fill()
        self._wake.set()

    async def _execute(self, task: ClaimedTask) -> None:
        handler = self.handlers[task.handler]
        log = _log.bind(task_id=task.id, handler=task.handler, attempt=task.attempt)
        if task.event is None:
            await self._record(
                task, AttemptOutcome.DEAD, "the delivery's raw body is gone (pruned)", log
            )
            return
        log = log.bind(job_id=task.event.job_id, webhook_event=task.event.event)
        context = HandlerContext(
            task_id=task.id,
            attempt=task.attempt,
            log=log,
            storage=self.storage,
            http=self.http,
            assets=self._assets[task.handler],
            links=self.links,
        )
        timeout = float(getattr(handler, "timeout", None) or self.timeout_seconds)
        clock = asyncio.get_running_loop().time
        started = clock()
        try:
            # A timeout scope, not wait_for: no second asyncio task per run.
            async with asyncio.timeout(timeout):
                await handler(task.event, context)
        except RetryLater as signal:
            reason = f"retry requested: {signal.reason}"
            await self._retry(task, reason, log, signal.delay, ran=clock() - started)
        except PermanentFailure as signal:
            reason = f"permanent failure: {signal.reason}"
            await self._record(task, AttemptOutcome.DEAD, reason, log, ran=clock() - started)
        except StorageRefused as exc:
            # A store that refuses writes (read-only, no permission) refuses them on every
            # retry too: park the task until an operator fixes it and replays.
            reason = f"permanent failure: {exc}"
            await self._record(task, AttemptOutcome.DEAD, reason, log, ran=clock() - started)
        except TimeoutError:
            await self._retry(task, f"timed out after {timeout:g} s", log, ran=clock() - started)
        except asyncio.CancelledError:
            raise  # stopping: _shutdown releases the task
        except Exception as exc:
            await self._retry(task, _describe(exc), log, exc_info=exc, ran=clock() - started)
        else:
            await self._record(task, AttemptOutcome.SUCCEEDED, None, log, ran=clock() - started)

    async def _retry(
        self,
        task: ClaimedTask,
        error: str,
        log: Any,
        delay: float | None = None,
        exc_info: BaseException | None = None,
        ran: float | None = None,
    ) -> None:
        decision = self.policy.decide(task.budget_attempt, _now(), delay)
        if decision.gives_up:
            note = f"{error} (attempt {task.budget_attempt}, giving up)"
            await self._record(task, AttemptOutcome.DEAD, note, log, ran=ran)
            return
        await self._record(
            task,
            AttemptOutcome.RETRY,
            error,
            log,
            run_at=decision.run_at,
            exc_info=exc_info,
            ran=ran,
        )

    async def _record(
        self,
        task: ClaimedTask,
        outcome: AttemptOutcome,
        error: str | None,
        log: Any,
        run_at: datetime | None = None,
        exc_info: BaseException | None = None,
        ran: float | None = None,
    ) -> None:
        """Write the attempt's outcome; ``ran`` is how long the handler ran, in seconds
        (``None``: it did not run)."""
        meter = self._meters.get(task.handler)
        if meter is not None:
            meter.attempt(outcome, ran)
        self._vacate(task.id)
        try:
            kept = await self._attempts.write(attempt_result(task, outcome, error, run_at))
        except Exception as exc:
            log.warning(
                "recording the task's outcome failed: it runs again when its lease expires",
                outcome=outcome,
                error=_describe(exc),
            )
            return
        if not kept:
            log.warning(
                "task outcome discarded: the task was claimed again meanwhile", outcome=outcome
            )
            return
        succeeded = outcome is AttemptOutcome.SUCCEEDED
        level = log.info if succeeded else log.warning
        level(
            "task",
            outcome=outcome,
            error=error,
            retry_at=None if run_at is None else run_at.isoformat(),
            ms=round(ran * 1000, 2) if ran is not None and succeeded else None,
            exc_info=exc_info if outcome is AttemptOutcome.RETRY and exc_info is not None else None,
        )

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        # Renew ours, and reclaim others' expired leases, three times per lease length.
        interval = max(0.5, self.queue.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(interval)
            held = [(t.id, t.attempt) for t, _ in self._running.values()]
            held += [(t.id, t.attempt) for t, _ in self._recording.values()]
            held += [(t.id, t.attempt) for t in self._ready]
            if held:
                with contextlib.suppress(Exception):
                    await anyio.to_thread.run_sync(self.queue.renew, held, _now())
            with contextlib.suppress(Exception):
                buried = await anyio.to_thread.run_sync(self.queue.bury_exhausted, _now())
                if buried:
                    _log.warning("tasks parked as dead after repeated lease expiry", count=buried)
                    self._wake.set()  # tasks that waited for them may be queued now
                back = await anyio.to_thread.run_sync(
                    self.queue.reclaim_expired, list(self.handlers), _now()
                )
                if back:
                    _log.warning("tasks queued again after their lease expired", count=back)
                    self._wake.set()

    async def _shutdown(self) -> None:
        # Claimed but not started: back to the queue at once, for other workers.
        unstarted = list(self._ready)
        self._ready.clear()
        await self._release(unstarted)
        active = {**self._running, **self._recording}
        if not active:
            return
        _log.info("worker stopping", running=len(self._running), grace_seconds=self.grace_seconds)
        runs = [run for _, run in active.values()]
        _done, late = await asyncio.wait(runs, timeout=self.grace_seconds)
        leftovers = [task for task, run in active.values() if run in late]
        for run in late:
            run.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        await self._attempts.drain()
        await self._release(leftovers)
        if leftovers:
            _log.warning("released unfinished tasks", count=len(leftovers))

    async def _release(self, tasks: Sequence[ClaimedTask]) -> None:
        if tasks:
            with contextlib.suppress(Exception):
                await anyio.to_thread.run_sync(self.queue.release_many, tasks, _now())
