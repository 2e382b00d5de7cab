"""Signed webhooks as Apiframe sends them: the test keys, the shipped sample bodies, bodies
built field by field, headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from receiver import sign
from receiver.apiframe.signatures import Derivation

__all__ = [
    "API_KEY",
    "OTHER_KEY",
    "SAMPLES",
    "STATUSES",
    "sample",
    "sample_names",
    "signed_headers",
    "webhook_body",
]

API_KEY = "afk_test_primary_0000000000000000000000000000"
OTHER_KEY = "afk_test_rotated_111111111111111111111111111"
SAMPLES = Path(__file__).resolve().parents[2] / "handlers" / "samples"
# The job status Apiframe sends with each event.
STATUSES = {"progress": "PROCESSING", "completed": "COMPLETED", "failed": "FAILED"}


def sample(name: str) -> bytes:
    """The bytes of a shipped Apiframe sample body (``handlers/samples/<name>.json``)."""
    return (SAMPLES / f"{name}.json").read_bytes()


def sample_names() -> list[str]:
    """Every shipped sample body's name."""
    return sorted(p.stem for p in SAMPLES.glob("*.json"))


def webhook_body(event: str, **fields: Any) -> dict[str, Any]:
    """A job webhook body: ``event``, the status Apiframe sends with it, then ``fields`` under
    their wire names (``jobId=``, ``creditCost=``; ``status=`` overrides). A field given as
    ``None`` is left out of the body."""
    body = {"event": event, "status": STATUSES[event], **fields}
    return {name: value for name, value in body.items() if value is not None}


def signed_headers(
    body: bytes,
    key: str = API_KEY,
    event: str | None = None,
    derivation: Derivation = Derivation.DIGEST,
) -> dict[str, str]:
    """Headers Apiframe would send with ``body``."""
    headers = {
        "X-Webhook-Signature": sign(body, key, derivation),
        "Content-Type": "application/json",
    }
    if event is not None:
        headers["X-Webhook-Event"] = event
    return headers
