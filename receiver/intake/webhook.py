"""``POST /webhooks/apiframe``: verify → classify → commit → answer, in that order.

Nothing is done in the request that does not have to be: the body is read (bounded), its
signature checked, it is parsed, and it is handed to the group committer. The answer is sent
only after the transaction holding the event has committed.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from receiver.apiframe.events import MAX_EVENT_NAME_LENGTH, parse_body
from receiver.apiframe.signatures import Verifier
from receiver.errors import BodyTooLarge, RequestRejected, SignatureRejected
from receiver.intake.charges import count_charges
from receiver.intake.group_commit import Committer
from receiver.intake.recorder import Arrival, DeliveryOutcome, Receipt
from receiver.logs import get_logger
from receiver.metrics import Metrics
from receiver.responses import json_response, rejection

__all__ = ["WebhookEndpoint"]

_log = get_logger("framehook.webhook")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


# Request ids: a random per-process prefix and a counter; unique across replicas, and free
# (uuid4 costs a getrandom syscall per request on the hot path).
_ID_PREFIX = secrets.token_hex(6)
_ID_COUNTER = itertools.count(1)


def _request_id(request: Request) -> str:
    # Keep a proxy's request id (so logs join up); make one otherwise.
    given = request.headers.get("x-request-id")
    if given is not None and _REQUEST_ID.match(given):
        return given
    return f"{_ID_PREFIX}{next(_ID_COUNTER):020x}"


def _signature_header(request: Request) -> str | None:
    values = request.headers.getlist("x-webhook-signature")
    if len(values) > 1:
        # Which one would Apiframe mean? Refuse to guess.
        raise SignatureRejected("signature_malformed", "several X-Webhook-Signature headers")
    return values[0] if values else None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge("body_too_large", f"body is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge("body_too_large", f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


class WebhookEndpoint:
    """The Apiframe webhook route.

    Args:
        verifier: checks ``X-Webhook-Signature``.
        committer: records arrivals durably (started by the app's lifespan).
        max_body_bytes: larger bodies get 413.
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
    ) -> None:
        self._verifier = verifier
        self._committer = committer
        self._limit = max_body_bytes
        self._metrics = metrics
        self._lora_id_fields = tuple(lora_id_fields)

    async def handle(self, request: Request) -> Response:
        """Handle one delivery; every path logs exactly one line."""
        started = time.perf_counter()
        request_id = _request_id(request)
        remote = request.client.host if request.client else None
        header_event = request.headers.get("x-webhook-event")
        if header_event is not None:
            header_event = header_event.strip()[:MAX_EVENT_NAME_LENGTH] or None
        log = _log.bind(request_id=request_id, remote=remote)
        try:
            body = await _read_body(request, self._limit)
            match = self._verifier.verify(_signature_header(request), body)
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
            log.warning(
                "delivery rejected",
                status=exc.status_code,
                reason=exc.reason,
                header_event=header_event,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
            rejected = rejection(exc, request_id)
            if self._metrics is not None:
                if isinstance(exc, SignatureRejected):
                    self._metrics.signature_failure(exc.reason)
                self._metrics.ack_seconds.observe(time.perf_counter() - started)
            return rejected
        status = 400 if parsed.problem is not None else 202 if receipt.outcome.is_new else 200
        # One line per delivery; anything unusual raises its level, not the line count.
        unusual = (
            arrival.event_mismatch
            or parsed.problem is not None
            or receipt.outcome == DeliveryOutcome.CONFLICT
            or any(flag != "event_inferred" for flag in parsed.flags)
        )
        (log.warning if unusual else log.info)(
            "delivery",
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
        if parsed.problem is not None:
            response = rejection(parsed.problem, request_id, deliveryId=receipt.delivery_id)
        else:
            answer = {
                "ok": True,
                "outcome": receipt.outcome.value,
                "deliveryId": receipt.delivery_id,
                "jobId": receipt.job_id,
                "requestId": request_id,
            }
            if receipt.lora_id is not None:
                answer["loraId"] = receipt.lora_id
            response = json_response(status, answer, request_id)
        if self._metrics is not None:
            self._metrics.delivery(parsed.event_name, receipt.outcome.value)
            count_charges(self._metrics, [(arrival, receipt)])
            self._metrics.ack_seconds.observe(time.perf_counter() - started)
        return response
