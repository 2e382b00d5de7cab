"""Prometheus metrics: what the receiver, the worker and reconciliation count, and ``/metrics``.

Each app gets its own ``CollectorRegistry`` (never the process-wide default): tests build many
apps in one process, and a library should not publish into a registry it does not own.

Counters and histograms are incremented where things happen, through label children bound
once (the webhook's answer is benchmarked: no label parsing per request). The task and capture
gauges are read from the database at scrape time, so they cover every process sharing it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, case, exists, func, select

from receiver.db.models import AssetRecord, AttemptOutcome, Job, Task, TaskStatus, metadata
from receiver.intake.job_state import JobStatus
from receiver.logs import get_logger

if TYPE_CHECKING:
    # Types only: a standalone worker counts into Metrics but neither serves /metrics
    # (starlette) nor polls Apiframe (its client); every module it loads stays resident.
    from starlette.requests import Request
    from starlette.responses import Response

    from receiver.apiframe.client import ApiframeClient

__all__ = ["HandlerMeter", "Metrics", "metrics_endpoint"]

_log = get_logger("framehook.metrics")
_tasks = metadata.tables[Task.__tablename__]
_jobs = metadata.tables[Job.__tablename__]
_assets = metadata.tables[AssetRecord.__tablename__]

TASK_STATUSES = tuple(s.value for s in TaskStatus)
CAPTURE_STATES = ("capturing", "complete", "incomplete", "none")
SIGNATURE_REASONS = ("signature_missing", "signature_malformed", "signature_mismatch")
HANDLER_OUTCOMES = tuple(o.value for o in AttemptOutcome)
WEBHOOK_EVENTS = frozenset({"progress", "completed", "failed", "cancelled"})
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
HANDLER_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


class HandlerMeter:
    """One handler's run counter and duration histogram, bound per outcome."""

    __slots__ = ("_runs", "_seconds")

    def __init__(self, metrics: Metrics, handler: str) -> None:
        self._runs = {o: metrics.handler_runs.labels(handler, o) for o in HANDLER_OUTCOMES}
        self._seconds = {o: metrics.handler_seconds.labels(handler, o) for o in HANDLER_OUTCOMES}

    def attempt(self, outcome: AttemptOutcome, seconds: float | None) -> None:
        """Count one attempt ending in ``outcome``; ``seconds`` is ``None`` when the handler
        never ran (the delivery's body was pruned)."""
        self._runs[outcome].inc()
        if seconds is not None:
            self._seconds[outcome].observe(seconds)


class Metrics:
    """framehook's metrics, in a registry of their own (``self.registry``).

    Components take an optional ``Metrics`` and count nothing without one.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.deliveries = Counter(
            "framehook_deliveries",
            "Webhook deliveries recorded, by the body's event and what became of them.",
            ["event", "outcome"],
            registry=r,
        )
        self.signature_failures = Counter(
            "framehook_signature_failures",
            "Webhooks answered 401, by reason.",
            ["reason"],
            registry=r,
        )
        self.ack_seconds = Histogram(
            "framehook_ack_seconds",
            "Webhook handling time, from the request to the answer.",
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self.handler_seconds = Histogram(
            "framehook_handler_seconds",
            "Handler run time per task attempt, by handler and outcome.",
            ["handler", "outcome"],
            buckets=HANDLER_BUCKETS,
            registry=r,
        )
        self.handler_runs = Counter(
            "framehook_handler_runs",
            "Task attempts, by handler and outcome (succeeded, retry, dead).",
            ["handler", "outcome"],
            registry=r,
        )
        self.downloaded_bytes = Counter(
            "framehook_downloaded_bytes",
            "Bytes of captured assets newly recorded.",
            registry=r,
        )
        self.reconcile_polls = Counter(
            "framehook_reconcile_polls",
            "Jobs looked up (or listed) by reconciliation, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.credits = Counter(
            "framehook_credits",
            "Credits charged by completed jobs, by model, counted once per job when its "
            "completed event (webhook or poll) is accepted.",
            ["model"],
            registry=r,
        )
        self._signature = {
            reason: self.signature_failures.labels(reason) for reason in SIGNATURE_REASONS
        }
        # outcome -> event -> child; filled on first use (most pairs never happen).
        self._deliveries: dict[str, dict[str, Any]] = {}
        self._tasks = _TaskCollector()
        self._api = _ApiCollector()
        r.register(self._tasks)
        r.register(self._api)

    def delivery(self, event: str | None, outcome: str) -> None:
        """Count a recorded webhook delivery; ``event`` is the body's (any other name counts
        as ``other``, none as ``none``)."""
        label = event if event in WEBHOOK_EVENTS else "none" if event is None else "other"
        by_event = self._deliveries.get(outcome)
        if by_event is None:
            by_event = self._deliveries[outcome] = {}
        child = by_event.get(label)
        if child is None:
            child = by_event[label] = self.deliveries.labels(label, outcome)
        child.inc()

    def signature_failure(self, reason: str) -> None:
        """Count a 401."""
        child = self._signature.get(reason)
        if child is None:
            child = self._signature[reason] = self.signature_failures.labels(reason)
        child.inc()

    def handler(self, name: str) -> HandlerMeter:
        """The meter of handler ``name`` (bind once, use per attempt)."""
        return HandlerMeter(self, name)

    def downloaded(self, size: int) -> None:
        """Count ``size`` bytes of a newly recorded asset."""
        self.downloaded_bytes.inc(size)

    def reconcile_poll(self, outcome: str, count: int = 1) -> None:
        """Count ``count`` reconciliation lookups ending in ``outcome``."""
        self.reconcile_polls.labels(outcome).inc(count)

    def credit(self, model: str | None, amount: float) -> None:
        """Count ``amount`` credits charged by an accepted ``completed`` event of ``model``."""
        if amount > 0:
            self.credits.labels(model or "unknown").inc(amount)

    def watch_tasks(self, engine: Engine) -> None:
        """Report the task and capture gauges from ``engine``'s tables at each scrape."""
        self._tasks.engine = engine

    def watch_api(self, client: ApiframeClient) -> None:
        """Report ``client``'s requests to Apiframe's job API by outcome at each scrape."""
        self._api.client = client

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition (text format, or OpenMetrics if ``accept`` asks) and its type.

        Runs the database queries: call it off the event loop.
        """
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: the app's metrics (``app.state.metrics``) in Prometheus text format."""
    from starlette.responses import Response  # the receiver's alone: see the imports

    metrics: Metrics = request.app.state.metrics
    body, content_type = await anyio.to_thread.run_sync(
        metrics.render, request.headers.get("accept")
    )
    return Response(body, headers={"Content-Type": content_type})


