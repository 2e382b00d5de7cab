"""Control signals a handler raises to tell framehook what to do next.

Tree::

    HandlerSignal
    ├── RetryLater         run again after ``delay`` seconds, or the usual backoff (counts
    │                      as an attempt)
    └── PermanentFailure   stop: park the task as dead with ``reason``
        └── UnsafeURL      the safe HTTP client refused a URL (``handlers._safety``)
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

__all__ = ["HandlerSignal", "PermanentFailure", "RetryLater", "retry_after"]


class HandlerSignal(Exception):
    """Base of the signals a handler may raise."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryLater(HandlerSignal):
    """Run this task again after ``delay`` seconds (for example a 429 with ``Retry-After``),
    or, with ``delay=None``, after the worker's usual backoff: an expected, transient failure
    that the worker logs as one line, without a traceback."""

    def __init__(self, delay: float | None, reason: str = "retry requested") -> None:
        super().__init__(reason)
        self.delay = None if delay is None else max(0.0, float(delay))


class PermanentFailure(HandlerSignal):
    """Retrying cannot help (an expired asset, a refused URL): park the task as dead."""


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date; a date
    in the past is 0), or ``None`` when absent or unreadable: ``RetryLater(retry_after(...))``.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
