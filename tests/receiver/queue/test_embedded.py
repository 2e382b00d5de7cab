"""``serve``'s embedded worker on a thread and event loop of its own: a handler that blocks
its loop never holds up a 202; commits still wake it at once; it starts and stops with the
app, and a worker that dies says so."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from handlers import HandlerContext, JobEvent
from receiver.app import create_app
from receiver.errors import ConfigurationError
from receiver.queue.embedded import (
    SWITCH_INTERVAL_SECONDS,
    THREAD_NAME,
    WORKER_NICE,
    WorkerThread,
)
from receiver.queue.tasks import TaskQueue
from receiver.queue.worker import Worker
from receiver.retry import RetryPolicy
from receiver.services import http_client
from receiver.settings import Settings
from storage import from_url
from tests.receiver.admin.scenario import QUICK_WORKER, completed
from tests.support.database import rows
from tests.support.waiting import wait_until
from tests.support.webhooks import signed_headers

# Long, so any quick start below came from a wake-up, never from a poll.
WORKER = {**QUICK_WORKER, "handlers": [], "poll_seconds": 60.0}
BLOCK_SECONDS = 1.5
# The thread's life does not depend on the database: PostgreSQL would only add seconds.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass
class Blocking:
    """A test handler that blocks its event loop (``time.sleep``) on its first run only,
    and notes when each run started (monotonic clock)."""

    name: str = "blocking"
    after: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset({"completed"})
    models: frozenset[str] | None = None
    blocking: threading.Event = field(default_factory=threading.Event)
    starts: list[float] = field(default_factory=list)

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        self.starts.append(time.monotonic())
        if not self.blocking.is_set():
            self.blocking.set()
            time.sleep(BLOCK_SECONDS)  # noqa: ASYNC251 - the point: it blocks its loop


def worker_threads() -> list[threading.Thread]:
    """The embedded worker threads alive now."""
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def send(client: TestClient, job_id: str) -> float:
    """POST a signed completed webhook; how long its 202 took, in seconds."""
    body = orjson.dumps(completed(job_id, {"images": ["https://x.test/a.png"]}))
    started = time.monotonic()
    answer = client.post("/webhooks/apiframe", content=body, headers=signed_headers(body))
    assert answer.status_code == 202, answer.text
    return time.monotonic() - started


def test_a_handler_blocking_its_loop_never_delays_a_202(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """While a handler blocks the worker's loop for 1.5 s, webhooks are still answered in a
    fraction of it, and every task completes."""
    handler = Blocking()
    client = make_client(registered=(handler,), **WORKER)
    send(client, "job-0")
    assert handler.blocking.wait(5), "the handler never ran"
    took = [send(client, f"job-{n}") for n in range(1, 6)]
    # Far below the block, with room for a loaded 2-core CI box.
    assert max(took) < BLOCK_SECONDS / 3, took
    wait_until(lambda: len(rows(db, "SELECT id FROM tasks WHERE status = 'succeeded'")) == 6)


def test_a_commit_wakes_the_worker_thread_at_once(
    make_client: Callable[..., TestClient],
) -> None:
    """With a 60 s poll, a task starts well under a second after its webhook's 202."""
    handler = Blocking()
    handler.blocking.set()  # never blocks
    client = make_client(registered=(handler,), **WORKER)
    for n in range(3):
        send(client, f"job-{n}")
        answered = time.monotonic()
        wait_until(lambda n=n: len(handler.starts) == n + 1, timeout=5)  # type: ignore[misc]
        assert handler.starts[n] - answered < 1.0


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@dataclass
class Priorities:
    """A test handler noting its thread's nice value, that of a thread it starts, and the
    switch interval."""

    name: str = "priorities"
    after: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset({"completed"})
    models: frozenset[str] | None = None
    seen: list[tuple[int, int, float]] = field(default_factory=list)

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        self.seen.append((_nice(), await asyncio.to_thread(_nice), sys.getswitchinterval()))


@SQLITE_ONLY
@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is Linux's")
def test_the_worker_thread_yields_the_cpu_and_the_gil_to_the_intake(
    make_settings: Callable[..., Settings],
) -> None:
    """Handlers, and the threads they start, run WORKER_NICE below the intake's priority; the
    GIL switch interval is 1 ms while the worker runs and is given back after."""
    before = sys.getswitchinterval()
    intake = _nice()
    handler = Priorities()
    with TestClient(create_app(make_settings(**WORKER), handlers=[handler])) as client:
        send(client, "job-nice")
        wait_until(lambda: len(handler.seen) == 1, timeout=5)
        assert _nice() == intake  # the intake's own thread is untouched
    expected = min(intake + WORKER_NICE, 19)
    assert handler.seen == [(expected, expected, SWITCH_INTERVAL_SECONDS)]
    assert sys.getswitchinterval() == before


@SQLITE_ONLY
def test_the_worker_thread_lives_exactly_as_long_as_the_app(
    make_settings: Callable[..., Settings],
) -> None:
    """A named thread runs the worker while the app runs; after the lifespan, it is gone."""
    assert worker_threads() == []
    with TestClient(create_app(make_settings(**WORKER), handlers=[Blocking()])) as client:
        (thread,) = worker_threads()
        assert thread is not threading.current_thread()
        worker = client.app.state.worker  # type: ignore[attr-defined]
        assert isinstance(worker, Worker)
    assert worker_threads() == []


@SQLITE_ONLY
def test_a_worker_that_cannot_start_fails_the_lifespan_with_its_error(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose HTTP client cannot be made (on its thread) stops the start with that
    error, and leaves no thread behind."""

    def refuse(settings: Settings) -> None:
        raise ConfigurationError("the worker's client cannot be made")

    monkeypatch.setattr("receiver.app.http_client", refuse)
    settings = make_settings(**WORKER)
    with (
        pytest.raises(ConfigurationError, match="client cannot be made"),
        TestClient(create_app(settings)),
    ):
        pass
    assert worker_threads() == []


class Dying(Worker):
    """A worker whose run fails, as a bug would, once it started."""

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("a bug in the worker")


@SQLITE_ONLY
def test_a_worker_that_dies_ends_its_thread_with_an_error(
    make_settings: Callable[..., Settings], db: Engine
) -> None:
    """The worker's run raising ends its thread (no silent hang) with one error line; stop
    afterwards still returns."""
    settings = make_settings(**WORKER)

    def build() -> Worker:
        queue = TaskQueue(db, "test:1")
        return Dying(queue, [], RetryPolicy(), from_url("memory://"), http_client(settings))

    async def scenario() -> None:
        thread = WorkerThread(build, settings)
        await thread.start()
        wait_until(lambda: not thread.alive, timeout=5)
        await thread.stop()

    with capture_logs() as logs:
        asyncio.run(scenario())
    (died,) = [e for e in logs if e["log_level"] == "error"]
    assert died["event"] == "the embedded worker died: tasks are not run"
    assert str(died["exc_info"]) == "a bug in the worker"
