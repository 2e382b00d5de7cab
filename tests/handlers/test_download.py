"""The download handler against a real loopback CDN (https, trusted test CA), through the safe
client: every fixture captured, and every way a CDN can misbehave."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import trustme

from handlers import JobEvent, PermanentFailure, RetryLater
from handlers.download import CaptureIncomplete, find_assets
from handlers.testing import sample_names, sample_payload
from tests.handlers.conftest import Capture, serve_result
from tests.support.cdn import FakeCdn, Route
from tests.support.media import media_bytes

COMPLETED = [n for n in sample_names() if n.startswith("completed-")]


@pytest.mark.anyio
@pytest.mark.parametrize("name", COMPLETED)
async def test_every_fixture_is_captured_whole_checked_and_recorded(
    capture: Capture, name: str
) -> None:
    """Each file of each result shape is stored under its deterministic key, byte for byte,
    and recorded with its kind, position, source URL, size, type and checksum."""
    payload = sample_payload(name)
    result, served = serve_result(capture, payload["result"])
    await capture.run(capture.event(result, jobId=payload["jobId"], model=payload["model"]))
    records = list(capture.assets.records.values())
    assert len(records) == len(find_assets(result)[0]) == len(served) > 0
    files = capture.files()
    assert len(files) == len(records)  # no temporary files left behind
    for asset in records:
        path = "/" + asset.source_url.split("/", 3)[3]
        assert files[asset.key] == served[path]
        assert asset.sha256 == hashlib.sha256(served[path]).hexdigest()
        assert asset.size == len(served[path])
        assert asset.key.startswith(f"{payload['jobId']}/{asset.kind}-")
        assert asset.storage_uri == capture.storage.uri(asset.key)
        assert asset.content_type is not None
        assert asset.content_type.split("/")[0] in ("image", "video", "audio")


@pytest.mark.anyio
async def test_a_replay_or_duplicate_stores_nothing_twice(capture: Capture) -> None:
    """Running the handler again fetches nothing and leaves exactly one copy of each file."""
    result, _ = serve_result(capture, sample_payload("completed-midjourney")["result"])
    await capture.run(capture.event(result))
    before, hits = capture.files(), sum(capture.cdn.hits.values())
    await capture.run(capture.event(result))
    assert capture.files() == before
    assert sum(capture.cdn.hits.values()) == hits


@pytest.mark.anyio
async def test_a_file_deleted_from_the_store_is_fetched_again(capture: Capture) -> None:
    """The asset log is not trusted blindly: a recorded file missing from storage comes back."""
    result, _ = serve_result(capture, {"images": ["https://cdn2.apiframe.ai/a.png"]})
    await capture.run(capture.event(result))
    (key,) = capture.files()
    (capture.root / key).unlink()
    await capture.run(capture.event(result))
    assert list(capture.files()) == [key]


@pytest.mark.anyio
async def test_query_strings_never_reach_the_record(capture: Capture) -> None:
    """A signed CDN URL's query (its credentials) is fetched but not stored in the record."""
    capture.cdn.route("/signed.png", Route(media_bytes("png", 3000)))
    await capture.run(
        capture.event({"images": [capture.url("/signed.png") + "?token=secret&exp=1"]})
    )
    (asset,) = capture.assets.records.values()
    assert asset.source_url == capture.url("/signed.png")


def only(capture: Capture, route: Route, path: str = "/x.png", kind: str = "images") -> JobEvent:
    capture.cdn.route(path, route)
    url = capture.url(path)
    return capture.event({kind: [url]} if kind in ("images", "videos") else {kind: url})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("route", "words"),
    [
        (Route(media_bytes("png", 200_000), cut_after=70_000), "RemoteProtocolError"),
        (Route(media_bytes("png", 20_000), declared_length=90_000), "RemoteProtocolError"),
        (Route(media_bytes("png", 10), fail_first=1, fail_status=503), "HTTP 503"),
    ],
    ids=["truncated", "lying-length", "5xx"],
)
async def test_bad_bodies_are_retried_and_leave_nothing_visible(
    capture: Capture, route: Route, words: str
) -> None:
    """A body cut off or shorter than it said, a 5xx: retried with its reason, and no file
    (partial or temporary) is left. (Wrong content is not retried: test_download_outcomes.)"""
    with pytest.raises(CaptureIncomplete, match=words):
        await capture.run(only(capture, route))
    assert capture.files() == {}
    assert capture.assets.records == {}


@pytest.mark.anyio
async def test_5xx_then_success_stores_the_file_on_the_retry(capture: Capture) -> None:
    """The second attempt after a 503 stores one correct copy."""
    body = media_bytes("png", 123_456)
    event = only(capture, Route(body, fail_first=1))
    with pytest.raises(CaptureIncomplete):
        await capture.run(event)
    await capture.run(event)
    assert capture.files() == {"job-1/image-1.png": body}


@pytest.mark.anyio
async def test_a_stalled_download_times_out_and_leaves_nothing(capture: Capture) -> None:
    """A server that stops sending mid-body is cut off by the read timeout."""
    capture.read_timeout = 0.5
    route = Route(media_bytes("mp4", 300_000), stall_after=10_000, stall_seconds=3)
    with pytest.raises(CaptureIncomplete, match="timed out"):
        await capture.run(only(capture, route, "/v.mp4", "videoUrl"))
    assert capture.files() == {}


