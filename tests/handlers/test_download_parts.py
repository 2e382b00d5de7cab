"""The download handler's parts: finding files in every result shape, checking content,
rendering keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pydantic import ValidationError

from handlers import retry_after
from handlers.download import DownloadOptions, find_assets
from handlers.download._content import ContentMismatch, check_content
from handlers.download._keys import render_key
from handlers.testing import sample_names, sample_payload
from tests.support.media import media_bytes

EXPECTED = {
    "completed-midjourney": ["image"] * 4 + ["grid"],
    "completed-legacy-string-result": ["image"],
    "completed-gpt-image-2": ["image"],
    "completed-topaz-upscale": ["image"],
    "completed-kling-video": ["video"],
    "completed-midjourney-video": ["video"] * 4,
    "completed-suno": ["audio", "cover", "audio"],
    "completed-suno-stems": ["audio", "audio"],
    "completed-extra-fields": ["image", "file"],
}


def test_every_completed_sample_is_covered_here() -> None:
    """Each shipped completed body has an expectation below (a new fixture must add one)."""
    assert {n for n in sample_names() if n.startswith("completed-")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_files_are_found_in_every_result_shape_in_a_fixed_order(name: str) -> None:
    """images, grid, videoUrl, videos, track audio and covers, a string: kinds, positions and
    per-kind numbers (a ``file``'s number is its position), every URL exactly once."""
    result = sample_payload(name)["result"]
    refs, _ = find_assets(result)
    assert [r.kind for r in refs] == EXPECTED[name]
    assert [r.position for r in refs] == list(range(1, len(refs) + 1))
    for kind in set(EXPECTED[name]) - {"file"}:
        assert [r.n for r in refs if r.kind == kind] == list(
            range(1, EXPECTED[name].count(kind) + 1)
        )
    assert all(r.n == r.position for r in refs if r.kind == "file")
    assert find_assets(result) == (refs, find_assets(result)[1])  # deterministic


def test_unknown_keys_holding_urls_are_captured_after_the_documented_ones() -> None:
    """``thumbnails`` (unknown) holds a URL: a file whose kind its bytes will tell, after the
    images; ``seed`` (a number) is nothing."""
    refs, ignored = find_assets(sample_payload("completed-extra-fields")["result"])
    assert ignored == []
    assert [(r.position, r.kind, r.n, r.url.endswith("-thumb.jpeg")) for r in refs] == [
        (1, "image", 1, False),
        (2, "file", 2, True),
    ]


@pytest.mark.parametrize(
    "result",
    [None, 42, [], {}, {"images": None}, {"images": "not-a-list"}, {"tracks": [None, 3]}, ""],
)
def test_odd_results_give_no_files_and_no_error(result: object) -> None:
    """Shapes nobody documented yield nothing rather than an exception."""
    assert find_assets(result)[0] == []


def test_a_string_result_takes_its_kind_from_the_extension() -> None:
    """A legacy string result to an .mp4 is a video; with no extension it is a ``file``."""
    assert find_assets("https://cdn.apiframe.ai/r/x.mp4")[0][0].kind == "video"
    assert find_assets("https://cdn.apiframe.ai/r/x")[0][0].kind == "file"


@pytest.mark.parametrize(
    ("kind", "ext", "mime"),
    [
        ("image", "png", "image/png"),
        ("image", "jpeg", "image/jpeg"),
        ("image", "webp", "image/webp"),
        ("video", "mp4", "video/mp4"),
        ("audio", "mp3", "audio/mpeg"),
        ("cover", "jpeg", "image/jpeg"),
        ("file", "mp4", "video/mp4"),
    ],
)
def test_real_media_bytes_pass_the_content_check(kind: str, ext: str, mime: str) -> None:
    """The first bytes of each media type are recognised as that type."""
    assert check_content(media_bytes(ext, 10_000)[:4096], kind).content_type == mime


@pytest.mark.parametrize(
    ("head", "kind", "words"),
    [
        (b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "image", "text/html"),
        (b"", "image", "empty"),
        (b"\x1f\x8b\x08\x00" + bytes(100), "video", "gzip"),
        (b"\x00" * 200, "audio", "unrecognised"),
    ],
)
def test_content_that_is_not_what_was_promised_is_refused(
    head: bytes, kind: str, words: str
) -> None:
    """An HTML error page, an empty body, a gzip stream, zeros: each refused, saying what."""
    with pytest.raises(ContentMismatch, match=words):
        check_content(head, kind)


def test_a_video_is_not_accepted_where_an_image_was_promised() -> None:
    """The family must match the result's promise, not merely be some media."""
    with pytest.raises(ContentMismatch, match="video/mp4"):
        check_content(media_bytes("mp4", 4096), "image")


def test_extensions_come_from_the_checked_type() -> None:
    """JPEG bytes are stored as ``jpg``, WAV as ``wav``, whatever the URL says (or not)."""
    assert check_content(media_bytes("jpeg", 100), "image").extension == "jpg"
    assert check_content(media_bytes("wav", 100), "file").extension == "wav"


def test_the_default_key_is_job_kind_number_extension() -> None:
    """``{job_id}/{kind}-{n}.{ext}`` with the date and model available to custom templates."""
    when = datetime(2026, 11, 20, 23, 59, tzinfo=UTC)
    fields = {"job_id": "j1", "kind": "grid", "n": 1, "position": 5, "ext": "png"}
    assert render_key(DownloadOptions().key_template, model="mj", day=when, **fields) == (
        "j1/grid-1.png"
    )
    assert render_key(
        "{model}/{date}/{job_id}-{position}.{ext}", model="mj", day=when, **fields
    ) == ("mj/2026-11-20/j1-5.png")


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{job}/{kind}-{n}.{ext}", "unknown fields"),
        ("{kind}-{n}.{ext}", "job_id"),
        ("{job_id}/{n}.{ext}", "position"),
        ("{job_id}/{}.{ext}", "unknown fields"),
    ],
)
def test_templates_that_could_collide_are_refused_at_start(template: str, words: str) -> None:
    """Unknown fields, or no way to tell two jobs' or two files' keys apart: a clear error."""
    with pytest.raises(ValidationError, match=words):
        DownloadOptions(key_template=template)


def test_options_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``FRAMEHOOK_ASSET_*`` configure the handler."""
    monkeypatch.setenv("FRAMEHOOK_ASSET_KEY_TEMPLATE", "media/{job_id}/{position}.{ext}")
    monkeypatch.setenv("FRAMEHOOK_ASSET_MAX_BYTES", "1000")
    options = DownloadOptions()
    assert (options.key_template, options.max_bytes) == ("media/{job_id}/{position}.{ext}", 1000)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    """``Retry-After: 7`` is 7 s; an HTTP date is the time left (0 once past); junk is None."""
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert retry_after("7") == 7.0
    assert 100 < (retry_after(soon) or 0) <= 120
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after("soon") is None
    assert retry_after(None) is None
