"""Captured assets: the record of one stored file, and the log handlers keep them in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = ["Asset", "AssetLog"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """One file of a job's result, stored and checked.

    Attributes:
        job_id: Apiframe's job id.
        position: 1-based place of the file in the job's result, in a fixed order (images,
            grid, video(s), then per track its audio and cover); one asset per position.
        kind: ``image``, ``grid``, ``video``, ``audio``, ``cover`` (or ``file`` for a
            string result whose type the URL does not tell).
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
        """The assets recorded for ``job_id``, by position."""
        ...

    async def record(self, asset: Asset) -> Asset:
        """Record ``asset``; if its (job, position) is already recorded, keep the first and
        return it (two workers that raced store one record)."""
        ...
