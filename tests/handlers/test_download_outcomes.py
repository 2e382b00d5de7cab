"""What a capture task ends as: never ``succeeded`` unless every file is stored, every file not
stored named in its error with why, and a refusal a retry cannot change permanent by the
second attempt."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handlers import JobEvent, JobSnapshot, PermanentFailure
from handlers.download import CaptureIncomplete
from tests.handlers.conftest import Capture
from tests.support.cdn import Route
from tests.support.media import NOT_MEDIA, media_bytes


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("route", "words"),
    [
        (Route(NOT_MEDIA["html"], content_type="image/png"), "text/html"),
        (Route(NOT_MEDIA["svg"], content_type="image/svg+xml"), "SVG"),
        (Route(NOT_MEDIA["json"]), "application/json"),
        (Route(b""), "empty"),
        (Route(media_bytes("png", 5_000), gzip=True), "Content-Encoding gzip"),
    ],
    ids=["html", "svg", "json", "empty", "gzip"],
)
async def test_wrong_content_is_retried_once_then_fails_permanently(
    capture: Capture, route: Route, words: str
) -> None:
    """The first attempt may meet a CDN's passing error page: retried; the second attempt's
    refusal is permanent, with the reason in the task's error. Nothing is stored."""
    capture.cdn.route("/x", route)
    event = capture.event({"output": capture.url("/x")})
    with pytest.raises(CaptureIncomplete, match=words):
        await capture.run(event)
    capture.attempt = 2
    with pytest.raises(PermanentFailure, match=words) as failed:
        await capture.run(event)
    assert not isinstance(failed.value, CaptureIncomplete)
    assert capture.cdn.hits["/x"] == 2
    assert capture.files() == {}


@pytest.mark.anyio
async def test_an_invalid_url_fails_permanently_at_once(capture: Capture) -> None:
    """A URL that cannot even be parsed is refused on the first attempt, saying so."""
    with pytest.raises(PermanentFailure, match="invalid URL"):
        await capture.run(capture.event({"images": ["https://[::1/x.png"]}))
    assert capture.cdn.connections == 0


@pytest.mark.anyio
async def test_a_task_that_stores_no_file_of_its_result_never_succeeds(capture: Capture) -> None:
    """A result whose only file (of a shape nobody documented) cannot be stored fails the
    task, naming the file and why."""
    capture.cdn.route("/only", Route(NOT_MEDIA["text"]))
    with pytest.raises(CaptureIncomplete, match=r"1 of 1 files not stored: file 1 .*/only.*text"):
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
