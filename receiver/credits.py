"""The credit ledger: what finished jobs cost, per model or per UTC day.

Every completed job carries ``creditCost``; a failed one is refunded, so it counts 0. The ledger
is the ``jobs`` table itself: a job has one row, whose terminal state and credit cost are set
once, by the first terminal event accepted (webhook or poll), so a duplicate, a conflicting
second terminal event, any reordering or a reconciliation poll can never charge a job twice.
Totals group by the job's model, or by the UTC day it ended (Apiframe's ``completedAt``, else
when framehook recorded the end). A completed event without ``creditCost`` counts 0, and so
does a cost outside ``0..MAX_CREDIT_COST`` (the intake stores none since it makes such a value
null, but rows written before it did may hold ``1e308``, and two of those overflow the sum: the
query must answer whatever the table holds). Test jobs (``jobs.test``: moved only by framehook
test events, ``framehook send-test``) are left out altogether: their costs are made up.

``framehook credits`` (``receiver.cli.credits``), ``GET /api/credits`` and the dashboard read
:func:`credit_totals`; ``framehook_credits_total{model}`` counts the same charges as they are
accepted (``receiver.intake.charges``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, String, and_, case, func, not_, select

from receiver.apiframe.fields import MAX_CREDIT_COST
from receiver.db.models import Job, metadata

__all__ = [
    "GROUPINGS",
    "CreditRow",
    "CreditTotals",
    "credit_totals",
    "grouping",
]

Grouping = Literal["model", "day"]
GROUPINGS: tuple[Grouping, ...] = ("model", "day")
_jobs = metadata.tables[Job.__tablename__]


@dataclass(frozen=True, slots=True)
class CreditRow:
    """One line of the ledger.

    Attributes:
        key: the model (``None`` when no event named it) or the day (``YYYY-MM-DD``, UTC).
        completed: jobs completed (charged).
        failed: jobs failed (refunded: no credits).
        credits: credits charged by the completed ones.
    """

    key: str | None
    completed: int
    failed: int
    credits: float


@dataclass(frozen=True, slots=True)
class CreditTotals:
    """The ledger over a window, grouped ``by`` model or day."""

    by: Grouping
    since: datetime | None
    rows: list[CreditRow]

    @property
    def total(self) -> CreditRow:
        """All rows summed (``key`` is ``None``)."""
        return CreditRow(
            None,
            sum(r.completed for r in self.rows),
            sum(r.failed for r in self.rows),
            sum(r.credits for r in self.rows),
        )


def grouping(value: str) -> Grouping:
    """``value`` as a grouping.

    Raises:
        ValueError: it is neither ``model`` nor ``day``.
    """
    for known in GROUPINGS:
        if value == known:
            return known
    raise ValueError(f"group credits by one of {', '.join(GROUPINGS)}, not {value!r}")


def _day(connection: Connection, moment: Any) -> Any:
    # The UTC calendar day of a timestamp: SQLite keeps naive UTC text, PostgreSQL timestamptz.
    if connection.dialect.name == "sqlite":
        return func.substr(moment, 1, 10, type_=String)
    return func.to_char(func.timezone("UTC", moment), "YYYY-MM-DD", type_=String)


def credit_totals(
    connection: Connection,
    since: datetime | None = None,
    by: Grouping = "model",
    until: datetime | None = None,
) -> CreditTotals:
    """The ledger of jobs that ended in ``[since, until)`` (each bound optional).

    Rows by model are ordered by credits, highest first; rows by day chronologically.

    Raises:
        ValueError: ``by`` is neither ``model`` nor ``day``.
    """
    by = grouping(by)
    j = _jobs
    ended = func.coalesce(j.c.completed_at, j.c.updated_at)
    completed = j.c.status == "COMPLETED"
    key = j.c.model if by == "model" else _day(connection, ended)
    # Both bounds leave out NaN and infinities too (PostgreSQL sorts NaN above every number).
    chargeable = and_(completed, j.c.credit_cost > 0, j.c.credit_cost <= MAX_CREDIT_COST)
    credits = func.coalesce(func.sum(case((chargeable, j.c.credit_cost), else_=0)), 0)
    query = (
        select(
            key.label("key"),
            func.sum(case((completed, 1), else_=0)).label("completed"),
            func.sum(case((j.c.status == "FAILED", 1), else_=0)).label("failed"),
            credits.label("credits"),
        )
        .where(j.c.status.in_(("COMPLETED", "FAILED")), not_(j.c.test))
        .group_by(key)
    )
    if since is not None:
        query = query.where(ended >= since)
    if until is not None:
        query = query.where(ended < until)
    rows = [
        CreditRow(r.key, int(r.completed or 0), int(r.failed or 0), float(r.credits or 0))
        for r in connection.execute(query)
    ]
    if by == "model":
        rows.sort(key=lambda r: (-r.credits, r.key or ""))
    else:
        rows.sort(key=lambda r: r.key or "")
    return CreditTotals(by, since, rows)
