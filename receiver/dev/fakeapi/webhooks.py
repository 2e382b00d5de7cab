"""Sending webhooks the way Apiframe does: signed, POSTed, retried on 5xx and network errors.

The signature is computed here from Apiframe's description (HMAC-SHA256 of the raw body, keyed
by the raw SHA-256 digest of the API key), not with framehook's own ``sign``, so that tests
checking framehook's verifier against the fake check two independent readings of the spec.

A sealed fake sends through :class:`SealedTransport`, which refuses a public address at send
time (``receiver.dev.fakeapi.sealing`` says what is public), on top of the check made when the
job was created: a name may resolve elsewhere by the time its webhook leaves.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from receiver.dev.fakeapi.bodies import iso_time
from receiver.dev.fakeapi.sealing import public_address

__all__ = [
    "Delivery",
    "Outgoing",
    "PublicAddressRefused",
    "SealedTransport",
    "deliver",
    "dropped",
    "signature",
]


class PublicAddressRefused(httpx.TransportError):
    """A sealed fake did not send a webhook: its URL's host is (or resolves to) a public
    address. Never retried: the answer would not change."""


class SealedTransport(httpx.AsyncBaseTransport):
    """Sends through ``inner`` (the network by default) only to loopback and private hosts."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        # trust_env=False: a proxy from the environment would send the webhook elsewhere.
        self._inner = inner or httpx.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            address = await public_address(str(request.url))
        except ValueError as exc:
            raise PublicAddressRefused(f"not sent: the URL {exc}", request=request) from None
        if address is not None:
            message = f"not sent: {request.url.host} is the public address {address} (sealed)"
            raise PublicAddressRefused(message, request=request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def signature(body: bytes, api_key: str) -> str:
    """The ``X-Webhook-Signature`` Apiframe sends with ``body`` for ``api_key``."""
    key = hashlib.sha256(api_key.encode("utf-8")).digest()
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One webhook to send: the job's ``sequence``-th event, and how chaos treats it."""

    job_id: str
    sequence: int
    event: str
    progress: int | None
    url: str
    body: bytes
    duplicate: bool = False
    delayed: bool = False
    reordered: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one webhook (the fake's record, in the order deliveries ended).

    Attributes:
        job_id: the job.
        event: ``progress``, ``completed`` or ``failed``.
        progress: the body's percentage.
        sequence: the event's position among the job's events (0 first), so a reordered or
            delayed delivery shows as a sequence lower than one recorded before it.
        status_code: the receiver's last answer; ``None`` if dropped or never answered.
        attempts: requests made (retries included); 0 when dropped.
        duplicate: this is the second sending of an event already sent.
        dropped: never sent, on purpose.
        delayed: sent late, on purpose.
        reordered: held back and sent out of order, on purpose.
        rotated: signed with the rotated key.
        error: the last network error, if the last attempt got no answer.
        finished_at: when the delivery ended (ISO 8601).
    """

    job_id: str
    event: str
    progress: int | None
    sequence: int
    status_code: int | None
    attempts: int
    duplicate: bool
    dropped: bool
    delayed: bool
    reordered: bool
    rotated: bool
    error: str | None
    finished_at: str

    @property
    def delivered(self) -> bool:
        """The receiver answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300

    def as_json(self) -> dict[str, Any]:
        """This record as JSON-ready values."""
        return {
            "jobId": self.job_id,
            "event": self.event,
            "progress": self.progress,
            "sequence": self.sequence,
            "statusCode": self.status_code,
            "attempts": self.attempts,
            "duplicate": self.duplicate,
            "dropped": self.dropped,
            "delayed": self.delayed,
            "reordered": self.reordered,
            "rotated": self.rotated,
            "error": self.error,
            "finishedAt": self.finished_at,
        }


def _record(
    outgoing: Outgoing,
    *,
    status_code: int | None = None,
    attempts: int = 0,
    dropped: bool = False,
    rotated: bool = False,
    error: str | None = None,
) -> Delivery:
    return Delivery(
        job_id=outgoing.job_id,
        event=outgoing.event,
        progress=outgoing.progress,
        sequence=outgoing.sequence,
        status_code=status_code,
        attempts=attempts,
        duplicate=outgoing.duplicate,
        dropped=dropped,
        delayed=outgoing.delayed,
        reordered=outgoing.reordered,
        rotated=rotated,
        error=error,
        finished_at=iso_time(datetime.now(UTC)),
    )


def dropped(outgoing: Outgoing) -> Delivery:
    """The record of a webhook dropped on purpose."""
    return _record(outgoing, dropped=True)


async def deliver(
    client: httpx.AsyncClient,
    outgoing: Outgoing,
    api_key: str,
    *,
    rotated: bool = False,
    retries: int = 3,
    backoff_seconds: float = 0.5,
    timeout_seconds: float = 10.0,
) -> Delivery:
    """POST ``outgoing`` signed with ``api_key``, again after a 5xx or a network error.

    Args:
        client: the HTTP client to send with.
        outgoing: the webhook.
        api_key: the key whose digest signs it.
        rotated: whether ``api_key`` is the rotated key (recorded, nothing else).
        retries: how many times to send again.
        backoff_seconds: the wait before the first retry, doubled for each next one.
        timeout_seconds: how long each attempt waits for its answer.

    Returns:
        The record of what happened; never raises for a failed delivery.
    """
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Apiframe-Webhooks/2.0 (framehook fake)",
        "X-Webhook-Event": outgoing.event,
        "X-Webhook-Signature": signature(outgoing.body, api_key),
    }
    status: int | None = None
    error: str | None = None
    attempts = 0
    for attempt in range(retries + 1):
        if attempt:
            await asyncio.sleep(backoff_seconds * 2 ** (attempt - 1))
        attempts += 1
        try:
            response = await client.post(
                outgoing.url, content=outgoing.body, headers=headers, timeout=timeout_seconds
            )
        except PublicAddressRefused as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
            break
        except httpx.TransportError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
            continue
        status, error = response.status_code, None
        if status < 500:
            break
    return _record(outgoing, status_code=status, attempts=attempts, rotated=rotated, error=error)
