"""The asset log in the database, on SQLite and PostgreSQL: one record per (job, position)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from handlers import Asset, AssetLog
from handlers._assets import AssetRepair
from receiver.queue.assets import DatabaseAssets
from tests.support.database import rows


def asset(position: int, sha: str = "a" * 64, job: str = "job-1") -> Asset:
    return Asset(
        job_id=job,
        position=position,
        kind="image",
        source_url=f"https://cdn2.apiframe.ai/images/{job}-{position}.png",
        key=f"{job}/image-{position}.png",
        storage_uri=f"memory://t/{job}/image-{position}.png",
        size=1234,
        content_type="image/png",
        sha256=sha,
        stored_at=datetime(2026, 11, 22, 6, 0, 0, 123456, tzinfo=UTC),
    )


@pytest.mark.anyio
async def test_recorded_assets_read_back_whole_and_in_order(db: Engine) -> None:
    """What is recorded comes back field for field, by position, per job."""
    log = DatabaseAssets(db, "download")
    assert isinstance(log, AssetLog)
    for position in (2, 1):
        await log.record(asset(position))
    await log.record(asset(1, job="job-2"))
    assert await log.assets("job-1") == [asset(1), asset(2)]


@pytest.mark.anyio
async def test_the_first_record_of_a_position_wins(db: Engine) -> None:
    """Two workers that raced record one asset; both are told which one was kept."""
    log = DatabaseAssets(db, "download")
    first, second = await asyncio.gather(
        log.record(asset(1, sha="b" * 64)), log.record(asset(1, sha="c" * 64))
    )
    stored = await log.assets("job-1")
    assert first == second
    assert stored == [first]


@pytest.mark.anyio
async def test_handlers_keep_separate_logs(db: Engine) -> None:
    """A plugin's records never shadow the download handler's positions."""
    mine, theirs = DatabaseAssets(db, "download"), DatabaseAssets(db, "thumbnails")
    await mine.record(asset(1))
    await theirs.record(asset(1, sha="d" * 64))
    ours, plugin = await mine.assets("job-1"), await theirs.assets("job-1")
    assert [a.sha256 for a in ours] == ["a" * 64]
    assert [(a.sha256, a.handler) for a in plugin] == [("d" * 64, "thumbnails")]


@pytest.mark.anyio
async def test_a_stale_record_is_replaced_in_place_once(db: Engine) -> None:
    """``replace`` swaps the stale record for the fresh one, keeping its row; a second repair
    from the same stale record (a racing worker) keeps the first one's."""
    log = DatabaseAssets(db, "download")
    assert isinstance(log, AssetRepair)
    stale = await log.record(asset(1))
    (row_before,) = rows(db, "SELECT id FROM assets")
    fresh = replace(asset(1, sha="e" * 64), key="job-1/image-1.webp")
    assert await log.replace(stale, fresh) == fresh
    assert await log.replace(stale, replace(fresh, sha256="f" * 64)) == fresh
    assert await log.assets("job-1") == [fresh]
    assert rows(db, "SELECT id FROM assets") == [row_before]


@pytest.mark.anyio
async def test_replacing_a_record_that_is_gone_records_the_fresh_one(db: Engine) -> None:
    """With nothing in the place any more, the fresh record is simply recorded."""
    log = DatabaseAssets(db, "download")
    assert await log.replace(asset(2), asset(2, sha="e" * 64)) == asset(2, sha="e" * 64)


@pytest.mark.anyio
async def test_a_record_is_replaced_only_by_one_of_its_place(db: Engine) -> None:
    """A fresh record for another job or position is refused."""
    log = DatabaseAssets(db, "download")
    with pytest.raises(ValueError, match="job and position"):
        await log.replace(asset(1), asset(2))