@pytest.mark.anyio
async def test_the_total_time_limit_cuts_off_a_slow_trickle(
    cdn: FakeCdn, ca: trustme.CA, tmp_path: Path
) -> None:
    """Each read arrives in time, but the whole file may not take longer than its limit."""
    slow = Capture(cdn, ca, tmp_path / "a", timeout_seconds=0.5)
    route = Route(media_bytes("png", 100_000), stall_after=5_000, stall_seconds=1.5)
    with pytest.raises(CaptureIncomplete, match=r"longer than 0\.5 s"):
        await slow.run(only(slow, route))
    assert slow.files() == {}


@pytest.mark.anyio
async def test_429_asks_for_the_servers_delay(capture: Capture) -> None:
    """``Retry-After: 7`` on a 429 becomes ``RetryLater(7)``."""
    route = Route(media_bytes("png", 10), fail_first=1, fail_status=429)
    route.fail_headers = {"Retry-After": "7"}
    with pytest.raises(RetryLater) as raised:
        await capture.run(only(capture, route))
    assert raised.value.delay == 7


@pytest.mark.anyio
async def test_a_404_on_an_expired_job_is_permanent(capture: Capture) -> None:
    """The CDN purged the file (``expired``): no retry, a reason that says so."""
    event = capture.event({"images": [capture.url("/gone.png")]}, expired=True)
    with pytest.raises(PermanentFailure, match="expired"):
        await capture.run(event)


@pytest.mark.anyio
async def test_a_404_long_after_completion_is_permanent_but_soon_after_is_retried(
    capture: Capture,
) -> None:
    """Past the CDN's retention a 404 is a loss; right after completion the CDN may lag."""
    result = {"images": [capture.url("/late.png")]}
    with pytest.raises(PermanentFailure, match="expired"):
        await capture.run(capture.event(result, completedAt="2020-01-01T00:00:00Z"))
    with pytest.raises(CaptureIncomplete, match="HTTP 404"):
        await capture.run(capture.event(result))


@pytest.mark.anyio
@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
async def test_files_over_the_size_cap_fail_permanently(
    cdn: FakeCdn, ca: trustme.CA, tmp_path: Path, chunked: bool
) -> None:
    """Declared or counted while streaming, a file over the cap is refused and not stored."""
    small = Capture(cdn, ca, tmp_path / "a", max_bytes=100_000)
    route = Route(media_bytes("png", 300_000), chunked=chunked)
    with pytest.raises(PermanentFailure, match="FRAMEHOOK_ASSET_MAX_BYTES"):
        await small.run(only(small, route))
    assert small.files() == {}


@pytest.mark.anyio
async def test_redirects_within_the_cdn_are_followed(capture: Capture) -> None:
    """A chain of redirects between allowed hosts ends in the stored file."""
    body = media_bytes("webp", 5000)
    capture.cdn.route("/final.webp", Route(body))
    capture.cdn.route("/hop2", Route(location=capture.url("/final.webp", "cdn.apiframe.ai")))
    await capture.run(only(capture, Route(location=capture.url("/hop2")), "/hop1"))
    assert capture.files() == {"job-1/image-1.webp": body}


@pytest.mark.anyio
async def test_a_redirect_loop_is_a_permanent_refusal(capture: Capture) -> None:
    """A loop is stopped by the redirect limit and not retried."""
    with pytest.raises(PermanentFailure, match="redirect"):
        await capture.run(only(capture, Route(location=capture.url("/loop")), "/loop"))


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/x.png",
        "https://evil.example.com/x.png",
        "http://cdn2.apiframe.ai/x.png",
    ],
)
async def test_unsafe_urls_fail_permanently_without_a_connection(
    capture: Capture, url: str
) -> None:
    """Refused URLs are never fetched, never retried, and say why."""
    with pytest.raises(PermanentFailure, match="refused"):
        await capture.run(capture.event({"images": [url]}))
    assert capture.cdn.connections == 0


@pytest.mark.anyio
async def test_good_files_are_kept_when_another_fails(capture: Capture) -> None:
    """One bad file does not cost the others: they are stored, and only it is retried."""
    good = media_bytes("png", 4000)
    capture.cdn.route("/good.png", Route(good))
    capture.cdn.route("/flaky.png", Route(media_bytes("png", 10), fail_first=1))
    event = capture.event({"images": [capture.url("/good.png"), capture.url("/flaky.png")]})
    with pytest.raises(CaptureIncomplete, match="flaky"):
        await capture.run(event)
    assert capture.files() == {"job-1/image-1.png": good}
    await capture.run(event)
    assert capture.cdn.hits["/good.png"] == 1
    assert len(capture.files()) == 2


@pytest.mark.anyio
async def test_downloads_run_concurrently_up_to_the_limit(
    cdn: FakeCdn, ca: trustme.CA, tmp_path: Path
) -> None:
    """Six slow files with a limit of two: never more than two requests at once."""
    limited = Capture(cdn, ca, tmp_path / "a", concurrency=2)
    urls = []
    for n in range(6):
        path = cdn.route(
            f"/{n}.png", Route(media_bytes("png", 20_000), stall_after=100, stall_seconds=0.2)
        )
        urls.append(limited.url(path))
    await limited.run(limited.event({"images": urls}))
    assert len(limited.files()) == 6
    assert cdn.peak == 2
