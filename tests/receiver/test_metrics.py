"""Prometheus metrics, on SQLite and PostgreSQL: deliveries, 401s, answer time, handler runs,
task and capture gauges, captured bytes and reconciliation lookups, as ``/metrics`` shows
them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine
from starlette.testclient import TestClient

from handlers import Asset, Handler, HandlerContext, JobEvent, PermanentFailure, RetryLater
from receiver.apiframe.client import ApiframeClient
from receiver.intake.recorder import Recorder
from receiver.metrics import Metrics
from receiver.reconcile.reconciler import Reconciler
from tests.receiver.admin.scenario import LOOPBACK
from tests.support.cdn import FakeCdn, Route
from tests.support.database import rows
from tests.support.media import media_bytes
from tests.support.plugins import Recording
from tests.support.waiting import wait_until
from tests.support.webhooks import API_KEY, OTHER_KEY, sample, signed_headers

URL = "/webhooks/apiframe"
WORKER = {
    "run_worker": True,
    "handlers": [],
    "poll_seconds": 30.0,
    "retry_base_seconds": 0.05,
    "retry_max_seconds": 0.2,
    "retry_max_attempts": 3,
    "grace_seconds": 5.0,
}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def metered(make_client: Callable[..., TestClient]) -> Callable[..., TestClient]:
    """Start the receiver (lifespan included) with no handler but those registered, and the
    given setting overrides."""

    def factory(registered: tuple[Any, ...] = (), **overrides: Any) -> TestClient:
        overrides.setdefault("handlers", [])
        return make_client(registered, **overrides)

    return factory


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client: TestClient) -> Samples:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    return parse(answer.text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def post(client: TestClient, body: bytes, headers: dict[str, str] | None = None) -> int:
    answer = client.post(
        URL, content=body, headers=signed_headers(body) if headers is None else headers
    )
    return answer.status_code


def task_statuses(db: Engine) -> dict[str, str]:
    return {r.handler: r.status for r in rows(db, "SELECT handler, status FROM tasks")}


def test_deliveries_are_counted_by_event_and_outcome(metered: Callable[..., TestClient]) -> None:
    """Each recorded webhook counts once under the body's event and its outcome."""
    client = metered()
    completed = sample("completed-midjourney")
    assert post(client, completed) == 202
    assert post(client, completed) == 200
    assert post(client, sample("progress-midjourney-45")) == 202  # after completion: stale
    assert post(client, sample("unknown-event-future")) == 202  # a cancelled job
    assert post(client, b"not json") == 400
    samples = scrape(client)
    counted = {
        (dict(labels)["event"], dict(labels)["outcome"]): v
        for (name, labels), v in samples.items()
        if name == "framehook_deliveries_total"
    }
    assert counted == {
        ("completed", "accepted"): 1,
        ("completed", "duplicate"): 1,
        ("progress", "stale"): 1,
        ("cancelled", "accepted"): 1,
        ("none", "malformed"): 1,
    }


def test_signature_failures_are_counted_by_reason_and_never_as_deliveries(
    metered: Callable[..., TestClient],
) -> None:
    """A wrong and a missing signature: 401s counted by reason; no delivery counted."""
    client = metered()
    body = sample("completed-suno")
    assert post(client, body, signed_headers(body, key=OTHER_KEY)) == 401
    assert post(client, body, {"Content-Type": "application/json"}) == 401
    assert post(client, body, {"X-Webhook-Signature": "sha1=abc"}) == 401
    samples = scrape(client)
    for reason in ("signature_mismatch", "signature_missing", "signature_malformed"):
        assert value(samples, "framehook_signature_failures_total", reason=reason) == 1
    assert not any(name == "framehook_deliveries_total" for name, _ in samples)


def test_every_answer_is_timed_in_the_ack_histogram(metered: Callable[..., TestClient]) -> None:
    """Accepted, duplicate and rejected requests alike add one observation each, in seconds."""
    client = metered()
    body = sample("completed-gpt-image-2")
    post(client, body)
    post(client, body)
    post(client, body, {"Content-Type": "application/json"})
    samples = scrape(client)
    assert value(samples, "framehook_ack_seconds_count") == 3
    assert 0 < (value(samples, "framehook_ack_seconds_sum") or 0) < 3
    assert value(samples, "framehook_ack_seconds_bucket", le="1.0") == 3
    assert value(samples, "framehook_ack_seconds_bucket", le="0.001") is not None


def test_metrics_answer_in_the_format_the_scraper_asks_for(
    metered: Callable[..., TestClient],
) -> None:
    """Prometheus text by default; OpenMetrics when the Accept header asks for it."""
    client = metered()
    plain = client.get("/metrics")
    assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE framehook_deliveries_total counter" in plain.text
    open_metrics = client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.endswith("# EOF\n")


