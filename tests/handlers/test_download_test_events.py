"""The download handler and test events (``framehook send-test``): made-up URLs are never
fetched, and the task ends cleanly; ``event.test`` and ``handlers.testing`` for plugins."""

from __future__ import annotations

import httpx
import pytest
from structlog.testing import capture_logs

from handlers import TEST_MARKER, HandlerContext, JobEvent, is_test_body
from handlers.download import NOTHING_TO_CAPTURE, DownloadHandler
from handlers.testing import MemoryAssets, event_from_payload, run, sample_event, sample_payload
from storage import MemoryStorage


def test_sample_event_builds_a_test_event_on_request() -> None:
    """`sample_event(name, test=True)` carries the marker in its body and says `event.test`."""
    event = sample_event("completed-midjourney", test=True)
    assert event.test
    assert event.payload[TEST_MARKER] is True
    assert not sample_event("completed-midjourney").test


@pytest.mark.parametrize("value", ["true", 1, None])
def test_only_true_marks_an_event_as_a_test(value: object) -> None:
    """A body whose marker is not the JSON value true is a real event."""
    payload = {**sample_payload("completed-midjourney"), TEST_MARKER: value}
    assert not is_test_body(payload)
    assert not event_from_payload(payload).test


def test_a_test_event_is_not_fetched_and_its_task_ends_cleanly() -> None:
    """No request leaves, nothing is stored or recorded, no signal is raised, and the log says
    "test event: nothing to capture"."""
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(500)

    storage, assets = MemoryStorage(), MemoryAssets()
    with capture_logs() as logs:
        run(
            DownloadHandler(),
            sample_event("completed-midjourney", test=True),
            storage=storage,
            transport=httpx.MockTransport(record),
            assets=assets,
        )
    assert requests == []
    assert storage.objects == {}
    assert assets.records == {}
    [line] = [entry for entry in logs if entry["event"] == NOTHING_TO_CAPTURE]
    assert line["log_level"] == "info"
    assert line["named"] == 5  # four images and the grid, none of them fetched


def test_a_plugin_can_skip_test_events() -> None:
    """A plugin that checks `event.test` sees test events built by handlers.testing."""

    class Billing:
        name = "billing"
        events = frozenset({"completed"})

        def __init__(self) -> None:
            self.billed: list[str] = []

        async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
            if not event.test:
                self.billed.append(event.job_id)

    billing = Billing()
    run(billing, sample_event("completed-midjourney", test=True))
    assert billing.billed == []
    run(billing, sample_event("completed-midjourney"))
    assert len(billing.billed) == 1
