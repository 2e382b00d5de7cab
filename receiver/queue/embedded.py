"""``serve``'s embedded worker, on a thread of its own with its own event loop.

Handlers download, hash and fsync, and a careless one blocks its loop: on the intake's loop
that work delayed the 202s (measured at 100 webhooks/s with captures: p99 91 ms, against
~9 ms without the worker). On a loop of their own they no longer hold up the intake's; they
still share its CPU and the GIL. Two settings keep the intake first (measured with
``bench/openloop.py``, serve capturing ~140 MB/s of files at 300 webhooks/s on one core: p99
45-63 ms as equals, 9-24 ms with both):

* on Linux the worker's thread, and the threads it starts, run at a lower priority (nice
  ``WORKER_NICE``): when both want the CPU the kernel runs the intake, and an idle intake
  leaves the worker the whole CPU. Under a sustained flood the captures wait (the flood is
  acknowledged first; the tasks are durable and run once it passes).
* the interpreter's switch interval drops to 1 ms while the thread runs, so a worker thread
  busy in Python hands the GIL back to a woken intake sooner than the default 5 ms.

``--no-worker`` with ``framehook worker`` processes shares nothing. One process keeps one
metrics registry, the wake-up after each commit and the admin token that signs links.

``framehook worker`` needs none of this: it runs its worker on its main loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable

from receiver.logs import get_logger
from receiver.queue.worker import Worker
from receiver.services import running_worker
from receiver.settings import Settings

__all__ = ["SWITCH_INTERVAL_SECONDS", "THREAD_NAME", "WORKER_NICE", "WorkerThread", "worker_thread"]

THREAD_NAME = "framehook-worker"
WORKER_NICE = 10
"""How much lower the worker thread's priority is (Linux; a CFS weight of ~1/10 the intake's)."""
SWITCH_INTERVAL_SECONDS = 0.001
"""The GIL switch interval while the worker thread runs (Python's default is 5 ms)."""
# Past the grace period, what a stop still waits for: cancelling the late runs and releasing
# their tasks. A handler that blocks its loop for longer is left behind (the thread is a
# daemon), so the receiver still shuts down.
_STOP_MARGIN_SECONDS = 10.0

_log = get_logger("framehook.worker")


class WorkerThread:
    """Runs the worker that ``build`` makes on a thread named ``framehook-worker``.

    ``build`` is called on that thread, so the worker's HTTP client is made, used and closed
    on the worker's loop.

    Args:
        build: makes the worker; what it raises, ``start`` raises.
        settings: the LISTEN wake-up (PostgreSQL) and the grace period.
    """

    def __init__(self, build: Callable[[], Worker], settings: Settings) -> None:
        self._build = build
        self._settings = settings
        self._started: concurrent.futures.Future[Worker] = concurrent.futures.Future()
        # Set when the thread ends: awaited on the caller's loop, so a stop can be cancelled
        # (a thread blocked in join() could not be).
        self._ended: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._main_task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._main, name=THREAD_NAME, daemon=True)

    @property
    def alive(self) -> bool:
        """Whether the worker still runs (``False`` once it died or stopped)."""
        return self._thread.is_alive()

    async def start(self) -> Worker:
        """Start the thread; once its worker runs, return it (its ``wake_threadsafe``
        wakes it from the intake's loop).

        Raises:
            Exception: whatever building or starting the worker raised.
        """
        self._thread.start()
        return await asyncio.wrap_future(self._started)

    async def stop(self) -> None:
        """Stop the worker gracefully (its grace period) and wait for the thread, without
        blocking the calling loop. Cancelled (a second Ctrl-C), it cuts the worker short too:
        its interrupted runs are claimed again when their leases run out."""
        if self._stop is not None:
            self._call(self._stop.set)
        limit = self._settings.grace_seconds + _STOP_MARGIN_SECONDS
        try:
            done, _ = await asyncio.wait([asyncio.wrap_future(self._ended)], timeout=limit)
        except asyncio.CancelledError:
            if self._main_task is not None:
                self._call(self._main_task.cancel)
            raise
        if not done:
            _log.error("the worker did not stop in time: left running", seconds=limit)

    def _call(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the worker's loop."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop has already ended
                self._loop.call_soon_threadsafe(callback)

    def _main(self) -> None:
        _lower_priority()
        try:
            asyncio.run(self._run())
        except BaseException as exc:
            if not self._started.done():
                self._started.set_exception(exc)
            elif not (self._stop is not None and self._stop.is_set()):
                # A bug, not an operator's mistake: the traceback is the useful part.
                # Webhooks are still stored; their tasks wait for a worker.
                _log.error("the embedded worker died: tasks are not run", exc_info=exc)
        finally:
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                self._ended.set_result(None)

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._main_task = asyncio.current_task()
        worker = self._build()
        async with running_worker(worker, self._settings) as running:
            self._started.set_result(worker)
            stopping = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait([stopping, running], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if running.done() and not self._stop.is_set():
                running.result()  # the worker ended on its own: raise what ended it
                raise RuntimeError("the worker returned before it was stopped")


@contextlib.asynccontextmanager
async def worker_thread(build: Callable[[], Worker], settings: Settings) -> AsyncIterator[Worker]:
    """Run the worker ``build`` makes on its own thread for the duration of the block
    (``WorkerThread``); yields the worker."""
    thread = WorkerThread(build, settings)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL_SECONDS))
    try:
        worker = await thread.start()
        try:
            yield worker
        finally:
            await thread.stop()
    finally:
        sys.setswitchinterval(interval)


def _lower_priority() -> None:
    """Lower the calling thread's scheduling priority by ``WORKER_NICE`` (threads it starts
    inherit it). Linux only: there a thread has a nice value of its own; elsewhere
    ``setpriority`` would reach the whole process, so nothing is changed."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(
            os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + WORKER_NICE
        )
    except OSError as exc:  # a sandbox that forbids it: the worker runs at the intake's priority
        _log.warning("could not lower the worker thread's priority", error=str(exc))
