""" "Already stored" means the key holds the recorded size and SHA-256: a file altered in the
store is fetched again, and a stale record (a key two jobs once shared) is replaced."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme
from sqlalchemy import Engine

from handlers import Asset
from receiver.queue.assets import DatabaseAssets
from tests.handlers.conftest import Capture
from tests.support.cdn import FakeCdn, Route
from tests.support.media import media_bytes


@pytest.mark.anyio
@pytest.mark.parametrize("size", ["same", "other"])
async def test_a_file_altered_in_the_store_is_fetched_again(capture: Capture, size: str) -> None:
    """Other bytes under the recorded key (of the same size or not) are not the file: the
    next run fetches it again and the key holds the recorded bytes."""
    body = media_bytes("png", 20_000)
    capture.cdn.route("/a.png", Route(body))
    event = capture.event({"images": [capture.url("/a.png")]})
    await capture.run(event)
    stored = capture.root / "job-1" / "image-1.png"
    stored.write_bytes(media_bytes("png", 20_000 if size == "same" else 100, seed=9))
    await capture.run(event)
    assert stored.read_bytes() == body
    assert capture.cdn.hits["/a.png"] == 2
    await capture.run(event)
    assert capture.cdn.hits["/a.png"] == 2  # intact now: checked, not fetched


@pytest.mark.anyio
async def test_a_stale_record_is_replaced_by_the_file_stored_again(
    cdn: FakeCdn, ca: trustme.CA, tmp_path: Path, db: Engine
) -> None:
    """A record from before job ids were encoded (``x/`` stored under ``x/image-1.png``, which
    job ``x`` overwrote) no longer matches its key: the file is stored under the job's own key,
    the record is replaced in place, and job ``x``'s file is left alone."""
    log = DatabaseAssets(db, "download")
    capture = Capture(cdn, ca, tmp_path / "assets", assets=log)
    theirs, mine = media_bytes("png", 7_000, seed=1), media_bytes("png", 8_000, seed=2)
    cdn.route("/x.png", Route(theirs))
    cdn.route("/x-slash.png", Route(mine))
    await capture.run(capture.event({"images": [capture.url("/x.png")]}, jobId="x"))
    stale = Asset(
        job_id="x/",
        position=1,
        kind="image",
        source_url=capture.url("/x-slash.png"),
        key="x/image-1.png",
        storage_uri=capture.storage.uri("x/image-1.png"),
        size=len(mine),
        content_type="image/png",
        sha256=hashlib.sha256(mine).hexdigest(),
        stored_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    await log.record(stale)
    event = capture.event({"images": [capture.url("/x-slash.png")]}, jobId="x/")

    await capture.run(event)
    (record,) = await log.assets("x/")
    assert (record.key, record.sha256) == ("x%2F/image-1.png", stale.sha256)
    assert capture.files() == {"x/image-1.png": theirs, "x%2F/image-1.png": mine}
    await capture.run(event)
    assert cdn.hits["/x-slash.png"] == 1
