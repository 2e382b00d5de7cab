"""``Idempotency-Key``: a job-creating request sent again gets the job it created the first time.

Apiframe keeps a key for 24 hours. The same key with another body (or on another route) is a
client bug. The spec does not say what Apiframe answers and documents no 409 or 422 on these
routes, so the fake answers its one documented request error: 400 ``ValidationError`` keyed
``Idempotency-Key`` (the IETF draft on the header would say 422).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["KEY_MAX_LENGTH", "RETENTION", "IdempotencyStore", "fingerprint"]

KEY_MAX_LENGTH = 255
RETENTION = timedelta(hours=24)


def fingerprint(operation: str, body: bytes) -> str:
    """What makes two requests the same: the route and the body's bytes (as the IETF draft
    fingerprints a payload; a client replaying a request sends the same bytes)."""
    return hashlib.sha256(operation.encode() + b"\n" + body).hexdigest()


@dataclass(frozen=True, slots=True)
class _Entry:
    fingerprint: str
    job_id: str
    at: datetime


class IdempotencyStore:
    """The keys seen in the last 24 hours, each with the request it came with and its job."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def recall(self, key: str, now: datetime | None = None) -> tuple[str, str] | None:
        """(request fingerprint, job id) first sent with ``key``, unless over 24 hours ago."""
        now = now or datetime.now(UTC)
        entry = self._entries.get(key)
        if entry is None or now - entry.at >= RETENTION:
            self._entries.pop(key, None)
            return None
        return entry.fingerprint, entry.job_id

    def remember(self, key: str, request: str, job_id: str, now: datetime | None = None) -> None:
        """Keep ``key``: its request's fingerprint and the job it created."""
        self._entries[key] = _Entry(request, job_id, now or datetime.now(UTC))
