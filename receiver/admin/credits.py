"""``GET /api/credits``: the credit ledger (``receiver.credits``) as JSON.

The same totals ``framehook credits`` prints and the dashboard shows: credits charged by
completed jobs, and how many completed and failed (refunded), per model or per UTC day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from receiver.admin.paging import BadQuery, parse_choice, parse_time
from receiver.credits import GROUPINGS, CreditRow, CreditTotals, credit_totals, grouping
from receiver.durations import parse_age

__all__ = ["credits_query", "credits_view", "parse_since"]


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """``since``: an ISO 8601 time, or an age such as ``7d``, ``24h``, ``30m`` (before now).

    Raises:
        BadQuery: neither (``bad_since``).
    """
    if value is None:
        return None
    try:
        age = parse_age(value)
    except ValueError:
        return parse_time(value, "since")
    try:
        return (now or datetime.now(UTC)) - age
    except OverflowError:
        raise BadQuery("bad_since", f"since {value!r} reaches back before year 1") from None


def _row(row: CreditRow) -> dict[str, Any]:
    return {
        "key": row.key,
        "completed": row.completed,
        "failed": row.failed,
        "credits": row.credits,
    }


def credits_view(totals: CreditTotals) -> dict[str, Any]:
    """``{by, since, items: [{key, completed, failed, credits}], total: {...}}``."""
    total = _row(totals.total)
    del total["key"]
    return {
        "by": totals.by,
        "since": totals.since,
        "items": [_row(r) for r in totals.rows],
        "total": total,
    }


def credits_query(params: Any) -> Callable[[Connection], dict[str, Any]]:
    """The read a ``GET /api/credits`` request asks for (its parameters checked first)."""
    by = grouping(parse_choice(params.get("by"), "by", GROUPINGS) or "model")
    since = parse_since(params.get("since"))
    until = parse_time(params.get("until"), "until")
    return lambda connection: credits_view(credit_totals(connection, since, by, until))
