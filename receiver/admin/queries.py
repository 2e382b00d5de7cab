"""The admin API's reads (and ``framehook jobs``): SQLAlchemy Core, SQLite and PostgreSQL alike.

Lists are keyset-paginated, so a page costs the same wherever it is and rows inserted while a
client walks the pages neither repeat nor hide others:

- jobs by ``(created_at, id)`` descending: newest first, and a job's ``created_at`` never
  changes (ordering by ``updated_at`` would move a job that gets an event between two pages);
- deliveries and tasks by ``id`` descending (ids only grow).

Each list fetches one row more than asked for, to know whether there is a next page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, func, or_, select

from receiver.admin.views import asset_view, attempt_view, delivery_view, job_view, task_view
from receiver.db.models import AssetRecord, Delivery, Job, Task, TaskAttempt, metadata
from receiver.intake.recorder import DeliveryOutcome

__all__ = [
    "JOB_STATUSES",
    "OUTCOMES",
    "TASK_STATUSES",
    "DeliveryFilter",
    "JobFilter",
    "Page",
    "TaskFilter",
    "asset_counts",
    "find_task",
    "job_exists",
    "job_timeline",
    "list_deliveries",
    "list_jobs",
    "list_tasks",
]

JOB_STATUSES = ("QUEUED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED")
TASK_STATUSES = ("queued", "running", "succeeded", "dead", "superseded")
OUTCOMES = tuple(o.value for o in DeliveryOutcome)

_jobs = metadata.tables[Job.__tablename__]
_deliveries = metadata.tables[Delivery.__tablename__]
_tasks = metadata.tables[Task.__tablename__]
_attempts = metadata.tables[TaskAttempt.__tablename__]
_assets = metadata.tables[AssetRecord.__tablename__]
# Everything a delivery list shows; the body (up to a MiB) only in a job's timeline.
_DELIVERY_SUMMARY = [c for c in _deliveries.c if c.name != "body"]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: its items, and the position after the last one if more follow."""

    items: list[dict[str, Any]]
    next_key: tuple[Any, ...] | None


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs to list; ``since`` (inclusive) and ``until`` (exclusive) bound
    ``created_at``."""

    status: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """Which deliveries to list."""

    outcome: str | None = None
    event: str | None = None
    job_id: str | None = None


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Which tasks to list (``status`` ``None``: every status)."""

    status: str | None = "dead"
    handler: str | None = None
    job_id: str | None = None


def _page(connection: Connection, query: Select[Any], limit: int, view: Any, key: Any) -> Page:
    rows = connection.execute(query.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([view(r) for r in rows], key(rows[-1]) if more else None)


def list_jobs(
    connection: Connection, where: JobFilter, limit: int, after: tuple[Any, ...] | None = None
) -> Page:
    """Jobs newest first (by ``created_at``, then ``id``), after the position ``after``
    (``(created_at, id)`` of the last job of the previous page)."""
    j = _jobs
    query = select(j).order_by(j.c.created_at.desc(), j.c.id.desc())
    if where.status is not None:
        query = query.where(j.c.status == where.status)
    if where.model is not None:
        query = query.where(j.c.model == where.model)
    if where.since is not None:
        query = query.where(j.c.created_at >= where.since)
    if where.until is not None:
        query = query.where(j.c.created_at < where.until)
    if after is not None:
        created, job_id = after
        query = query.where(
            or_(j.c.created_at < created, and_(j.c.created_at == created, j.c.id < job_id))
        )
    return _page(connection, query, limit, job_view, lambda r: (r.created_at, r.id))


def list_deliveries(
    connection: Connection, where: DeliveryFilter, limit: int, after: int | None = None
) -> Page:
    """Deliveries newest first (by ``id``), without their bodies."""
    d = _deliveries
    query = select(*_DELIVERY_SUMMARY).order_by(d.c.id.desc())
    if where.outcome is not None:
        query = query.where(d.c.outcome == where.outcome)
    if where.event is not None:
        query = query.where(d.c.event == where.event)
    if where.job_id is not None:
        query = query.where(d.c.job_id == where.job_id)
    if after is not None:
        query = query.where(d.c.id < after)
    return _page(connection, query, limit, delivery_view, lambda r: (r.id,))


def list_tasks(
    connection: Connection, where: TaskFilter, limit: int, after: int | None = None
) -> Page:
    """Tasks newest first (by ``id``)."""
    t = _tasks
    query = select(t).order_by(t.c.id.desc())
    if where.status is not None:
        query = query.where(t.c.status == where.status)
    if where.handler is not None:
        query = query.where(t.c.handler == where.handler)
    if where.job_id is not None:
        query = query.where(t.c.job_id == where.job_id)
    if after is not None:
        query = query.where(t.c.id < after)
    return _page(connection, query, limit, task_view, lambda r: (r.id,))


def find_task(connection: Connection, task_id: int) -> dict[str, Any] | None:
    """One task, or ``None``."""
    row = connection.execute(select(_tasks).where(_tasks.c.id == task_id)).first()
    return None if row is None else task_view(row)


def job_exists(connection: Connection, job_id: str) -> bool:
    """Whether the job has a row."""
    found = connection.execute(select(_jobs.c.id).where(_jobs.c.id == job_id)).first()
    return found is not None


def job_timeline(connection: Connection, job_id: str) -> dict[str, Any] | None:
    """A job with everything that happened to it, or ``None`` if unknown: its ``deliveries``
    in arrival order (raw bodies included while kept), its ``tasks`` with each one's
    ``history`` of attempts, and its ``assets`` by handler and position.

    Run it inside a transaction for one consistent picture on SQLite.
    """
    row = connection.execute(select(_jobs).where(_jobs.c.id == job_id)).first()
    if row is None:
        return None
    d, t, a, s = _deliveries, _tasks, _attempts, _assets
    deliveries = connection.execute(
        select(d).where(d.c.job_id == job_id).order_by(d.c.received_at, d.c.id)
    ).all()
    tasks = connection.execute(select(t).where(t.c.job_id == job_id).order_by(t.c.id)).all()
    attempts = connection.execute(
        select(a)
        .join(t, t.c.id == a.c.task_id)
        .where(t.c.job_id == job_id)
        .order_by(a.c.task_id, a.c.attempt, a.c.id)
    ).all()
    assets = connection.execute(
        select(s).where(s.c.job_id == job_id).order_by(s.c.handler, s.c.position)
    ).all()
    history: dict[int, list[dict[str, Any]]] = {}
    for attempt in attempts:
        history.setdefault(attempt.task_id, []).append(attempt_view(attempt))
    return {
        **job_view(row),
        "assets": [asset_view(r) for r in assets],
        "deliveries": [delivery_view(r, with_body=True) for r in deliveries],
        "tasks": [{**task_view(r), "history": history.get(r.id, [])} for r in tasks],
    }


def asset_counts(connection: Connection, job_ids: Sequence[str]) -> dict[str, int]:
    """How many files each of ``job_ids`` has captured (jobs without any are left out)."""
    if not job_ids:
        return {}
    s = _assets
    query = (
        select(s.c.job_id, func.count()).where(s.c.job_id.in_(list(job_ids))).group_by(s.c.job_id)
    )
    return {job_id: int(count) for job_id, count in connection.execute(query).all()}
