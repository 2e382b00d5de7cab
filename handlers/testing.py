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

Control signals (``RetryLater``, ``PermanentFailure``) and errors reach the test unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import httpx
import orjson
import structlog

from handlers._assets import Asset, AssetLog
from handlers._context import HandlerContext
from handlers._event import JobEvent, JobSnapshot
from handlers._handler import Handler
from storage import MemoryStorage, Storage

__all__ = [
    "MemoryAssets",
    "event_from_payload",
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
    stand after it (a finished job reports progress 100)."""
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


def sample_event(name: str, **overrides: Any) -> JobEvent:
    """The event for a shipped sample body; ``overrides`` replace top-level body fields."""
    return event_from_payload({**sample_payload(name), **overrides})


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
) -> HandlerContext:
    """A context like the worker's: in-memory storage and asset log, and an HTTP client that
    only talks to ``transport`` (by default, any request fails as a connection error). Close
    ``context.http`` when done, or use ``run``/``run_async`` which do."""
    client = httpx.AsyncClient(transport=transport or httpx.MockTransport(_refuse_network))
    log = structlog.get_logger("framehook.testing").bind(task_id=task_id, attempt=attempt)
    return HandlerContext(
        task_id=task_id,
        attempt=attempt,
        log=log,
        storage=storage if storage is not None else MemoryStorage("testing"),
        http=client,
        assets=assets if assets is not None else MemoryAssets(),
    )


def would_run(handler: Handler, event: JobEvent) -> bool:
    """Whether framehook would call ``handler`` for ``event`` (its events and models)."""
    models = getattr(handler, "models", None)
    return event.event in handler.events and (models is None or event.model in models)


async def run_async(
    handler: Handler,
    event: JobEvent,
    *,
    storage: Storage | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    assets: AssetLog | None = None,
    attempt: int = 1,
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
    context = make_context(storage=storage, transport=transport, assets=assets, attempt=attempt)
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
) -> HandlerContext:
    """``run_async`` for synchronous tests."""
    return asyncio.run(
        run_async(
            handler, event, storage=storage, transport=transport, assets=assets, attempt=attempt
        )
    )
