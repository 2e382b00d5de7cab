"""The built-in ``forward`` handler: hands each event to the customer's app, signed.

Apps in any language get what framehook made of Apiframe's webhooks (verified, deduplicated,
in order, with the files captured into the customer's storage) as one Standard Webhooks POST
per event, which the ``standardwebhooks`` packages verify::

    FRAMEHOOK_HANDLERS=download,forward
    FRAMEHOOK_FORWARD_URL=https://app.example.com/webhooks/framehook
    FRAMEHOOK_FORWARD_SECRET=whsec_…

For a completed job the handler runs after the job's ``download`` task has finished (its
``after``), so the event lists the files as stored, each with a link the app can fetch it from
(a presigned URL, or framehook's signed content link), and the files that could not be stored.
The ``webhook-id`` is the same on every attempt and replay of a task (:func:`message_id`); a
duplicate Apiframe webhook makes no task, so it forwards nothing. Delivery rules:
``handlers.forward._outcome``.
"""

from __future__ import annotations

import asyncio

from handlers._context import HandlerContext
from handlers._event import JobEvent, LoraEvent
from handlers._signals import RetryLater
from handlers.forward._body import LinkedAsset, encode, event_type, job_data, lora_data
from handlers.forward._delivery import EndpointAnswer, deliver, tls_context
from handlers.forward._options import (
    DEFAULT_EVENTS,
    EVENTS,
    ForwardOptions,
    ForwardSettingsError,
    load_options,
)
from handlers.forward._outcome import MAX_RETRY_AFTER, NotDelivered, raise_for
from handlers.forward._samples import ping, sample
from handlers.forward._signing import Signer, message_id
from storage import StorageError

__all__ = [
    "DEFAULT_EVENTS",
    "EVENTS",
    "MAX_RETRY_AFTER",
    "EndpointAnswer",
    "ForwardHandler",
    "ForwardOptions",
    "ForwardSettingsError",
    "NotDelivered",
    "Signer",
    "deliver",
    "event_type",
    "load_options",
    "message_id",
    "ping",
    "sample",
]

# Beyond the endpoints' own bound: reading the asset log and making the links.
_PREPARE_SECONDS = 30.0


class ForwardHandler:
    """POSTs each event it subscribes to, signed, to every ``FRAMEHOOK_FORWARD_URL``.

    Args:
        options: where and how; by default read from ``FRAMEHOOK_FORWARD_*``.

    Raises:
        ForwardSettingsError: (reading the environment) no endpoint, no secret, or a wrong
            one: the message names each variable.
    """

    name = "forward"
    after = frozenset({"download"})
    """A job's forward waits for its download task (stored, or dead), so the links work."""

    def __init__(self, options: ForwardOptions | None = None) -> None:
        self.options = options if options is not None else load_options()
        self.events = frozenset(self.options.events)
        # The worker cuts a run off after ``timeout``: the endpoints answer at once, in parallel.
        self.timeout = self.options.timeout_seconds + _PREPARE_SECONDS
        self._signer = Signer(self.options.secret_value)
        self._tls = tls_context()

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        data = lora_data(event) if isinstance(event, LoraEvent) else await _job(event, ctx)
        body = encode(event_type(event.event), event.received_at, data)
        msg_id = message_id(ctx.task_id, event.job_id, event.event)
        answers = await deliver(
            self.options.url,
            body,
            self._signer.headers(msg_id, body),
            timeout_seconds=self.options.timeout_seconds,
            tls=self._tls,
        )
        for answer in answers:
            log = ctx.log.info if answer.ok else ctx.log.warning
            log(
                "event forwarded" if answer.ok else "event not taken",
                url=answer.url,
                answer=answer.detail,
                webhook_id=msg_id,
                ms=round(answer.seconds * 1000, 1),
            )
        raise_for(answers)


async def _job(event: JobEvent, ctx: HandlerContext) -> dict[str, object]:
    """The job's data, with its stored files and their links (a completed job's only: the
    others have none)."""
    if event.event != "completed":
        return job_data(event, [])
    assets = await ctx.assets.assets(event.job_id)
    try:
        links = await asyncio.gather(*(ctx.links.link(asset) for asset in assets))
    except StorageError as exc:
        # The store could not sign: without links the event is not worth sending yet.
        raise RetryLater(None, f"making download links failed: {exc}") from exc
    stored = [LinkedAsset(a, link) for a, link in zip(assets, links, strict=True)]
    return job_data(event, stored)
