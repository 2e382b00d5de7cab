"""The gauges read at scrape time: tasks and captures from the database, and the Apiframe job
API client's own tally."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, case, exists, func, select

from receiver.db.models import AssetRecord, Job, Task, TaskStatus, metadata
from receiver.intake.job_state import JobStatus
from receiver.logs import get_logger

if TYPE_CHECKING:
    from receiver.apiframe.client import ApiframeClient

__all__ = ["CAPTURE_STATES", "TASK_STATUSES", "ApiCollector", "TaskCollector"]

_log = get_logger("framehook.metrics")
_tasks = metadata.tables[Task.__tablename__]
_jobs = metadata.tables[Job.__tablename__]
_assets = metadata.tables[AssetRecord.__tablename__]

TASK_STATUSES = tuple(s.value for s in TaskStatus)
CAPTURE_STATES = ("capturing", "complete", "incomplete", "none")


class TaskCollector(Collector):
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
        .where(
            t.c.job_id == j.c.id,
            t.c.status.in_((TaskStatus.WAITING, TaskStatus.QUEUED, TaskStatus.RUNNING)),
        )
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


class ApiCollector(Collector):
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
