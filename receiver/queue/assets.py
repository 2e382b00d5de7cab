"""The asset log handlers record captures in (``handlers.AssetLog``), kept in the database."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import anyio
from sqlalchemy import Engine, select

from handlers import Asset
from receiver.db.engine import writing
from receiver.db.models import AssetRecord, metadata
from receiver.metrics import Metrics

__all__ = ["DatabaseAssets"]

_assets = metadata.tables[AssetRecord.__tablename__]
_FIELDS = (
    "job_id",
    "position",
    "kind",
    "source_url",
    "key",
    "storage_uri",
    "size",
    "content_type",
    "sha256",
    "stored_at",
    "handler",
)


def _asset(row: Any) -> Asset:
    return Asset(**{name: getattr(row, name) for name in _FIELDS})


class DatabaseAssets:
    """``AssetLog`` over the ``assets`` table, for one handler's records.

    Args:
        engine: the database.
        handler: whose records these are (positions are unique per job and handler).
        metrics: counts the bytes of each new record (a record kept already counts nothing).
    """

    def __init__(self, engine: Engine, handler: str, metrics: Metrics | None = None) -> None:
        self.engine = engine
        self.handler = handler
        self.metrics = metrics

    async def assets(self, job_id: str) -> list[Asset]:
        """The assets recorded for ``job_id``, by position."""
        return await anyio.to_thread.run_sync(self._read, job_id)

    async def record(self, asset: Asset) -> Asset:
        """Record ``asset`` unless its position is recorded already; return the kept one."""
        return await anyio.to_thread.run_sync(self._write, asset)

    def _query(self, job_id: str) -> Any:
        a = _assets
        return (
            select(a)
            .where(a.c.job_id == job_id, a.c.handler == self.handler)
            .order_by(a.c.position)
        )

    def _read(self, job_id: str) -> list[Asset]:
        with self.engine.connect() as connection:
            return [_asset(row) for row in connection.execute(self._query(job_id))]

    def _write(self, asset: Asset) -> Asset:
        values = {name: getattr(asset, name) for name in _FIELDS}
        values["handler"] = self.handler
        # The engine's own dialect module (postgresql or sqlite), already loaded by the engine:
        # importing both costs a SQLite worker 1.7 MiB of PostgreSQL dialect it never uses.
        dialect: Any = import_module(f"sqlalchemy.dialects.{self.engine.dialect.name}")
        # The unique index decides, not a read before the write: two racing workers both
        # insert, one row stays, and both return it.
        a = _assets
        insert = dialect.insert(a).values(values).on_conflict_do_nothing().returning(a.c.id)
        with writing(self.engine) as connection:
            inserted = connection.execute(insert).first() is not None
            kept = connection.execute(
                self._query(asset.job_id).where(a.c.position == asset.position)
            ).one()
        if inserted and self.metrics is not None:
            self.metrics.downloaded(kept.size)
        return _asset(kept)
