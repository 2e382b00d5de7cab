"""Distinct jobs never share a file: a job id is encoded to one path segment that no other id
gives and no store rewrites, and an ordinary id (a UUID) is itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.download import DownloadOptions
from handlers.download._keys import key_segment, render_key
from storage import InvalidKey
from storage._keys import clean_key
from tests.handlers.conftest import Capture
from tests.support.cdn import Route
from tests.support.media import media_bytes

TEMPLATE = DownloadOptions().key_template
LOOKALIKES = [
    "x",
    "x/",
    "/x",
    "a//b",
    "a/b",
    "a%2Fb",
    "./x",
    ".",
    "..",
    "...",
    "%2E%2E",
    "caf\u00e9",  # é, composed
    "cafe\u0301",  # e and a combining accent
    "\u4f5c\u696d",
    "x\ud800",  # a lone surrogate, as JSON may carry
    "a b",
    "a\\b",
    "a\nb",
]


def key(job_id: str) -> str:
    return render_key(
        TEMPLATE,
        job_id=job_id,
        kind="image",
        n=1,
        position=1,
        ext="png",
        model="m",
        day=datetime(2026, 11, 20, tzinfo=UTC),
    )


def test_lookalike_job_ids_get_distinct_keys_that_stores_keep_as_they_are() -> None:
    """``x``/``x/``, ``a//b``/``a/b``, ``./x``/``x``, ``..``, unicode forms: each its own
    key, one segment deep, which key validation neither refuses nor normalises."""
    keys = [key(job_id) for job_id in LOOKALIKES]
    assert len(set(keys)) == len(keys)
    for job_id, rendered in zip(LOOKALIKES, keys, strict=True):
        assert clean_key(rendered) == rendered, job_id
        assert rendered.count("/") == 1, job_id


@given(st.text(min_size=1), st.text(min_size=1))
def test_the_encoding_is_injective_and_decodes_back(first: str, second: str) -> None:
    """Percent-decoding a segment gives its id back, so two ids never share one."""
    for job_id in (first, second):
        segment = key_segment(job_id)
        assert unquote_to_bytes(segment).decode("utf-8", "surrogatepass") == job_id
        assert "/" not in segment
        assert segment not in (".", "..")
    assert (key_segment(first) == key_segment(second)) == (first == second)


def test_ordinary_job_ids_are_themselves() -> None:
    """A UUID (what Apiframe sends) and a plain id keep the keys they always had."""
    for job_id in (str(uuid.uuid4()), "6f1c2a9e-3b7d-4e21-9a55-0c8d2f4b7a10", "job-1", "a_b.c~d"):
        assert key_segment(job_id) == job_id
    assert key("6f1c2a9e-3b7d-4e21-9a55-0c8d2f4b7a10") == (
        "6f1c2a9e-3b7d-4e21-9a55-0c8d2f4b7a10/image-1.png"
    )


def test_an_empty_job_id_has_no_key() -> None:
    """The empty id would name the store's root: refused as an invalid key."""
    with pytest.raises(InvalidKey):
        key("")


@pytest.mark.anyio
async def test_lookalike_jobs_each_keep_their_own_file(capture: Capture) -> None:
    """Jobs whose ids a store would merge capture one file each: none overwrites another, and
    each record's key holds its own job's bytes."""
    bodies = {}
    for n, job_id in enumerate(LOOKALIKES):
        bodies[job_id] = media_bytes("png", 5_000 + n, seed=n)
        capture.cdn.route(f"/{n}.png", Route(bodies[job_id]))
        await capture.run(capture.event({"images": [capture.url(f"/{n}.png")]}, jobId=job_id))
    files = capture.files()
    assert len(files) == len(LOOKALIKES)
    for job_id, body in bodies.items():
        (asset,) = [a for (j, _), a in capture.assets.records.items() if j == job_id]
        assert files[asset.key] == body, job_id
