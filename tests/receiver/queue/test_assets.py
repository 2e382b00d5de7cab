"""The asset log in the database, on SQLite and PostgreSQL: one record per (job, position)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from handlers import Asset, AssetLog
from receiver.queue.assets import DatabaseAssets


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
