"""Reading the admin API's query string: limits, times, filters and opaque cursors.

Every parser raises :class:`~receiver.errors.BadQuery` (a 400 with a ``reason``) on input it
cannot use, so a bad request never reaches the database. Cursors are keyset positions,
base64url-encoded JSON tagged with the list they belong to: a jobs cursor is refused by the
deliveries list.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import orjson

from receiver.errors import BadQuery, NotFound

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_ID",
    "MAX_LIMIT",
    "decode_cursor",
    "encode_cursor",
    "parse_choice",
    "parse_id",
    "parse_limit",
    "parse_text",
    "parse_time",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_ID = 2**63 - 1
"""The largest id a BIGINT column holds; a larger one names nothing."""


def parse_limit(value: str | None) -> int:
    """``limit``: an integer from 1 to 200, 50 when absent."""
    if value is None:
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise BadQuery("bad_limit", f"limit must be an integer from 1 to {MAX_LIMIT}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadQuery("bad_limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


def parse_time(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 date or date-time; one without an offset is taken as UTC."""
    if value is None:
        return None
    try:
        # RFC 3339 allows a lower-case "t" and "z"; Python's parser wants them upper-case.
        parsed = datetime.fromisoformat(value.strip().upper())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadQuery(
            f"bad_{name}", f"{name} must be an ISO 8601 date-time (2026-01-31T12:00:00Z)"
        ) from None


def parse_text(value: str | None, name: str) -> str | None:
    """A free-text filter: any text a column can hold (no NUL, which PostgreSQL refuses)."""
    if value is not None and "\x00" in value:
        raise BadQuery(f"bad_{name}", f"{name} must not contain NUL characters")
    return value


def parse_choice(value: str | None, name: str, choices: Collection[str]) -> str | None:
    """A filter that must be one of ``choices``."""
    if value is not None and value not in choices:
        raise BadQuery(f"bad_{name}", f"{name} must be one of {', '.join(choices)}")
    return value


def parse_id(value: str, name: str) -> int:
    """A positive integer id from the path.

    Raises:
        BadQuery: not an integer.
        NotFound: an integer no row can have (zero, negative, past BIGINT).
    """
    try:
        number = int(value)
    except ValueError:
        raise BadQuery(f"bad_{name}", f"{name.replace('_', ' ')} must be an integer") from None
    if not 1 <= number <= MAX_ID:
        raise NotFound("not_found", f"no {name.removesuffix('_id')} {number}")
    return number


def encode_cursor(kind: str, key: tuple[Any, ...]) -> str:
    """An opaque cursor for the position ``key`` in the ``kind`` list."""
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    raw = orjson.dumps([kind, *values])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str | None, kind: str, shape: tuple[type, ...]) -> tuple[Any, ...] | None:
    """The position a cursor from :func:`encode_cursor` names; ``shape`` lists the types of
    its values (``datetime`` for a timestamp, ``int`` for an id, ``str``).

    Raises:
        BadQuery: not a cursor of this list.
    """
    if value is None:
        return None
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        if not isinstance(decoded, list) or len(decoded) != len(shape) + 1 or decoded[0] != kind:
            raise ValueError(value)
        return tuple(_typed(v, t) for v, t in zip(decoded[1:], shape, strict=True))
    except (ValueError, TypeError, OverflowError, binascii.Error):
        raise BadQuery("bad_cursor", "cursor is not one this list handed out") from None


def _typed(value: Any, kind: type) -> Any:
    if kind is datetime and isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(value)
        return parsed.astimezone(UTC)
    if kind is int and type(value) is int and 1 <= value <= MAX_ID:
        return value
    if kind is str and isinstance(value, str) and "\x00" not in value:
        return value
    raise ValueError(value)
