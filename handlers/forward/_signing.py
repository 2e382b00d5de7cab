"""Standard Webhooks signatures: the ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` headers an app verifies with the ``standardwebhooks`` packages.

The signature is the ``standardwebhooks`` library's own (``v1,`` + base64 HMAC-SHA256 of
``id.timestamp.body``), so whatever its verifiers accept, in any language, this sends. The
timestamp is the moment of sending, signed afresh on every attempt: verifiers refuse one more
than five minutes off, so a retry an hour later must not carry the first attempt's.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from standardwebhooks import Webhook

__all__ = ["Signer", "message_id"]


def message_id(task_id: int, job_id: str, event: str) -> str:
    """The ``webhook-id`` of the event a task forwards: the same on every attempt and replay
    of the task, so the app can drop what it already handled.

    The task id alone would repeat after a database is created anew (ids restart at 1) and
    the app would drop new events as old: a digest of the job and the event goes with it.
    """
    digest = hashlib.sha256(f"{job_id}\n{event}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"msg_framehook_{task_id}_{digest[:12]}"


class Signer:
    """Signs bodies with one Standard Webhooks secret (``whsec_…``)."""

    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    def headers(self, msg_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
        """The headers of one POST of ``body`` as message ``msg_id``, signed at ``at`` (now)."""
        when = (at or datetime.now(UTC)).replace(microsecond=0)
        return {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": self._webhook.sign(msg_id, when, body.decode()),
        }
