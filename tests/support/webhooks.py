"""Signed webhooks as Apiframe sends them: the test keys, the shipped sample bodies, headers."""

from __future__ import annotations

from pathlib import Path

from receiver import sign
from receiver.apiframe.signatures import Derivation

__all__ = ["API_KEY", "OTHER_KEY", "SAMPLES", "sample", "sample_names", "signed_headers"]

API_KEY = "afk_test_primary_0000000000000000000000000000"
OTHER_KEY = "afk_test_rotated_111111111111111111111111111"
SAMPLES = Path(__file__).resolve().parents[2] / "handlers" / "samples"


def sample(name: str) -> bytes:
    """The bytes of a shipped Apiframe sample body (``handlers/samples/<name>.json``)."""
    return (SAMPLES / f"{name}.json").read_bytes()


def sample_names() -> list[str]:
    """Every shipped sample body's name."""
    return sorted(p.stem for p in SAMPLES.glob("*.json"))


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
