"""Captured assets: the record of one stored file, and the log handlers keep them in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = ["Asset", "AssetLog", "AssetRepair"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """One file of a job's result, stored and checked.

    Attributes:
        job_id: Apiframe's job id.
        position: 1-based place of the file in the job's result, in a fixed order (images,
            grid, video(s), per track its audio and cover, then every other URL in document
            order); one asset per position.
        kind: what the result promised (``image``, ``grid``, ``video``, ``audio``,
            ``cover``), or, for a file only its bytes could tell, what they are (``image``,
            ``video``, ``audio``).
        source_url: where it was fetched, without its query string (signed CDN URLs carry
            credentials there).
        key: the storage key it is stored under.
        storage_uri: where it lives (``file:///…``, ``s3://…``).
        size: bytes stored.
        content_type: the type the bytes were checked to be (``image/png``).
        sha256: hex SHA-256 of the bytes stored.
        stored_at: when it was recorded.
        handler: the handler that stored it.
    """

    job_id: str
    position: int
    kind: str
    source_url: str
    key: str
    storage_uri: str
    size: int
    content_type: str | None
    sha256: str
    stored_at: datetime
    handler: str = "download"


@runtime_checkable
class AssetLog(Protocol):
    """Where handlers record what they stored (framehook's database in a worker).

    A handler reads it before fetching, so a retry, a replay or a duplicate event skips what
    is already stored, and records each asset once its bytes are stored under its final key.
    """

    async def assets(self, job_id: str) -> list[Asset]:
        """The assets recorded for ``job_id``, by position: by this handler, and by the
        handlers it runs ``after``."""
        ...

    async def record(self, asset: Asset) -> Asset:
        """Record ``asset``; if its (job, position) is already recorded, keep the first and
        return it (two workers that raced store one record)."""
        ...


@runtime_checkable
class AssetRepair(Protocol):
    """An asset log that can correct a record (framehook's database can).

    The ``download`` handler uses it when a recorded file was found missing or altered in
    storage and was stored again: the new record replaces the stale one. With a log that
    cannot, the stale record stays (and the file is checked, and fetched, again next time).
    """

    async def replace(self, stale: Asset, fresh: Asset) -> Asset:
        """Put ``fresh`` in the place of ``stale`` (same job and position) and return it; if
        the place no longer holds ``stale`` (another worker repaired it first), keep what it
        holds and return that."""
        ...
