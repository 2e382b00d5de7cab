"""``POST /webhooks/apiframe``: verify → classify → commit → answer, in that order.

Nothing is done in the request that does not have to be: the signature header is checked, the
body is read (bounded), its HMAC checked, it is parsed, and it is handed to the group committer.
The answer is sent only after the transaction holding the event has committed. The route is a
raw ASGI callable (the rest of the app is Starlette): a ``Request`` and a ``Response`` per
delivery cost ~15 % of the receiver's throughput, for nothing the route needs.

Until its HMAC matches, a request is anybody's, so what it may cost is bounded: no body is read
without a well-formed signature header; a body is at most ``max_body_bytes``; the unverified
bodies held at once are at most ``max_unverified_bytes`` (past it: 503 with ``Retry-After``,
before a byte is read); and a large body's HMACs are computed off the event loop.
(:mod:`receiver.server` bounds the time a request may take to arrive, and the connections.)
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import anyio
from starlette.types import Receive, Scope, Send

from receiver.apiframe.events import MAX_EVENT_NAME_LENGTH, parse_body
from receiver.apiframe.signatures import SignatureMatch, Verifier, parse_signature
from receiver.errors import (
    BodyTooLarge,
    ClientGone,
    RequestRejected,
    SignatureRejected,
    Unavailable,
)
from receiver.intake.charges import count_charges
from receiver.intake.group_commit import Committer
from receiver.intake.recorder import Arrival, DeliveryOutcome, Receipt
from receiver.logs import HotLine, get_logger
from receiver.metrics import Metrics
from receiver.responses import send_json, send_rejection

__all__ = ["WebhookEndpoint"]

_log = get_logger("framehook.webhook")
# The line every delivery logs, rendered without structlog's pipeline when logs are JSON.
_DELIVERY = HotLine("framehook.webhook", "delivery")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


# Request ids: a random per-process prefix and a counter; unique across replicas, and free
# (uuid4 costs a getrandom syscall per request on the hot path).
_ID_PREFIX = secrets.token_hex(6)
_ID_COUNTER = itertools.count(1)


class _Headers:
    """The request headers the route reads, found in one pass over the raw ASGI list (names
    arrive lower-cased; values are latin-1, as Starlette decodes them). A repeated header
    counts by its first value, as Starlette's ``headers.get`` does."""

    __slots__ = ("content_length", "event", "request_id", "signatures")

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self.request_id: bytes | None = None
        self.event: bytes | None = None
        self.content_length: bytes | None = None
        self.signatures: list[bytes] = []
        for name, value in raw:
            if name == b"x-webhook-signature":
                self.signatures.append(value)
            elif name == b"content-length":
                if self.content_length is None:
                    self.content_length = value
            elif name == b"x-request-id":
                if self.request_id is None:
                    self.request_id = value
            elif name == b"x-webhook-event" and self.event is None:
                self.event = value

    def request_id_or_new(self) -> str:
        # Keep a proxy's request id (so logs join up); make one otherwise.
        if self.request_id is not None:
            given = self.request_id.decode("latin-1")
            if _REQUEST_ID.match(given):
                return given
        return f"{_ID_PREFIX}{next(_ID_COUNTER):020x}"

    def header_event(self) -> str | None:
        if self.event is None:
            return None
        return self.event.decode("latin-1").strip()[:MAX_EVENT_NAME_LENGTH] or None

    def signature(self) -> str | None:
        if len(self.signatures) > 1:
            # Which one would Apiframe mean? Refuse to guess.
            raise SignatureRejected("signature_malformed", "several X-Webhook-Signature headers")
        return self.signatures[0].decode("latin-1") if self.signatures else None


# Bytes of HMAC input (body size times candidate keys) computed on the event loop; more goes to
# a thread. A real body (a few KB, one key) is far below: 256 KiB is ~0.2 ms of SHA-256.
_INLINE_HMAC_BYTES = 256 * 1024
# Threads hashing large unverified bodies at once: a flood of them queues here, not in the
# shared thread pool the intake and readiness use.
_HMAC_THREADS = 2


# A real webhook body is a few KB. Bodies larger than this may hold only part of the unverified
# bytes, so a flood of large bodies leaves room for real webhooks to keep coming in.
_SMALL_BODY_BYTES = 16 * 1024
_LARGE_SHARE = 0.75


class _Unverified:
    """Bytes of unverified bodies this process holds (declared or read), against a cap."""

    __slots__ = ("held", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int, total: int) -> None:
        """Hold ``size`` more bytes for a body now ``total`` bytes long.

        Raises:
            Unavailable: the cap would be passed (for a large body: its share of the cap); the
                client should come back.
        """
        cap = self.limit if total <= _SMALL_BODY_BYTES else self.limit * _LARGE_SHARE
        if self.held + size > cap:
            raise Unavailable(
                "overloaded", "too many unverified webhook bodies in flight", retry_after=1
            )
        self.held += size


