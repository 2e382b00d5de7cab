"""The credit ledger: what finished jobs cost, per model or per UTC day.

Every completed job carries ``creditCost``; a failed one is refunded, so it counts 0. The ledger
is the ``jobs`` table itself: a job has one row, whose terminal state and credit cost are set
once, by the first terminal event accepted (webhook or poll), so a duplicate, a conflicting
second terminal event, any reordering or a reconciliation poll can never charge a job twice.
Totals group by the job's model, or by the UTC day it ended (Apiframe's ``completedAt``, else
when framehook recorded the end). A completed event without ``creditCost`` counts 0.

``framehook credits`` calls :func:`run_credits`; ``GET /api/credits`` and the dashboard read
:func:`credit_totals`; ``framehook_credits_total{model}`` counts the same charges as they are
accepted (:func:`count_charges`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, String, and_, case, func, select

from receiver.apiframe.events import CompletedEvent
from receiver.db.models import Job, metadata
from receiver.intake.recorder import Arrival, Outcome, Receipt

if TYPE_CHECKING:
    from receiver.metrics import Metrics
    from receiver.settings import Settings

__all__ = [
    "GROUPINGS",
    "CreditRow",
    "CreditTotals",
    "charge_of",
    "count_charges",
    "credit_totals",
    "grouping",
    "render_credits",
    "run_credits",
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
    credits = func.coalesce(
        func.sum(case((and_(completed, j.c.credit_cost > 0), j.c.credit_cost), else_=0)), 0
    )
    query = (
        select(
            key.label("key"),
            func.sum(case((completed, 1), else_=0)).label("completed"),
            func.sum(case((j.c.status == "FAILED", 1), else_=0)).label("failed"),
            credits.label("credits"),
        )
        .where(j.c.status.in_(("COMPLETED", "FAILED")))
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


def _amount(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def render_credits(totals: CreditTotals) -> str:
    """The ledger as a plain-text table, with a total line (what ``framehook credits`` prints)."""
    window = f" since {totals.since:%Y-%m-%d %H:%M} UTC" if totals.since is not None else ""
    if not totals.rows:
        return f"no completed or failed jobs{window}\n"
    header = (totals.by.upper(), "COMPLETED", "FAILED", "CREDITS")
    lines = [
        (r.key or "(unknown)", str(r.completed), str(r.failed), _amount(r.credits))
        for r in totals.rows
    ]
    total = totals.total
    lines.append(("total", str(total.completed), str(total.failed), _amount(total.credits)))
    width = [max(len(row[n]) for row in (header, *lines)) for n in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(width[0])
        rest = "  ".join(c.rjust(w) for c, w in zip(cells[1:], width[1:], strict=True))
        return f"{first}  {rest}"

    rule = "-" * len(line(header))
    body = [line(header), *(line(c) for c in lines[:-1]), rule, line(lines[-1])]
    return "\n".join(body) + f"\n\ncredits charged by jobs that ended{window or ' (all time)'}\n"


def run_credits(settings: Settings, since: timedelta | None = None, by: str = "model") -> str:
    """``framehook credits [--since 7d] [--by model|day]``: the ledger of the configured
    database (``FRAMEHOOK_DATABASE_URL``) as the table to print.

    Args:
        settings: the configuration (only ``database_url`` is used).
        since: how far back to look; everything when ``None``.
        by: ``model`` or ``day``.

    Raises:
        ValueError: ``by`` is neither ``model`` nor ``day``, or ``since`` is negative.
        sqlalchemy.exc.SQLAlchemyError: the database cannot be read.
    """
    from receiver.db.engine import create_db_engine

    grouped = grouping(by)
    if since is not None and since < timedelta(0):
        raise ValueError("--since must not be negative")
    start = None if since is None else datetime.now(UTC) - since
    engine = create_db_engine(settings.database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            totals = credit_totals(connection, start, grouped)
    finally:
        engine.dispose()
    return render_credits(totals)


def charge_of(arrival: Arrival, receipt: Receipt) -> tuple[str | None, float] | None:
    """``(model, credits)`` if recording ``arrival`` charged its job, else ``None``.

    Only an accepted ``completed`` event charges: it is the job's first terminal event, which
    happens once per job whatever arrives after it.
    """
    event = arrival.parsed.event
    if receipt.outcome is not Outcome.ACCEPTED or not isinstance(event, CompletedEvent):
        return None
    if event.credit_cost is None or event.credit_cost <= 0:
        return None
    return receipt.model or event.model, event.credit_cost


def count_charges(metrics: Metrics | None, recorded: Iterable[tuple[Arrival, Receipt]]) -> None:
    """Count the credits charged by these recorded arrivals in ``framehook_credits_total``."""
    if metrics is None:
        return
    for arrival, receipt in recorded:
        charge = charge_of(arrival, receipt)
        if charge is not None:
            metrics.credit(*charge)