class _TaskCollector(Collector):
    """The gauges read from the database at scrape time: ``framehook_tasks{status}``,
    ``framehook_oldest_queued_task_seconds`` and ``framehook_jobs_capture{state}``; nothing
    when the database does not answer (the scrape still succeeds)."""

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        if self.engine is None:
            return []
        now = datetime.now(UTC)
        t = _tasks
        try:
            with self.engine.connect() as connection:
                grouped = select(t.c.status, func.count()).group_by(t.c.status)
                counts: dict[str, int] = {row[0]: row[1] for row in connection.execute(grouped)}
                oldest = connection.execute(
                    select(func.min(t.c.run_at)).where(
                        t.c.status == TaskStatus.QUEUED, t.c.run_at <= now
                    )
                ).scalar()
                captures = _captures(connection)
        except Exception as exc:
            _log.warning(
                "metrics: reading the database failed", error=f"{type(exc).__name__}: {exc}"
            )
            return []
        by_status, age, capture = self._families()
        for status in sorted(set(TASK_STATUSES) | set(counts)):
            by_status.add_metric([status], counts.get(status, 0))
        age.add_metric(
            [], 0.0 if oldest is None else max(0.0, (now - _utc(oldest)).total_seconds())
        )
        for state in CAPTURE_STATES:
            capture.add_metric([state], captures.get(state, 0))
        return [by_status, age, capture]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("framehook_tasks", "Tasks by status.", labels=["status"]),
            GaugeMetricFamily(
                "framehook_oldest_queued_task_seconds",
                "Age of the oldest due queued task (0 when none is waiting).",
            ),
            GaugeMetricFamily(
                "framehook_jobs_capture",
                "Completed jobs by capture: every file their result names stored (complete), "
                "some missing while a task of the job is pending (capturing) or with none "
                "pending (incomplete), or no file named (none).",
                labels=["state"],
            ),
        )


def _captures(connection: Connection) -> dict[str, int]:
    """Completed jobs (whose files were counted) by capture state."""
    j, a, t = _jobs, _assets, _tasks
    # One index range per job on the assets' (job_id, ...) index, in one statement; a job
    # short of files also looks up its tasks (by the (job_id, handler) index). "incomplete"
    # is then what to alert on: a job still being captured (a download running, or waiting
    # to retry) is not.
    stored = select(func.count()).where(a.c.job_id == j.c.id).correlate(j).scalar_subquery()
    pending = (
        exists()
        .where(t.c.job_id == j.c.id, t.c.status.in_((TaskStatus.QUEUED, TaskStatus.RUNNING)))
        .correlate(j)
    )
    state = case(
        (j.c.files_expected == 0, "none"),
        (stored >= j.c.files_expected, "complete"),
        (pending, "capturing"),
        else_="incomplete",
    ).label("state")
    jobs = (
        select(state)
        .where(j.c.status == JobStatus.COMPLETED, j.c.files_expected.is_not(None))
        .subquery()
    )
    query = select(jobs.c.state, func.count()).group_by(jobs.c.state)
    return {row[0]: row[1] for row in connection.execute(query)}


class _ApiCollector(Collector):
    """``framehook_apiframe_requests_total{outcome}``: the job API client's own tally."""

    def __init__(self) -> None:
        self.client: ApiframeClient | None = None

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        if self.client is None:
            return []
        family = self._family()
        for outcome, count in sorted(dict(self.client.polls).items()):
            family.add_metric([outcome], count)
        return [family]

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "framehook_apiframe_requests",
            "Requests to Apiframe's job API (reconciliation), by outcome.",
            labels=["outcome"],
        )


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite's aggregate may lose the column type
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
