"""What a capture task ends as: never ``succeeded`` unless every file is stored, every file not
stored named in its error with why; what a retry cannot change (wrong content, a URL that
cannot be fetched, a store refusing writes) permanent at the first attempt, what it can (a full
disk) retried."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from handlers import JobEvent, JobSnapshot, PermanentFailure
from handlers.download import CaptureIncomplete
from storage import LocalStorage
from tests.handlers.conftest import Capture
from tests.support.cdn import Route
from tests.support.media import NOT_MEDIA, media_bytes
from tests.support.mounts import fill, read_only


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("route", "words"),
    [
        (Route(NOT_MEDIA["html"], content_type="image/png"), "text/html"),
        (Route(NOT_MEDIA["html"], content_type="text/html"), "text/html"),
        (Route(NOT_MEDIA["svg"], content_type="image/svg+xml"), "SVG"),
        (Route(NOT_MEDIA["json"]), "application/json"),
        (Route(b""), "empty"),
        (Route(media_bytes("png", 5_000), gzip=True), "Content-Encoding gzip"),
        (Route(media_bytes("png", 1_000_000), gzip=True), "Content-Encoding gzip"),
    ],
    ids=["html-as-png", "html", "svg", "json", "empty", "gzip", "gzip-1MB"],
)
async def test_wrong_content_fails_permanently_at_the_first_attempt(
    capture: Capture, route: Route, words: str
) -> None:
    """The server answered 200 with something that is not the file (an error page, SVG,
    JSON, nothing, a compressed body): it would answer the same again, so the first attempt
    parks the task, the reason in its error. One request; nothing stored."""
    capture.cdn.route("/x", route)
    with pytest.raises(PermanentFailure, match=words) as failed:
        await capture.run(capture.event({"output": capture.url("/x")}))
    assert not isinstance(failed.value, CaptureIncomplete)
    assert capture.cdn.hits["/x"] == 1
    assert capture.files() == {}
    assert capture.assets.records == {}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://[::1/x.png", "invalid URL: Invalid port"),
        ("https://xn--zz.apiframe.ai/x.png", "invalid URL: host xn--zz.apiframe.ai is not a valid"),
        ("https://xn--a-ecp.apiframe.ai/x.png", "invalid URL: host xn--a-ecp.apiframe.ai"),
        ("https://cdn2.apiframe.ai:99999/x.png", "port 99999 is not a TCP port"),
        ("https://cdn2.apiframe.ai:0/x.png", "port 0 is not a TCP port"),
    ],
    ids=["unparsable", "bad-punycode", "bad-idna", "port-too-big", "port-0"],
)
async def test_a_url_httpx_cannot_use_fails_permanently_at_once(
    capture: Capture, url: str, words: str
) -> None:
    """A URL that cannot be parsed, or that httpx parses but could never fetch (a malformed
    xn-- label, a port past 65535 or 0), is refused on the first attempt, saying why, and
    nothing is connected to."""
    with pytest.raises(PermanentFailure, match=words) as failed:
        await capture.run(capture.event({"images": [url]}))
    assert not isinstance(failed.value, CaptureIncomplete)
    assert capture.cdn.connections == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("https://xn--zz.apiframe.ai/x.png", "host xn--zz.apiframe.ai is not a valid"),
        ("https://cdn2.apiframe.ai:70000/x.png", "port 70000 is not a TCP port"),
    ],
    ids=["bad-idna", "port-too-big"],
)
async def test_a_redirect_to_a_url_that_cannot_be_fetched_fails_permanently(
    capture: Capture, location: str, words: str
) -> None:
    """The same refusal for a redirect hop: one request to the CDN, the task parked."""
    capture.cdn.route("/moved.png", Route(location=location))
    with pytest.raises(PermanentFailure, match=words) as failed:
        await capture.run(capture.event({"images": [capture.url("/moved.png")]}))
    assert not isinstance(failed.value, CaptureIncomplete)
    assert capture.cdn.hits["/moved.png"] == 1


@pytest.mark.anyio
async def test_a_task_that_stores_no_file_of_its_result_never_succeeds(capture: Capture) -> None:
    """A result whose only file (of a shape nobody documented) cannot be stored fails the
    task, naming the file and why."""
    capture.cdn.route("/only", Route(NOT_MEDIA["text"]))
    with pytest.raises(PermanentFailure, match=r"1 of 1 files not stored: file 1 .*/only.*text"):
        await capture.run(capture.event({"imageUrl": capture.url("/only")}))


@pytest.mark.anyio
async def test_every_file_not_stored_is_named_in_the_error_with_its_reason(
    capture: Capture,
) -> None:
    """Of three files, the stored one is kept and the two others are each in the error, by
    position, with their own reason."""
    good = media_bytes("png", 4_000)
    capture.cdn.route("/good.png", Route(good))
    capture.cdn.route("/busy", Route(good, fail_first=5))
    capture.cdn.route("/page", Route(NOT_MEDIA["html"]))
    result = {"images": [capture.url("/good.png")], "extra": [capture.url("/busy")]}
    result["more"] = {"page": capture.url("/page")}
    with pytest.raises(CaptureIncomplete) as failed:
        await capture.run(capture.event(result))
    assert str(failed.value).startswith("2 of 3 files not stored: file 2 ")
    assert "/busy): HTTP 503; file 3 " in str(failed.value)
    assert "/page): not a valid file: " in str(failed.value)
    assert capture.files() == {"job-1/image-1.png": good}


@pytest.mark.anyio
async def test_a_permanent_refusal_waits_for_the_files_a_retry_can_still_store(
    capture: Capture,
) -> None:
    """A file refused for good does not park the task while another can still be fetched;
    once that one is stored, the task fails permanently for the refused file alone."""
    capture.cdn.route("/page", Route(NOT_MEDIA["html"]))
    capture.cdn.route("/late.mp4", Route(media_bytes("mp4", 9_000), fail_first=1))
    event = capture.event([capture.url("/page"), capture.url("/late.mp4")])
    capture.attempt = 2
    with pytest.raises(CaptureIncomplete, match=r"late\.mp4"):
        await capture.run(event)
    capture.attempt = 3
    with pytest.raises(PermanentFailure, match=r"^1 of 2 files not stored: file 1 ") as failed:
        await capture.run(event)
    assert "late.mp4" not in str(failed.value)
    assert list(capture.files()) == ["job-1/video-2.mp4"]


@pytest.mark.anyio
async def test_a_body_without_a_result_captures_the_jobs(capture: Capture) -> None:
    """An event whose body carries ``result: null`` (a poll found the job done) captures the
    result the job holds."""
    body = media_bytes("webp", 3_000)
    capture.cdn.route("/r.webp", Route(body))
    result = {"images": [capture.url("/r.webp")]}
    event = JobEvent(
        event="completed",
        job_id="job-1",
        payload={"event": "completed", "jobId": "job-1", "result": None},
        delivery_id=1,
        received_at=datetime.now(UTC),
        source="poll",
        job=JobSnapshot(id="job-1", status="COMPLETED", progress=100, result=result),
    )
    await capture.run(event)
    assert capture.files() == {"job-1/image-1.webp": body}


@pytest.mark.anyio
async def test_a_full_disk_is_retried_and_the_retry_stores_the_file(
    capture: Capture, disk: Path
) -> None:
    """ENOSPC: the task is retried (space may be freed), its error naming ENOSPC and what to
    change; once space is freed the next attempt stores the file."""
    body = media_bytes("png", 20_000)
    capture.cdn.route("/x.png", Route(body))
    capture.storage = LocalStorage(disk)
    event = capture.event({"images": [capture.url("/x.png")]})
    filler = fill(disk)
    with pytest.raises(CaptureIncomplete, match=r"no space left on the device \(ENOSPC\)"):
        await capture.run(event)
    filler.unlink()
    capture.attempt = 2
    await capture.run(event)
    assert (disk / "job-1" / "image-1.png").read_bytes() == body


@pytest.mark.anyio
async def test_a_read_only_store_fails_permanently_at_once(capture: Capture, disk: Path) -> None:
    """EROFS: retrying cannot help until someone remounts it, so the first attempt parks the
    task, its error naming EROFS and what to change, in one line."""
    capture.cdn.route("/x.png", Route(media_bytes("png", 2_000)))
    capture.storage = LocalStorage(disk)
    read_only(disk)
    with pytest.raises(PermanentFailure) as failed:
        await capture.run(capture.event({"images": [capture.url("/x.png")]}))
    assert not isinstance(failed.value, CaptureIncomplete)
    reason = str(failed.value)
    assert "\n" not in reason
    assert "storage refused: " in reason
    assert "the filesystem is read-only (EROFS): mount it read-write" in reason