def test_task_gauges_count_by_status_and_age_the_oldest_due_task(
    metered: Callable[..., TestClient],
) -> None:
    """No worker: a superseded and a queued task are counted, the queued one ages."""
    client = metered(registered=(Recording(),))
    for progress in (10, 40):
        body = orjson.dumps({"event": "progress", "jobId": "gauged", "progress": progress})
        assert post(client, body) == 202
    time.sleep(0.05)
    samples = scrape(client)
    counts = {s: value(samples, "framehook_tasks", status=s) for s in ("queued", "superseded")}
    assert counts == {"queued": 1, "superseded": 1}
    for status in ("running", "succeeded", "dead"):
        assert value(samples, "framehook_tasks", status=status) == 0
    assert (value(samples, "framehook_oldest_queued_task_seconds") or 0) >= 0.05


def test_handler_attempts_are_counted_and_timed_by_outcome(
    metered: Callable[..., TestClient], db: Engine
) -> None:
    """One task succeeds, one is retried an hour later, one dies: each attempt is counted."""
    handlers = (
        Recording(name="quick"),
        Recording(name="later", script={1: RetryLater(3600, "cdn busy")}),
        Recording(name="broken", script={1: PermanentFailure("expired")}),
    )
    client = metered(registered=handlers, **WORKER)
    assert post(client, sample("completed-midjourney")) == 202
    expected = {"quick": "succeeded", "later": "queued", "broken": "dead"}
    wait_until(
        lambda: task_statuses(db) == expected and len(rows(db, "SELECT id FROM task_attempts")) == 3
    )
    samples = scrape(client)
    for handler, outcome in (("quick", "succeeded"), ("later", "retry"), ("broken", "dead")):
        labels = {"handler": handler, "outcome": outcome}
        assert value(samples, "framehook_handler_runs_total", **labels) == 1
        assert value(samples, "framehook_handler_seconds_count", **labels) == 1
    assert value(samples, "framehook_handler_runs_total", handler="quick", outcome="dead") == 0
    for status, count in (("succeeded", 1), ("queued", 1), ("dead", 1), ("running", 0)):
        assert value(samples, "framehook_tasks", status=status) == count
    # The queued task is due in an hour: nothing is waiting yet.
    assert value(samples, "framehook_oldest_queued_task_seconds") == 0


class Capturing:
    """Records one 1234-byte asset, then the same position again (kept already)."""

    name = "capturing"
    events = frozenset({"completed"})

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        asset = Asset(
            job_id=event.job_id,
            position=1,
            kind="image",
            source_url="https://cdn.apiframe.ai/a.png",
            key=f"{event.job_id}/image-1.png",
            storage_uri=f"memory://{event.job_id}/image-1.png",
            size=1234,
            content_type="image/png",
            sha256="a" * 64,
            stored_at=datetime.now(UTC),
        )
        await ctx.assets.record(asset)
        await ctx.assets.record(replace(asset, size=999, sha256="b" * 64))


def test_captured_bytes_count_each_new_asset_record_once(
    metered: Callable[..., TestClient], db: Engine
) -> None:
    """The bytes of a newly recorded asset are counted; a position recorded already is not."""
    handler: Handler = Capturing()
    client = metered(registered=(handler,), **WORKER)
    assert post(client, sample("completed-midjourney")) == 202
    wait_until(lambda: task_statuses(db) == {"capturing": "succeeded"})
    assert value(scrape(client), "framehook_downloaded_bytes_total") == 1234


