"""Test a handler without a database, a network or framehook running.

Build an event from one of the realistic Apiframe bodies framehook ships (or your own), run the
handler with a context over in-memory storage and an ``httpx.MockTransport``, then look at
what it stored::

    from handlers.testing import run, sample_event
    from storage import MemoryStorage

    def test_writes_a_manifest() -> None:
        storage = MemoryStorage()
        run(ManifestHandler(), sample_event("completed-midjourney"), storage=storage)
        assert "6f1c2a9e-3b7d-4e21-9a55-0c8d2f4b7a10/manifest.json" in storage.objects

Handlers that hand out links to stored files (``context.links``) get ``FakeLinks``: every asset
has a link under ``https://assets.framehook.invalid/`` (a name that never resolves); pass
``links=NoLinks()`` to see what the handler does when framehook cannot make links.

``lora_event()`` builds a LoRA training event (``lora.ready``, ``lora.failed``, ...) the same
way, and ``sample_event(name, test=True)`` a test event, as ``framehook send-test`` sends
(``event.test`` is true). Control signals (``RetryLater``, ``PermanentFailure``) and errors
reach the test unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import structlog

from handlers._assets import Asset, AssetLog
from handlers._context import HandlerContext
from handlers._event import (
    LORA_ENDED,
    TEST_MARKER,
    JobEvent,
    JobSnapshot,
    LoraEvent,
    LoraSnapshot,
)
from handlers._handler import Handler, wants
from handlers._links import AssetLink, AssetLinker
from storage import MemoryStorage, Storage

__all__ = [
    "FakeLinks",
    "MemoryAssets",
    "event_from_payload",
    "lora_event",
    "make_context",
    "run",
    "run_async",
    "sample_event",
    "sample_names",
    "sample_payload",
    "would_run",
]


def sample_names() -> list[str]:
    """The names of the shipped Apiframe bodies (``completed-midjourney``, ...)."""
    return sorted(
        p.name.removesuffix(".json")
        for p in files("handlers.samples").iterdir()
        if p.name.endswith(".json")
    )


def sample_payload(name: str) -> dict[str, Any]:
    """A shipped Apiframe webhook body, decoded.

    Raises:
        ValueError: no sample of that name (the message lists them).
    """
    resource = files("handlers.samples").joinpath(f"{name}.json")
    if not resource.is_file():
        raise ValueError(f"no sample {name!r}; samples: {', '.join(sample_names())}")
    data: dict[str, Any] = orjson.loads(resource.read_bytes())
    return data


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        return None


def event_from_payload(
    payload: Mapping[str, Any],
    *,
    delivery_id: int = 1,
    received_at: datetime | None = None,
    source: str = "webhook",
) -> JobEvent:
    """The event framehook would hand a handler for this body, with the job as it would
    stand after it (a finished job reports progress 100). A LoRA body (a ``loraId``, no
    ``jobId``, as in the ``lora-ready`` sample) gives a ``LoraEvent``."""
    lora_id = payload.get("loraId")
    if payload.get("jobId") is None and isinstance(lora_id, str):
        status = str(payload.get("status") or "UNKNOWN").upper()
        return lora_event(
            status,
            lora_id=lora_id,
            name=payload.get("name"),
            trigger_word=payload.get("triggerWord"),
            error=payload.get("error"),
            payload=payload,
            delivery_id=delivery_id,
            received_at=received_at,
            source=source,
        )
    name = str(payload.get("event"))
    terminal = {"completed": "COMPLETED", "failed": "FAILED"}
    progress = payload.get("progress")
    job = JobSnapshot(
        id=str(payload.get("jobId")),
        status=terminal.get(name, "PROCESSING"),
        progress=100
        if name in terminal
        else int(progress)
        if isinstance(progress, int | float)
        else 0,
        model=payload.get("model"),
        result=payload.get("result") if name == "completed" else None,
        error=payload.get("error") if name == "failed" else None,
        credit_cost=payload.get("creditCost"),
        completed_at=_time(payload.get("completedAt")),
    )
    return JobEvent(
        event=name,
        job_id=job.id,
        payload=dict(payload),
        delivery_id=delivery_id,
        received_at=received_at or datetime.now(UTC),
        source=source,
        job=job,
    )


def lora_event(
    status: str = "READY",
    *,
    lora_id: str = "lora_8a4d2c1e9b7f4a3d",
    name: str | None = "Alex - studio portraits",
    trigger_word: str | None = None,
    error: str | None = None,
    payload: Mapping[str, Any] | None = None,
    delivery_id: int = 1,
    received_at: datetime | None = None,
    source: str = "webhook",
) -> LoraEvent:
    """The event framehook would hand a handler when a LoRA reaches ``status`` (``READY``:
    ``lora.ready``; ``FAILED``: ``lora.failed``, ...).

    Args:
        status: the LoRA's status (``PENDING`` … ``READY``, ``FAILED``, ``ARCHIVED``).
        lora_id: its id; ``name``, ``trigger_word`` (``TOKPN`` when ``READY`` and not given)
            and ``error`` (a failure's reason) as the LoRA would carry them.
        payload: the webhook body; by default one in the shape framehook's fake Apiframe sends.
    """
    status = status.upper()
    ended = status in LORA_ENDED
    if trigger_word is None and status == "READY":
        trigger_word = "TOKPN"
    if error is None and status == "FAILED":
        error = "Training failed: not enough usable face images"
    moment = received_at or datetime.now(UTC)
    lora = LoraSnapshot(
        id=lora_id,
        status=status,
        name=name,
        trigger_word=trigger_word,
        error=error,
        created_at=moment,
        completed_at=moment if ended else None,
    )
    body = (
        dict(payload)
        if payload is not None
        else {
            "event": "failed" if status == "FAILED" else "completed",
            "loraId": lora_id,
            "status": status,
            "name": name,
            "triggerWord": trigger_word,
            "error": error,
        }
    )
    return LoraEvent.from_lora(
        lora,
        event=f"lora.{status.lower()}",
        payload=body,
        delivery_id=delivery_id,
        received_at=moment,
        source=source,
    )


def sample_event(name: str, *, test: bool = False, **overrides: Any) -> JobEvent:
    """The event for a shipped sample body; ``overrides`` replace top-level body fields.

    ``test=True`` marks the body as ``framehook send-test`` does (``"framehookTest": true``),
    so ``event.test`` is true: check that your handler skips what only real jobs deserve.
    """
    marker = {TEST_MARKER: True} if test else {}
    return event_from_payload({**sample_payload(name), **overrides, **marker})


class MemoryAssets:
    """An ``AssetLog`` in memory, as framehook's database would keep it: the first record of a
    (job, position) wins. Look at ``records`` in tests."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, int], Asset] = {}

    async def assets(self, job_id: str) -> list[Asset]:
        """The assets recorded for ``job_id``, by position."""
        return [a for (j, _), a in sorted(self.records.items()) if j == job_id]

    async def record(self, asset: Asset) -> Asset:
        """Record ``asset`` unless its position is taken; return the kept one."""
        return self.records.setdefault((asset.job_id, asset.position), asset)

    async def replace(self, stale: Asset, fresh: Asset) -> Asset:
        """Put ``fresh`` in ``stale``'s place unless another record took it first (the
        ``AssetRepair`` contract, as the database keeps it); return the kept one."""
        place = (stale.job_id, stale.position)
        current = self.records.get(place)
        if current is not None and current != stale:
            return current
        self.records[place] = fresh
        return fresh


class FakeLinks:
    """An ``AssetLinker`` with a link for every asset: ``{base}/{key}``, valid for
    ``valid_for`` from when it is made (a worker's are presigned or framehook's own)."""

    def __init__(
        self,
        base: str = "https://assets.framehook.invalid",
        valid_for: timedelta = timedelta(days=7),
    ) -> None:
        self.base = base.rstrip("/")
        self.valid_for = valid_for

    async def link(self, asset: Asset) -> AssetLink | None:
        """The asset's link under ``base``."""
        expires_at = datetime.now(UTC).replace(microsecond=0) + self.valid_for
        return AssetLink(url=f"{self.base}/{quote(asset.key)}", expires_at=expires_at)


def _refuse_network(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(
        f"no network in handlers.testing (tried {request.url})", request=request
    )


def make_context(
    *,
    storage: Storage | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    assets: AssetLog | None = None,
    attempt: int = 1,
    task_id: int = 1,
    links: AssetLinker | None = None,
) -> HandlerContext:
    """A context like the worker's: in-memory storage and asset log, ``FakeLinks`` (unless
    ``links`` is given), and an HTTP client that only talks to ``transport`` (by default, any
    request fails as a connection error). Close ``context.http`` when done, or use
    ``run``/``run_async`` which do."""
    client = httpx.AsyncClient(transport=transport or httpx.MockTransport(_refuse_network))
    log = structlog.get_logger("framehook.testing").bind(task_id=task_id, attempt=attempt)
    return HandlerContext(
        task_id=task_id,
        attempt=attempt,
        log=log,
        storage=storage if storage is not None else MemoryStorage("testing"),
        http=client,
        assets=assets if assets is not None else MemoryAssets(),
        links=links if links is not None else FakeLinks(),
    )


def would_run(handler: Handler, event: JobEvent) -> bool:
    """Whether framehook would call ``handler`` for ``event`` (its events and, for a job's
    events, its models): ``handlers.wants``, the rule framehook's intake applies."""
    models = getattr(handler, "models", None)
    return wants(handler.events, event.event, models=models, model=event.model)


async def run_async(
    handler: Handler,
    event: JobEvent,
    *,
    storage: Storage | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    assets: AssetLog | None = None,
    attempt: int = 1,
    links: AssetLinker | None = None,
) -> HandlerContext:
    """Run ``handler`` once on ``event`` as a worker would; return the context it used.

    Raises:
        ValueError: framehook would never call this handler for this event.
        RetryLater, PermanentFailure, or whatever the handler raises.
    """
    if not would_run(handler, event):
        raise ValueError(
            f"framehook would not run handler {handler.name!r} for a {event.event!r} event"
        )
    context = make_context(
        storage=storage, transport=transport, assets=assets, attempt=attempt, links=links
    )
    try:
        await handler(event, context)
    finally:
        await context.http.aclose()
    return context


def run(
    handler: Handler,
    event: JobEvent,
    *,
    storage: Storage | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    assets: AssetLog | None = None,
    attempt: int = 1,
    links: AssetLinker | None = None,
) -> HandlerContext:
    """``run_async`` for synchronous tests."""
    return asyncio.run(
        run_async(
            handler,
            event,
            storage=storage,
            transport=transport,
            assets=assets,
            attempt=attempt,
            links=links,
        )
    )