class _BodyReader:
    """One request's body, read within the limits; ``release`` when it is verified or refused."""

    __slots__ = ("_budget", "_held", "_limit")

    def __init__(self, budget: _Unverified, limit: int) -> None:
        self._budget = budget
        self._limit = limit
        self._held = 0

    def _too_large(self) -> BodyTooLarge:
        return BodyTooLarge("body_too_large", f"body is over the {self._limit}-byte limit")

    async def read(self, receive: Receive, declared: bytes | None) -> bytes:
        """The whole body (``declared``: the ``Content-Length`` header, if any).

        Raises:
            BodyTooLarge: over the limit, declared or counted.
            Unavailable: the unverified-bytes cap is reached (before reading, if declared).
            ClientGone: the client left, or was cut off, before the body arrived.
        """
        if declared is not None and declared.isdigit():
            if len(declared) > 12 or int(declared) > self._limit:
                raise self._too_large()
            self._hold(int(declared))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "http.request":
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > self._limit:
                        raise self._too_large()
                    if size > self._held:  # chunked, or more than declared
                        self._hold(size - self._held)
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
            elif kind == "http.disconnect":
                raise ClientGone("client_gone", "the client left before its body arrived")

    def _hold(self, size: int) -> None:
        self._budget.take(size, self._held + size)
        self._held += size

    def release(self) -> None:
        """Give the held bytes back to the cap."""
        self._budget.held -= self._held
        self._held = 0


class WebhookEndpoint:
    """The Apiframe webhook route.

    Args:
        verifier: checks ``X-Webhook-Signature``.
        committer: records arrivals durably (started by the app's lifespan).
        max_body_bytes: larger bodies get 413.
        max_unverified_bytes: unverified bodies held at once, across requests; past it 503.
        metrics: counts deliveries, 401s, credits and the time to answer (nothing when
            ``None``).
        lora_id_fields: more keys holding a LoRA id (``FRAMEHOOK_LORA_ID_FIELDS``).
    """

    def __init__(
        self,
        verifier: Verifier,
        committer: Committer[Arrival, Receipt],
        max_body_bytes: int,
        metrics: Metrics | None = None,
        lora_id_fields: Sequence[str] = (),
        max_unverified_bytes: int = 16 * 1_048_576,
    ) -> None:
        self._verifier = verifier
        self._committer = committer
        self._limit = max_body_bytes
        self._unverified = _Unverified(max_unverified_bytes)
        self._hmac_threads = anyio.CapacityLimiter(_HMAC_THREADS)
        self._metrics = metrics
        self._lora_id_fields = tuple(lora_id_fields)

    @property
    def unverified_bytes(self) -> int:
        """Bytes of unverified bodies held now (declared or read)."""
        return self._unverified.held

    async def _verified_body(
        self, headers: _Headers, receive: Receive
    ) -> tuple[bytes, SignatureMatch]:
        reader = _BodyReader(self._unverified, self._limit)
        try:
            try:
                # The header first: without a usable one, the body is never read.
                expected = parse_signature(headers.signature())
                body = await reader.read(receive, headers.content_length)
            except RequestRejected as exc:
                exc.unread_body = True
                raise
            if len(body) * self._verifier.candidates <= _INLINE_HMAC_BYTES:
                return body, self._verifier.match(expected, body)
            match = await anyio.to_thread.run_sync(
                self._verifier.match, expected, body, limiter=self._hmac_threads
            )
            return body, match
        finally:
            reader.release()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one delivery (an ASGI app: Starlette's routing sends only ``POST`` here);
        every path logs exactly one line."""
        started = time.perf_counter()
        headers = _Headers(scope["headers"])
        request_id = headers.request_id_or_new()
        client = scope.get("client")
        remote = client[0] if client else None
        header_event = headers.header_event()
        try:
            body, match = await self._verified_body(headers, receive)
            parsed = parse_body(body, self._lora_id_fields)
            arrival = Arrival(
                parsed=parsed,
                body=body,
                received_at=datetime.now(UTC),
                request_id=request_id,
                header_event=header_event,
                match=match,
                remote_addr=remote,
            )
            receipt = await self._committer.submit(arrival)
        except RequestRejected as exc:
            _log.warning(
                "delivery rejected",
                request_id=request_id,
                remote=remote,
                status=exc.status_code,
                reason=exc.reason,
                header_event=header_event,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
            if self._metrics is not None:
                if isinstance(exc, SignatureRejected):
                    self._metrics.signature_failure(exc.reason)
                self._metrics.ack_seconds.observe(time.perf_counter() - started)
            await send_rejection(send, exc, request_id)
            return
        status = 400 if parsed.problem is not None else 202 if receipt.outcome.is_new else 200
        # One line per delivery; anything unusual raises its level, not the line count.
        unusual = (
            arrival.event_mismatch
            or parsed.problem is not None
            or receipt.outcome == DeliveryOutcome.CONFLICT
            or any(flag != "event_inferred" for flag in parsed.flags)
        )
        (_DELIVERY.warning if unusual else _DELIVERY.info)(
            request_id=request_id,
            remote=remote,
            status=status,
            job_id=receipt.job_id,
            lora_id=receipt.lora_id,
            webhook_event=parsed.event_name,
            header_event=arrival.header_event,
            event_mismatch=arrival.event_mismatch,
            flags=",".join(parsed.flags) or None,
            outcome=receipt.outcome.value,
            reason=None if parsed.problem is None else parsed.problem.reason,
            delivery_id=receipt.delivery_id,
            tasks=receipt.tasks,
            key_index=match.key_index,
            derivation=match.derivation.value,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        if self._metrics is not None:
            self._metrics.delivery(parsed.event_name, receipt.outcome.value)
            count_charges(self._metrics, [(arrival, receipt)])
            self._metrics.ack_seconds.observe(time.perf_counter() - started)
        if parsed.problem is not None:
            await send_rejection(send, parsed.problem, request_id, deliveryId=receipt.delivery_id)
            return
        answer = {
            "ok": True,
            "outcome": receipt.outcome.value,
            "deliveryId": receipt.delivery_id,
            "jobId": receipt.job_id,
            "requestId": request_id,
        }
        if receipt.lora_id is not None:
            answer["loraId"] = receipt.lora_id
        await send_json(send, status, answer, request_id)
