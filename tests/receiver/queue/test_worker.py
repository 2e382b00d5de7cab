"""The embedded worker end to end, on SQLite and PostgreSQL: a webhook in, handlers run."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from handlers import PermanentFailure, RetryLater
from receiver.apiframe.events import parse_body
from receiver.db.engine import writing
from receiver.intake.recorder import Arrival, Recorder, Subscription
from receiver.queue.replay import replay_dead, replay_job, retry_task
from receiver.queue.tasks import TaskQueue
from storage import StorageRefused
from tests.support.database import rows
from tests.support.plugins import Recording
from tests.support.waiting import wait_until
from tests.support.webhooks import sample, signed_headers

URL = "/webhooks/apiframe"
FAST = {
    "run_worker": True,
    "handlers": [],
    "poll_seconds": 30.0,  # long: anything quick below came from a wake-up, not a poll
    "retry_base_seconds": 0.05,
    "retry_max_seconds": 0.2,
    "retry_max_attempts": 3,
    "grace_seconds": 5.0,
}


def send(client: TestClient, body: bytes) -> None:
    assert client.post(URL, content=body, headers=signed_headers(body)).status_code == 202


def task_states(db: Engine) -> list[tuple[str, str, int]]:
    return [(r.handler, r.status, r.attempts) for r in rows(db, "SELECT * FROM tasks ORDER BY id")]


def test_handler_runs_once_with_the_event_and_the_job(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """A completed webhook: the handler gets the payload and job as immutable values, once."""
    handler = Recording()
    client = make_client(registered=(handler,), **FAST)
    send(client, sample("completed-midjourney"))
    wait_until(lambda: task_states(db) == [("recording", "succeeded", 1)])
    ((event, ctx),) = handler.calls
    assert event.event == "completed"
    assert event.payload == orjson.loads(sample("completed-midjourney"))
    assert (event.job.status, event.job.progress, event.model) == ("COMPLETED", 100, "midjourney")
    assert len(event.job.result["images"]) == 4
    assert ctx.attempt == 1
    with pytest.raises(AttributeError):
        event.job_id = "changed"  # type: ignore[misc]
    (attempt,) = rows(db, "SELECT attempt, outcome, error FROM task_attempts")
    assert (attempt.attempt, attempt.outcome, attempt.error) == (1, "succeeded", None)


def test_dispatch_is_woken_by_the_commit_not_a_poll(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """With a 30 s poll, the handler still starts within a fraction of a second of the 2xx."""
    handler = Recording()
    client = make_client(registered=(handler,), **FAST)
    body = sample("completed-kling-video")
    client.post(URL, content=body, headers=signed_headers(body))
    answered = time.monotonic()
    wait_until(lambda: bool(handler.calls), timeout=5)
    assert time.monotonic() - answered < 1.0


def test_retry_later_runs_again_after_the_delay(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """RetryLater(0.3): the task is queued for later, then runs again and succeeds."""
    handler = Recording(script={1: RetryLater(0.3, "cdn busy")})
    client = make_client(registered=(handler,), **FAST)
    send(client, sample("completed-gpt-image-2"))
    wait_until(lambda: task_states(db) == [("recording", "succeeded", 2)])
    first, second = handler.started
    assert second - first >= 0.28
    history = rows(db, "SELECT outcome, error FROM task_attempts ORDER BY attempt")
    assert [(h.outcome, h.error) for h in history] == [
        ("retry", "retry requested: cdn busy"),
        ("succeeded", None),
    ]


def test_permanent_failure_parks_the_task_as_dead_at_once(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """PermanentFailure: dead after one attempt, with the reason, never retried."""
    handler = Recording(script={1: PermanentFailure("asset expired")})
    client = make_client(registered=(handler,), **FAST)
    send(client, sample("completed-suno"))
    wait_until(lambda: task_states(db) == [("recording", "dead", 1)])
    (task,) = rows(db, "SELECT last_error, finished_at FROM tasks")
    assert task.last_error == "permanent failure: asset expired"
    time.sleep(0.4)
    assert len(handler.calls) == 1


def test_a_store_that_refuses_writes_parks_the_task_at_once(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """A handler's StorageRefused (read-only, no permission) is dead after one attempt, like a
    PermanentFailure: a retry would meet the same refusal."""
    refused = StorageRefused("local storage /srv: the filesystem is read-only (EROFS)")
    handler = Recording(script={1: refused})
    client = make_client(registered=(handler,), **FAST)
    send(client, sample("completed-suno"))
    wait_until(lambda: task_states(db) == [("recording", "dead", 1)])
    (task,) = rows(db, "SELECT last_error FROM tasks")
    assert task.last_error == f"permanent failure: {refused}"
    time.sleep(0.4)
    assert len(handler.calls) == 1


def test_errors_are_retried_with_backoff_until_dead_then_replayed(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """An exception each time: 3 attempts with growing delays, dead; replay runs it again."""
    boom = ValueError("boom")
    handler = Recording(script={1: boom, 2: boom, 3: boom})
    client = make_client(registered=(handler,), **FAST)
    send(client, sample("completed-topaz-upscale"))
    wait_until(lambda: task_states(db) == [("recording", "dead", 3)])
    (task,) = rows(db, "SELECT id, last_error FROM tasks")
    assert task.last_error == "ValueError: boom (attempt 3, giving up)"
    gaps = [b - a for a, b in zip(handler.started, handler.started[1:], strict=False)]
    assert all(gap >= 0.025 for gap in gaps)  # at least half the backoff ceiling
    assert replay_dead(db) == 1
    app_worker = client.app.state.worker  # type: ignore[attr-defined]
    client.portal.call(app_worker.wake)  # type: ignore[union-attr]
    wait_until(lambda: task_states(db) == [("recording", "succeeded", 4)])


def test_a_hanging_handler_is_cut_off_and_does_not_block_another(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """A handler that hangs times out and is retried; another handler's task runs meanwhile."""
    hanging = Recording(name="hanging", timeout=0.3, script={1: 60.0})
    quick = Recording(name="quick")
    client = make_client(registered=(hanging, quick), **FAST)
    send(client, sample("completed-kling-video"))
    wait_until(lambda: ("quick", "succeeded", 1) in task_states(db), timeout=2)
    wait_until(lambda: ("hanging", "succeeded", 2) in task_states(db))
    (first,) = rows(db, "SELECT error FROM task_attempts WHERE outcome = 'retry'")
    assert first.error == "timed out after 0.3 s"


