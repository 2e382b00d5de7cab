"""The admin API's reads (and ``framehook jobs``): SQLAlchemy Core, SQLite and PostgreSQL alike.

Lists are keyset-paginated, so a page costs the same wherever it is and rows inserted while a
client walks the pages neither repeat nor hide others:

- jobs by ``(created_at, id)`` descending: newest first, and a job's ``created_at`` never
  changes (ordering by ``updated_at`` would move a job that gets an event between two pages);
- deliveries and tasks by ``id`` descending (ids only grow).

Each list fetches one row more than asked for, to know whether there is a next page. A job
comes with how many files it has stored, counted in the same statement (see
:func:`job_summaries`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Row,
    Select,
    and_,
    func,
    literal_column,
    or_,
    select,
)
from typing_extensions import TypeVar

from receiver.admin.problems import error_groups, file_positions, task_errors
from receiver.admin.views import (
    AttemptView,
    DeliveryView,
    DeliveryWithBodyView,
    JobView,
    TaskView,
    TaskWithHistoryView,
    TimelineView,
    asset_view,
    attempt_view,
    delivery_view,
    delivery_with_body_view,
    job_view,
    task_view,
)
from receiver.db.models import AssetRecord, Delivery, Job, Task, TaskAttempt, TaskStatus, metadata
from receiver.intake.arrivals import DeliveryOutcome
from receiver.intake.job_state import JobStatus

__all__ = [
    "JOB_STATUSES",
    "OUTCOMES",
    "TASK_STATUSES",
    "DeliveryFilter",
    "JobFilter",
    "Page",
    "TaskFilter",
    "find_delivery",
    "find_task",
    "job_exists",
    "job_summaries",
    "job_timeline",
    "list_deliveries",
    "list_jobs",
    "list_tasks",
]

JOB_STATUSES: tuple[str, ...] = tuple(s.value for s in JobStatus)
TASK_STATUSES: tuple[str, ...] = tuple(s.value for s in TaskStatus)
OUTCOMES: tuple[str, ...] = tuple(o.value for o in DeliveryOutcome)

_jobs = metadata.tables[Job.__tablename__]
_deliveries = metadata.tables[Delivery.__tablename__]
_tasks = metadata.tables[Task.__tablename__]
_attempts = metadata.tables[TaskAttempt.__tablename__]
_assets = metadata.tables[AssetRecord.__tablename__]
# Everything a delivery list shows; the body (up to a MiB) only in a job's timeline.
_DELIVERY_SUMMARY = [c for c in _deliveries.c if c.name != "body"]
# A job's stored files, counted per row: the assets' unique index leads with job_id, so each
# job costs one index range (no table read), and a page of jobs stays one statement, not 1 + N.
_FILES_STORED = (
    select(func.count())
    .select_from(_assets)
    .where(_assets.c.job_id == _jobs.c.id)
    .correlate(_jobs)
    .scalar_subquery()
    .label("files_stored")
)
# The job's tasks still waiting, queued or running, counted the same way (the tasks' (job_id,
# handler) index): while there are any, a shortfall of files is a capture in progress, not a
# failure.
_OPEN_TASKS = (
    select(func.count())
    .select_from(_tasks)
    .where(
        _tasks.c.job_id == _jobs.c.id,
        _tasks.c.status.in_(
            (TaskStatus.WAITING.value, TaskStatus.QUEUED.value, TaskStatus.RUNNING.value)
        ),
    )
    .correlate(_jobs)
    .scalar_subquery()
    .label("open_tasks")
)

# Covariant, so a page of jobs is a page of mappings too; the default keeps a bare ``Page``
# (``framehook jobs`` annotates one) a page of some view.
ViewT = TypeVar("ViewT", covariant=True, default=Mapping[str, Any])
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class Page(Generic[ViewT]):
    """One page of a list: its items, and the position after the last one if more follow."""

    items: Sequence[ViewT]
    next_key: tuple[Any, ...] | None


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs to list; ``since`` (inclusive) and ``until`` (exclusive) bound
    ``created_at``; ``id_prefix`` keeps the jobs whose id starts with it (case-sensitive)."""

    status: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    id_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    """Which deliveries to list."""

    outcome: str | None = None
    event: str | None = None
    job_id: str | None = None


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Which tasks to list (``status`` ``None``: every status)."""

    status: str | None = TaskStatus.DEAD
    handler: str | None = None
    job_id: str | None = None


def _equal(query: Select[Any], *pairs: tuple[Column[Any], object]) -> Select[Any]:
    """``query`` narrowed to the rows where each column equals its value (``None``: any)."""
    for column, value in pairs:
        if value is not None:
            query = query.where(column == value)
    return query


def _before(order: Sequence[Column[Any]], key: Sequence[Any]) -> ColumnElement[bool]:
    """The rows that come after ``key`` in ``order`` descending: the keyset condition
    ``a < x OR (a = x AND b < y)``, written out so both databases use the index."""
    (column, *rest), (value, *more) = order, key
    earlier: ColumnElement[bool] = column < value
    if not rest:
        return earlier
    return or_(earlier, and_(column == value, _before(rest, more)))


def _page(
    connection: Connection,
    query: Select[Any],
    order: Sequence[Column[Any]],
    view: Callable[[Row[Any]], _V],
    limit: int,
    after: tuple[Any, ...] | None,
) -> Page[_V]:
    """A page of ``query`` in ``order`` descending, after the position ``after``."""
    if after is not None:
        query = query.where(_before(order, after))
    # One row more than asked for tells whether a next page exists.
    query = query.order_by(*(column.desc() for column in order)).limit(limit + 1)
    rows = connection.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    key = tuple(getattr(rows[-1], column.name) for column in order) if more else None
    return Page([view(r) for r in rows], key)


def job_summaries() -> Select[Any]:
    """Jobs with their columns, ``files_stored`` and ``open_tasks``: what :func:`job_view`
    reads."""
    return select(*_jobs.c, _FILES_STORED, _OPEN_TASKS)


def list_jobs(
    connection: Connection, where: JobFilter, limit: int, after: tuple[Any, ...] | None = None
) -> Page[JobView]:
    """Jobs newest first (by ``created_at``, then ``id``), after the position ``after``
    (``(created_at, id)`` of the last job of the previous page)."""
    j = _jobs
    query = _equal(job_summaries(), (j.c.status, where.status), (j.c.model, where.model))
    if where.id_prefix:
        # substr, not LIKE: the same exact, case-sensitive test on SQLite and PostgreSQL, with
        # no wildcard to escape in what a person pasted.
        query = query.where(func.substr(j.c.id, 1, len(where.id_prefix)) == where.id_prefix)
    if where.since is not None:
        query = query.where(j.c.created_at >= where.since)
    if where.until is not None:
        query = query.where(j.c.created_at < where.until)
    return _page(connection, query, (j.c.created_at, j.c.id), job_view, limit, after)


def list_deliveries(
    connection: Connection, where: DeliveryFilter, limit: int, after: tuple[Any, ...] | None = None
) -> Page[DeliveryView]:
    """Deliveries newest first (by ``id``), without their bodies."""
    d = _deliveries
    query = _equal(
        select(*_DELIVERY_SUMMARY),
        (d.c.outcome, where.outcome),
        (d.c.event, where.event),
        (d.c.job_id, where.job_id),
    )
    if where.outcome is not None and where.outcome != DeliveryOutcome.ACCEPTED:
        # The outcome index holds only these rows (migration 0011); the condition, written
        # literally, lets both databases use it whatever the bound outcome is.
        query = query.where(d.c.outcome != literal_column("'accepted'"))
    return _page(connection, query, (d.c.id,), delivery_view, limit, after)


def list_tasks(
    connection: Connection, where: TaskFilter, limit: int, after: tuple[Any, ...] | None = None
) -> Page[TaskView]:
    """Tasks newest first (by ``id``)."""
    t = _tasks
    query = _equal(
        select(t),
        (t.c.status, where.status),
        (t.c.handler, where.handler),
        (t.c.job_id, where.job_id),
    )
    return _page(connection, query, (t.c.id,), task_view, limit, after)


def find_delivery(connection: Connection, delivery_id: int) -> DeliveryWithBodyView | None:
    """One delivery with its body (while kept), or ``None``."""
    row = connection.execute(select(_deliveries).where(_deliveries.c.id == delivery_id)).first()
    return None if row is None else delivery_with_body_view(row)


def find_task(connection: Connection, task_id: int) -> TaskView | None:
    """One task, or ``None``."""
    row = connection.execute(select(_tasks).where(_tasks.c.id == task_id)).first()
    return None if row is None else task_view(row)


def job_exists(connection: Connection, job_id: str) -> bool:
    """Whether the job has a row."""
    found = connection.execute(select(_jobs.c.id).where(_jobs.c.id == job_id)).first()
    return found is not None


def job_timeline(connection: Connection, job_id: str) -> TimelineView | None:
    """A job with everything that happened to it, or ``None`` if unknown: its ``deliveries``
    in arrival order (raw bodies included while kept), its ``tasks`` with each one's
    ``history`` of attempts and ``errorGroups`` (``receiver.admin.problems``), and its
    ``assets`` by handler and position.

    Run it inside a transaction for one consistent picture on SQLite.
    """
    row = connection.execute(job_summaries().where(_jobs.c.id == job_id)).first()
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
    history: dict[int, list[AttemptView]] = {}
    for attempt in attempts:
        history.setdefault(attempt.task_id, []).append(attempt_view(attempt))
    positions = file_positions(row.result)
    timeline_tasks: list[TaskWithHistoryView] = []
    for r in tasks:
        runs = history.get(r.id, [])
        errors = task_errors(runs, r.last_error, r.updated_at)
        groups = error_groups(errors, positions)
        timeline_tasks.append({**task_view(r), "history": runs, "errorGroups": groups})
    return {
        **job_view(row),
        "assets": [asset_view(r) for r in assets],
        "deliveries": [delivery_with_body_view(r) for r in deliveries],
        "tasks": timeline_tasks,
    }
