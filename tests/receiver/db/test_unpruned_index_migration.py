"""Migration 0012 (``ix_deliveries_unpruned``) on a database that already holds history, on
both databases: the index holds exactly the rows that still have a body, and the prune that
follows finds them through it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, inspect, text

from bench.history import fill_history
from receiver.db.engine import writing
from receiver.db.retention import prune
from receiver.db.schema import upgrade

OLD = datetime.now(UTC) - timedelta(days=60)


def test_history_from_before_the_upgrade_is_pruned_through_the_index(
    empty_engine: Engine,
) -> None:
    """A 0011 database holding old deliveries, some already pruned, upgrades to head; the
    index exists with its condition and the next prune removes exactly the bodies left."""
    upgrade(empty_engine, "0011")
    fill_history(empty_engine, 20, OLD, jobs=False)
    with writing(empty_engine) as connection:
        connection.execute(text("UPDATE deliveries SET body = NULL WHERE id <= 15"))
    upgrade(empty_engine)
    (index,) = [
        i
        for i in inspect(empty_engine).get_indexes("deliveries")
        if i["name"] == "ix_deliveries_unpruned"
    ]
    assert index["column_names"] == ["id"]
    assert prune(empty_engine, timedelta(days=30)).bodies == 5
