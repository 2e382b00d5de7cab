"""The asset log handlers record captures in (``handlers.AssetLog``), kept in the database;
it can also replace a stale record (``AssetRepair``), which the download handler does when a
recorded file was found missing or altered in storage and stored again."""

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
    """``AssetLog`` (and ``AssetRepair``) over the ``assets`` table, for one handler's records.

    Args:
        engine: the database.
        handler: whose records these are (positions are unique per job and handler).
        metrics: counts the bytes of each new record (a record kept already counts nothing).
        reads: the handlers whose records it reads besides its own: those ``handler`` runs
            ``after`` (``forward`` lists what ``download`` stored). It writes only its own.
    """

    def __init__(
        self,
        engine: Engine,
        handler: str,
        metrics: Metrics | None = None,
        *,
        reads: frozenset[str] = frozenset(),
    ) -> None:
        self.engine = engine
        self.handler = handler
        self.metrics = metrics
        self.reads = reads

    async def assets(self, job_id: str) -> list[Asset]:
        """The assets recorded for ``job_id``, by position."""
        return await anyio.to_thread.run_sync(self._read, job_id)

    async def record(self, asset: Asset) -> Asset:
        """Record ``asset`` unless its position is recorded already; return the kept one."""
        return await anyio.to_thread.run_sync(self._write, asset)

    async def replace(self, stale: Asset, fresh: Asset) -> Asset:
        """Put ``fresh`` in the place of ``stale`` unless the place holds another record by
        now (a racing worker's repair: kept); return what the place holds.

        Raises:
            ValueError: ``fresh`` is not for ``stale``'s job and position.
        """
        if (fresh.job_id, fresh.position) != (stale.job_id, stale.position):
            raise ValueError("a record can only be replaced by one for its job and position")
        return await anyio.to_thread.run_sync(self._swap, stale, fresh)

    def _query(self, job_id: str) -> Any:
        a = _assets
        return (
            select(a)
            .where(a.c.job_id == job_id, a.c.handler == self.handler)
            .order_by(a.c.position)
        )

    def _read(self, job_id: str) -> list[Asset]:
        a = _assets
        owners = {self.handler, *self.reads}
        query = (
            select(a).where(a.c.job_id == job_id, a.c.handler.in_(owners)).order_by(a.c.position)
        )
        with self.engine.connect() as connection:
            return [_asset(row) for row in connection.execute(query)]

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

    def _swap(self, stale: Asset, fresh: Asset) -> Asset:
        values = {name: getattr(fresh, name) for name in _FIELDS}
        values["handler"] = self.handler
        a = _assets
        # Compare and swap in one statement: the row changes only while it is still the stale
        # record, so of two workers repairing one file, the first one's record stays. The row
        # keeps its id (links to its content stay valid).
        update = (
            a.update()
            .where(
                a.c.job_id == stale.job_id,
                a.c.handler == self.handler,
                a.c.position == stale.position,
                a.c.key == stale.key,
                a.c.size == stale.size,
                a.c.sha256 == stale.sha256,
            )
            .values(values)
        )
        with writing(self.engine) as connection:
            replaced = connection.execute(update).rowcount == 1
            kept = connection.execute(
                self._query(stale.job_id).where(a.c.position == stale.position)
            ).first()
        if kept is None:  # the record was deleted meanwhile: this is a first record again
            return self._write(fresh)
        if replaced and self.metrics is not None:
            self.metrics.downloaded(kept.size)
        return _asset(kept)
