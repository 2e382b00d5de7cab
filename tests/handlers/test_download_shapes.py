"""Every URL of every result shape is captured: a corpus of shapes (documented, undocumented,
nested, repeated) and Apiframe's own fixtures, each captured byte for byte from the loopback
CDN under the keys it will always have."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.download import count_files, find_assets
from tests.handlers.conftest import Capture, serve_result

CDN = "https://cdn2.apiframe.ai"
# Apiframe's fixtures, beside this repository (never copied into it).
APIFRAME_FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "apiframe"


class Shape:
    """A result, the type of file the CDN serves at each path (else the URL's extension's),
    and the keys its files must be stored under, by position."""

    def __init__(self, result: Any, keys: list[str], types: dict[str, str] | None = None) -> None:
        self.result = result
        self.keys = keys
        self.types = types or {}


MEDIA_BY_BYTES = ["m4a", "ogg", "opus", "flac", "aac", "wav", "mp3-untagged"]
MEDIA_BY_BYTES += ["heic", "avif", "gif", "mov", "webm"]

SHAPES = {
    "array-of-tracks": Shape(
        [
            {"id": "t0", "audioUrl": f"{CDN}/a/t0.mp3", "imageUrl": f"{CDN}/a/t0.jpeg"},
            {"id": "t1", "audioUrl": f"{CDN}/a/t1.mp3", "imageUrl": None, "title": None},
        ],
        ["audio-1.mp3", "image-2.jpg", "audio-3.mp3"],
    ),
    "array-of-urls": Shape([f"{CDN}/i/1.png", f"{CDN}/i/2.png"], ["image-1.png", "image-2.png"]),
    "image-url": Shape({"imageUrl": f"{CDN}/i/x.webp"}, ["image-1.webp"]),
    "images-of-objects": Shape(
        {"images": [{"url": f"{CDN}/i/1.png"}, {"url": f"{CDN}/i/2.png", "width": 1024}]},
        ["image-1.png", "image-2.png"],
    ),
    "audio-and-image": Shape(
        {"audioUrl": f"{CDN}/a/s.mp3", "imageUrl": f"{CDN}/a/s.jpeg"},
        ["audio-1.mp3", "image-2.jpg"],
    ),
    "thumbnails": Shape(
        {"images": [f"{CDN}/i/1.jpeg"], "seed": 1, "thumbnails": [f"{CDN}/i/1-thumb.jpeg"]},
        ["image-1.jpg", "image-2.jpg"],
    ),
    "unknown-nested": Shape(
        {"output": {"media": [{"video": {"src": f"{CDN}/v/v.mp4"}}], "preview": f"{CDN}/p.gif"}},
        ["video-1.mp4", "image-2.gif"],
    ),
    "documented-then-unknown": Shape(
        {"images": [f"{CDN}/i/1.png"], "videoUrl": f"{CDN}/v/1.mp4", "x": {"a": f"{CDN}/a/t"}},
        ["image-1.png", "video-1.mp4", "audio-3.wav"],
        {"/a/t": "wav"},
    ),
    "tracks-with-stems": Shape(
        {
            "tracks": [
                {
                    "audioUrl": f"{CDN}/a/0.mp3",
                    "imageUrl": f"{CDN}/a/0.jpeg",
                    "stems": {"vocals": f"{CDN}/a/0-vocals.flac"},
                }
            ]
        },
        ["audio-1.mp3", "cover-1.jpg", "audio-3.flac"],
    ),
    "repeated-urls": Shape(
        {
            "images": [f"{CDN}/i/1.png", f"{CDN}/i/1.png", f"{CDN}/i/2.png"],
            "gridUrl": f"{CDN}/i/1.png",
            "more": [f"{CDN}/i/2.png", f"{CDN}/v/3.mp4", f"{CDN}/v/3.mp4"],
        },
        ["image-1.png", "image-3.png", "video-5.mp4"],
    ),
    "media-by-bytes": Shape(
        {"files": [f"{CDN}/f/{n}" for n in range(len(MEDIA_BY_BYTES))]},
        [
            "audio-1.m4a",
            "audio-2.ogg",
            "audio-3.opus",
            "audio-4.flac",
            "audio-5.aac",
            "audio-6.wav",
            "audio-7.mp3",
            "image-8.heic",
            "image-9.avif",
            "image-10.gif",
            "video-11.mov",
            "video-12.webm",
        ],
        {f"/f/{n}": name for n, name in enumerate(MEDIA_BY_BYTES)},
    ),
}


def test_find_assets_numbers_every_shape_documented_first_then_in_document_order() -> None:
    """Documented shapes keep their kinds and numbers; every other URL is a ``file`` numbered
    by its position after them; a URL named twice is one file."""
    found = {
        name: [(r.position, r.kind, r.n) for r in find_assets(shape.result)[0]]
        for name, shape in SHAPES.items()
    }
    assert found["array-of-tracks"] == [(1, "file", 1), (2, "file", 2), (3, "file", 3)]
    assert found["documented-then-unknown"] == [(1, "image", 1), (2, "video", 1), (3, "file", 3)]
    assert found["tracks-with-stems"] == [(1, "audio", 1), (2, "cover", 1), (3, "file", 3)]
    # images 1 and 3 keep today's numbers although the repeat (slot 2) and grid (4) are gone.
    assert found["repeated-urls"] == [(1, "image", 1), (3, "image", 3), (5, "file", 5)]
    for name, shape in SHAPES.items():
        assert len(found[name]) == len(shape.keys) == count_files(shape.result), name


def test_strings_that_are_not_http_urls_are_no_files() -> None:
    """Text around a URL, data: URIs and other schemes name no file to fetch; the other
    schemes are reported, by scheme only (a data: URI can be megabytes)."""
    prose = {"prompt": "a cat, like https://example.com/cat.png but blue", "seed": 3}
    assert find_assets(prose) == ([], [])
    assert find_assets([None, 1.5, True, {}, []]) == ([], [])
    inline = {"data": "data:image/png;base64,iVBORw0KGgo=", "copy": "s3://bucket/key.png"}
    assert find_assets(inline) == ([], ["data", "s3"])


def test_a_url_at_any_depth_is_found_without_recursion() -> None:
    """A URL under 10,000 levels of arrays and objects is found (no RecursionError)."""
    deep: Any = f"{CDN}/deep.png"
    for level in range(10_000):
        deep = [deep] if level % 2 else {"x": deep}
    assert [r.url for r in find_assets({"a": deep, "b": f"{CDN}/b.png"})[0]] == [
        f"{CDN}/deep.png",
        f"{CDN}/b.png",
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SHAPES))
async def test_every_shape_is_captured_byte_for_byte_under_stable_keys(
    capture: Capture, name: str
) -> None:
    """Each URL is fetched once and stored whole under ``job/{kind}-{n}.{ext}``, its kind and
    extension from its bytes unless the shape promised one."""
    shape = SHAPES[name]
    result, served = serve_result(capture, shape.result, shape.types)
    await capture.run(capture.event(result))
    records = sorted(capture.assets.records.values(), key=lambda a: a.position)
    assert [a.key for a in records] == [f"job-1/{key}" for key in shape.keys]
    files = capture.files()
    assert len(files) == len(records)
    for asset in records:
        path = "/" + asset.source_url.split("/", 3)[3]
        assert files[asset.key] == served[path]
        assert asset.sha256 == hashlib.sha256(served[path]).hexdigest()
    assert set(capture.cdn.hits.values()) == {1}


def _fixture_results() -> dict[str, Any]:
    if not APIFRAME_FIXTURES.is_dir():
        pytest.skip(f"Apiframe's fixtures are not at {APIFRAME_FIXTURES}")
    bodies = {p.stem: orjson.loads(p.read_bytes()) for p in APIFRAME_FIXTURES.glob("*.json")}
    return {name: body["result"] for name, body in bodies.items() if "result" in body}


@pytest.mark.anyio
async def test_every_url_of_every_apiframe_fixture_is_captured(capture: Capture) -> None:
    """Each http(s) URL anywhere in each fixture's result (found here by a plain text search)
    is stored once, byte for byte, for its job."""
    results = _fixture_results()
    assert len(results) >= 9
    for job, fixture_result in results.items():
        result, served = serve_result(capture, fixture_result)
        await capture.run(capture.event(result, jobId=job))
        urls = set(re.findall(r"https://[^\"\s]+", orjson.dumps(result).decode()))
        records = [a for (j, _), a in capture.assets.records.items() if j == job]
        assert {a.source_url for a in records} == urls, job
        for asset in records:
            stored = (capture.root / asset.key).read_bytes()
            assert stored == served["/" + asset.source_url.split("/", 3)[3]], job
    assert set(capture.cdn.hits.values()) == {1}


_KEYS = st.sampled_from(["images", "gridUrl", "videoUrl", "videos", "tracks", "audioUrl", "x"])
_URLS = st.sampled_from(
    [f"{CDN}/a.png", f"{CDN}/b.mp4", f" {CDN}/a.png ", "https://[::1", "HTTPS://CDN/X", "a"]
)
_RESULTS = st.recursive(
    st.none() | st.integers() | st.text(max_size=5) | _URLS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=30,
)


@given(_RESULTS)
def test_any_result_gives_distinct_files_at_stable_distinct_positions(result: Any) -> None:
    """Whatever the result: no error, the same answer twice, each URL once, positions rising,
    a promised kind's numbers unique, and a by-bytes file numbered by its position, past every
    promised number."""
    refs, _ = find_assets(result)
    assert find_assets(result)[0] == refs
    assert len({r.url for r in refs}) == len(refs)
    assert [r.position for r in refs] == sorted({r.position for r in refs})
    assert len({(r.kind, r.n) for r in refs}) == len(refs)
    # A by-bytes file's number is beyond every promised one: its key meets none of theirs.
    promised = max((r.n for r in refs if r.kind != "file"), default=0)
    assert all(r.n == r.position > promised for r in refs if r.kind == "file")
    assert count_files(result) == len(refs)