def test_newer_progress_supersedes_queued_progress(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """Three progress events queued before any ran: only the newest runs."""
    client = make_client(registered=(Recording(),), **{**FAST, "run_worker": False})
    for value in (10, 40, 70):
        body = orjson.dumps({"event": "progress", "jobId": "sup", "progress": value})
        send(client, body)
    states = [(r.event, r.status) for r in rows(db, "SELECT * FROM tasks ORDER BY id")]
    assert states == [
        ("progress", "superseded"),
        ("progress", "superseded"),
        ("progress", "queued"),
    ]
    send(client, sample("completed-midjourney"))
    body = orjson.dumps({"event": "completed", "jobId": "sup", "result": "https://x/y.png"})
    send(client, body)
    statuses = [r.status for r in rows(db, "SELECT status FROM tasks WHERE job_id = 'sup'")]
    assert statuses == ["superseded", "superseded", "superseded", "queued"]


def test_terminal_events_are_claimed_before_progress(db: Engine) -> None:
    """With a deep queue, completed/failed tasks come out before older progress ones."""
    client_rows = [
        orjson.dumps({"event": "progress", "jobId": f"p{n}", "progress": 5}) for n in range(3)
    ] + [sample("failed-content-policy"), sample("completed-midjourney")]

    recorder = Recorder(
        db.dialect.name, [Subscription("r", frozenset({"progress", "completed", "failed"}))]
    )
    with writing(db) as connection:
        recorder.record_many(
            connection,
            [Arrival(parse_body(b), b, datetime.now(UTC), "r") for b in client_rows],
        )
    queue = TaskQueue(db, "test-worker")
    claimed = queue.claim(["r"], 2, datetime.now(UTC))
    assert sorted(c.event.event for c in claimed if c.event) == ["completed", "failed"]


def test_expired_lease_is_reclaimed_and_the_late_worker_is_fenced(db: Engine) -> None:
    """A frozen worker's lease expires: another claims it; the first can no longer finish it."""
    body = sample("completed-midjourney")

    recorder = Recorder(db.dialect.name, [Subscription("r", frozenset({"completed"}))])
    with writing(db) as connection:
        recorder.record(connection, Arrival(parse_body(body), body, datetime.now(UTC), "r"))
    frozen = TaskQueue(db, "frozen", lease_seconds=1)
    rescuer = TaskQueue(db, "rescuer", lease_seconds=30)
    now = datetime.now(UTC)
    (first,) = frozen.claim(["r"], 5, now)
    assert rescuer.claim(["r"], 5, now) == []  # the lease holds
    later = datetime.fromtimestamp(now.timestamp() + 2, UTC)
    assert rescuer.reclaim_expired(["r"], now) == 0  # not expired yet
    assert rescuer.reclaim_expired(["r"], later) == 1
    (second,) = rescuer.claim(["r"], 5, later)
    assert (second.id, second.attempt) == (first.id, 2)
    assert frozen.renew([(first.id, first.attempt)], later) == 0
    assert frozen.finish(first, "succeeded", later) is False
    assert rescuer.finish(second, "succeeded", later) is True
    (task,) = rows(db, "SELECT status, attempts, claimed_by FROM tasks")
    assert (task.status, task.attempts, task.claimed_by) == ("succeeded", 2, "rescuer")


def test_stopping_waits_for_running_handlers_then_releases_the_rest(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """On shutdown a handler within the grace period finishes; one past it is released."""
    slow = Recording(name="slow", script={1: 60.0})
    brief = Recording(name="brief", script={1: 0.3})
    client = make_client(registered=(slow, brief), **{**FAST, "grace_seconds": 1.0})
    send(client, sample("completed-midjourney"))
    wait_until(lambda: len(slow.calls) == 1 and len(brief.calls) == 1)
    client.__exit__(None, None, None)
    states = {h: (s, a) for h, s, a in task_states(db)}
    assert states["brief"] == ("succeeded", 1)
    assert states["slow"] == ("queued", 0)  # released: queued again, the attempt not counted


def test_replay_functions_requeue_what_they_name(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """retry_task and replay_job re-queue finished tasks with a fresh retry budget."""
    handler = Recording(script={1: PermanentFailure("no"), 2: PermanentFailure("no")})
    client = make_client(registered=(handler,), **FAST)
    send(client, sample("completed-suno-stems"))
    wait_until(lambda: task_states(db) == [("recording", "dead", 1)])
    (task,) = rows(db, "SELECT id, job_id FROM tasks")
    worker = client.app.state.worker  # type: ignore[attr-defined]
    assert retry_task(db, task.id) is True
    client.portal.call(worker.wake)  # type: ignore[union-attr]
    wait_until(lambda: task_states(db) == [("recording", "dead", 2)])
    assert replay_job(db, task.job_id, handler="someone-else") == 0
    assert replay_job(db, task.job_id) == 1
    client.portal.call(worker.wake)  # type: ignore[union-attr]
    wait_until(lambda: task_states(db) == [("recording", "succeeded", 3)])
    assert retry_task(db, 999_999) is False


def test_retry_later_without_a_delay_backs_off_and_logs_no_traceback(
    make_client: Callable[..., TestClient], db: Engine, capfd: pytest.CaptureFixture[str]
) -> None:
    """RetryLater(None): an expected, transient failure (the download handler's
    CaptureIncomplete): retried after the usual backoff, logged as one line without a
    traceback."""
    handler = Recording(script={1: RetryLater(None, "cdn answered 503")})
    client = make_client(registered=(handler,), **FAST)
    send(client, sample("completed-gpt-image-2"))
    wait_until(lambda: task_states(db) == [("recording", "succeeded", 2)])
    history = rows(db, "SELECT outcome, error FROM task_attempts ORDER BY attempt")
    assert [(h.outcome, h.error) for h in history] == [
        ("retry", "retry requested: cdn answered 503"),
        ("succeeded", None),
    ]
    printed = "".join(capfd.readouterr())
    assert "cdn answered 503" in printed
    assert "Traceback" not in printed
