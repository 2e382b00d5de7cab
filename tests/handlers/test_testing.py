"""handlers.testing: realistic events and a context with no database or network."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from handlers import Asset, AssetRepair, HandlerContext, JobEvent
from handlers.testing import (
    MemoryAssets,
    make_context,
    run,
    sample_event,
    sample_names,
    sample_payload,
    would_run,
)
from storage import MemoryStorage


class Fetching:
    name = "fetching"
    events = frozenset({"completed"})
    models = frozenset({"midjourney"})

    def __init__(self) -> None:
        self.seen: list[int] = []

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        response = await ctx.http.get(event.job.result["gridUrl"])
        self.seen.append(response.status_code)


@pytest.mark.parametrize("name", sample_names())
def test_every_sample_becomes_an_event_with_its_job(name: str) -> None:
    """Each shipped body yields an event whose job (or LoRA) mirrors what framehook would
    record."""
    event = sample_event(name)
    payload = sample_payload(name)
    assert event.payload == payload
    assert event.job_id == payload.get("jobId", payload.get("loraId"))
    if event.event in ("completed", "failed"):
        assert (event.job.status, event.job.progress) == (payload["status"], 100)


def test_completed_event_carries_result_cost_and_time() -> None:
    """completed: result, credit cost and completion time on the job snapshot."""
    event = sample_event("completed-kling-video")
    assert event.job.result == {
        "videoUrl": "https://cdn2.apiframe.ai/videos/2d3e4f5a-6b7c-4d8e-9fa0-b1c2d3e4f5a6.mp4"
    }
    assert event.job.credit_cost == 70
    assert event.job.completed_at == datetime(2026, 11, 20, 10, 5, tzinfo=UTC)


def test_overrides_replace_body_fields() -> None:
    """sample_event(..., field=value) changes the body and the job with it."""
    event = sample_event("completed-gpt-image-2", model="flux-pro", creditCost=3)
    assert (event.model, event.job.credit_cost, event.payload["model"]) == (
        "flux-pro",
        3,
        "flux-pro",
    )


def test_unknown_sample_lists_the_known_ones() -> None:
    """A typo names the samples that exist."""
    with pytest.raises(ValueError, match="completed-midjourney"):
        sample_payload("completed-midjurney")


def test_handler_talks_to_the_mock_transport_only() -> None:
    """The context's client goes to the given MockTransport; by default nothing answers."""
    handler = Fetching()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"png"))
    run(handler, sample_event("completed-midjourney"), transport=transport)
    assert handler.seen == [200]
    with pytest.raises(httpx.ConnectError, match=r"no network in handlers\.testing"):
        run(Fetching(), sample_event("completed-midjourney"))


def test_would_run_honours_events_and_models() -> None:
    """A handler limited to midjourney completed jobs is not run for other models or events."""
    handler = Fetching()
    assert would_run(handler, sample_event("completed-midjourney"))
    assert not would_run(handler, sample_event("completed-kling-video"))
    assert not would_run(handler, sample_event("progress-midjourney-45"))
    with pytest.raises(ValueError, match="would not run"):
        run(handler, sample_event("completed-kling-video"))


def test_make_context_defaults() -> None:
    """A fresh context: attempt 1, in-memory storage, a client to close."""
    context = make_context(attempt=3)
    assert context.attempt == 3
    assert isinstance(context.storage, MemoryStorage)
    assert not context.http.is_closed


def _asset(sha256: str) -> Asset:
    return Asset(
        job_id="job-1",
        position=1,
        kind="image",
        source_url="https://cdn2.apiframe.ai/a.png",
        key="job-1/image-1.png",
        storage_uri="memory://testing/job-1/image-1.png",
        size=3,
        content_type="image/png",
        sha256=sha256,
        stored_at=datetime(2026, 12, 3, tzinfo=UTC),
    )


@pytest.mark.anyio
async def test_memory_assets_repair_a_stale_record_unless_another_repair_came_first() -> None:
    """MemoryAssets keeps the AssetRepair contract: the fresh record replaces the stale one, and
    a repair of a record already replaced keeps the one that got there first."""
    log = MemoryAssets()
    assert isinstance(log, AssetRepair)
    stale, fresh, late = _asset("a" * 64), _asset("b" * 64), _asset("c" * 64)
    await log.record(stale)
    assert await log.replace(stale, fresh) == fresh
    assert await log.replace(stale, late) == fresh
    assert await log.assets("job-1") == [fresh]