def test_completed_jobs_are_gauged_by_whether_every_file_they_name_is_stored(
    metered: Callable[..., TestClient], db: Engine
) -> None:
    """A completed job with its file stored, one with a file refused for good, one whose file
    is missing while a task of it waits to retry, one naming no file; failed and running jobs
    are not gauged."""
    waiting = Recording(
        name="later",
        events=frozenset({"completed"}),
        script={1: RetryLater(3600, "busy")},
        models=frozenset({"slow-model"}),
    )
    with FakeCdn() as cdn:
        for name in ("a.png", "b.png"):
            cdn.route(f"/{name}", Route(media_bytes("png", 500), content_type="image/png"))
        here = f"http://localhost:{cdn.port}"
        refused = "https://x.test/refused.png"  # not an asset host: refused, never retried
        client = metered((waiting,), **{**WORKER, **LOOPBACK, "handlers": ["download"]})
        bodies: list[dict[str, Any]] = [
            {"event": "completed", "jobId": "job-ok", "result": {"images": [f"{here}/a.png"]}},
            {
                "event": "completed",
                "jobId": "job-short",
                "result": {"images": [f"{here}/b.png", refused]},
            },
            {
                "event": "completed",
                "jobId": "job-pending",
                "model": "slow-model",
                "result": {"images": [refused]},
            },
            {"event": "completed", "jobId": "job-empty", "result": {"note": "no file"}},
            {"event": "failed", "jobId": "job-failed", "error": "policy"},
            {"event": "progress", "jobId": "job-running", "progress": 40},
        ]
        for body in bodies:
            assert post(client, orjson.dumps({"model": "flux", **body})) == 202

        def captured() -> bool:
            # Four downloads ended; the other handler's one task waits an hour to retry.
            statuses = [r.status for r in rows(db, "SELECT status FROM tasks")]
            return (
                len(statuses) == 5
                and task_statuses(db).get("later") == "queued"
                and statuses.count("queued") == 1
                and set(statuses) <= {"succeeded", "dead", "queued"}
            )

        wait_until(captured)
        samples = scrape(client)
    states = ("capturing", "complete", "incomplete", "none")
    gauged = {s: value(samples, "framehook_jobs_capture", state=s) for s in states}
    assert gauged == {"capturing": 1, "complete": 1, "incomplete": 1, "none": 1}


@pytest.mark.anyio
async def test_reconciliation_lookups_and_api_requests_are_counted_by_outcome(db: Engine) -> None:
    """Lookups answered 200 (new, then known), 404 and 503 count by outcome, and requests too."""
    done = {"id": "job-done", "status": "COMPLETED", "model": "midjourney", "result": "https://x"}

    def answer(request: httpx.Request) -> httpx.Response:
        job_id = request.url.path.rsplit("/", 1)[-1]
        if job_id == "job-gone":
            return httpx.Response(404, json={"error": "not found"})
        if job_id == "job-down":
            return httpx.Response(503, json={"error": "maintenance"})
        return httpx.Response(200, json=done)

    metrics = Metrics()

    client = ApiframeClient(
        API_KEY, "http://api.test", attempts=1, transport=httpx.MockTransport(answer)
    )
    metrics.watch_api(client)
    reconciler = Reconciler(db, Recorder(db.dialect.name, []), client, metrics=metrics)
    try:
        await reconciler.poll(["job-done", "job-gone", "job-down", "job-done"])
    finally:
        await client.aclose()
    body, _content_type = metrics.render()
    samples = parse(body.decode())
    polls = {"updated": 1, "duplicate": 1, "not_found": 1, "error": 1}
    for outcome, count in polls.items():
        assert value(samples, "framehook_reconcile_polls_total", outcome=outcome) == count
    requests = {"ok": 2, "not_found": 1, "unavailable": 1}
    for outcome, count in requests.items():
        assert value(samples, "framehook_apiframe_requests_total", outcome=outcome) == count


def test_task_gauges_are_left_out_when_the_database_fails() -> None:
    """A task query that fails drops the gauges from the scrape; the rest still renders."""
    metrics = Metrics()
    metrics.delivery("completed", "accepted")
    empty = create_engine("sqlite://")  # no tables: every query fails
    metrics.watch_tasks(empty)
    try:
        body, _content_type = metrics.render()
    finally:
        empty.dispose()
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert "framehook_deliveries" in names
    assert not names & {
        "framehook_tasks",
        "framehook_oldest_queued_task_seconds",
        "framehook_jobs_capture",
    }


def test_each_app_counts_into_a_registry_of_its_own() -> None:
    """Two Metrics in one process register the same names without clashing or sharing."""
    first, second = Metrics(), Metrics()
    first.delivery("progress", "accepted")
    first_samples = parse(first.render()[0].decode())
    second_samples = parse(second.render()[0].decode())
    labels = {"event": "progress", "outcome": "accepted"}
    assert value(first_samples, "framehook_deliveries_total", **labels) == 1
    assert value(second_samples, "framehook_deliveries_total", **labels) is None


def test_the_receiver_serves_its_metrics_at_slash_metrics(
    make_client: Callable[..., TestClient],
) -> None:
    """``create_app`` mounts ``/metrics``: a webhook and the task gauges show up there."""
    client = make_client()
    body = sample("completed-midjourney")
    assert (
        client.post("/webhooks/apiframe", content=body, headers=signed_headers(body)).status_code
        == 202
    )
    text = client.get("/metrics").text
    assert 'framehook_deliveries_total{event="completed",outcome="accepted"} 1.0' in text
    assert 'framehook_tasks{status="queued"} 1.0' in text
