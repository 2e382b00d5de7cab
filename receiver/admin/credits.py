"""``GET /api/credits``: the credit ledger (``receiver.credits``) as JSON.

The same totals ``framehook credits`` prints and the dashboard shows: credits charged by
completed jobs, and how many completed and failed (refunded), per model or per UTC day. Test
jobs (``framehook send-test``) count in none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from receiver.admin.paging import parse_choice, parse_time
from receiver.admin.views import CreditsView, credits_view
from receiver.credits import GROUPINGS, credit_totals, grouping
from receiver.durations import parse_age

__all__ = ["credits_query", "parse_since"]

_EARLIEST = datetime.min.replace(tzinfo=UTC)


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """``since``: an ISO 8601 time, or an age such as ``7d``, ``24h``, ``30m`` (before now).

    An age longer than the calendar (``999999999d``) reaches back to its start: every job.

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
        # The grammar (and the OpenAPI description) allows nine digits, more than the
        # calendar holds; refusing what the description allows would be a contract break.
        return _EARLIEST


def credits_query(params: Any) -> Callable[[Connection], CreditsView]:
    """The read a ``GET /api/credits`` request asks for (its parameters checked first)."""
    by = grouping(parse_choice(params.get("by"), "by", GROUPINGS) or "model")
    since = parse_since(params.get("since"))
    until = parse_time(params.get("until"), "until")
    return lambda connection: credits_view(credit_totals(connection, since, by, until))
