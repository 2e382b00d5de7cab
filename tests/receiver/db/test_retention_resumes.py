"""A periodic prune costs what it prunes, on SQLite and PostgreSQL: it finds the bodies still
to prune through ``ix_deliveries_unpruned`` instead of rereading every pruned delivery."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, event, text

from bench.history import fill_history
from receiver.db.engine import writing
from receiver.db.retention import Pruned, prune

OLD = datetime.now(UTC) - timedelta(days=60)
MONTH = timedelta(days=30)
BATCH = 10


@contextmanager
def _reads_of_deliveries(engine: Engine) -> Iterator[list[str]]:
    """The SELECTs on ``deliveries`` run meanwhile, each with its plan as the database reads
    it (the plan text follows the statement)."""
    seen: list[str] = []

    def explain(conn: Connection, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if not statement.lstrip().upper().startswith("SELECT") or "deliveries" not in statement:
            return
        sqlite = conn.dialect.name == "sqlite"
        cursor.execute(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + statement, params)
        plan = "\n".join(str(r[-1] if sqlite else r[0]) for r in cursor.fetchall())
        seen.append(f"{statement}\n{plan}")

    event.listen(engine, "before_cursor_execute", explain)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", explain)


def _analyze(db: Engine) -> None:
    # What a long-running database has (PostgreSQL's autovacuum, SQLite's ANALYZE): row counts
    # that make the planner's choice the one it makes in production.
    with writing(db) as connection:
        connection.execute(text("ANALYZE"))


def test_a_second_prune_reads_only_what_is_left_to_prune(db: Engine) -> None:
    """After 300 old deliveries are pruned, the next prune reads one window (the two young
    bodies), not the 30 windows of pruned history again; the one after it prunes the
    deliveries that have aged since, and only reads those."""
    fill_history(db, 300, OLD, jobs=False)
    fill_history(db, 2, datetime.now(UTC), prefix="young", jobs=False)
    assert prune(db, MONTH).bodies == 300
    _analyze(db)
    with _reads_of_deliveries(db) as reads:
        assert prune(db, MONTH, batch_rows=BATCH) == Pruned(0, 0, 0)
    assert len(reads) == 1, reads
    later = datetime.now(UTC) + timedelta(days=31)
    with _reads_of_deliveries(db) as reads:
        assert prune(db, MONTH, now=later, batch_rows=BATCH).bodies == 2
    assert len(reads) == 2, reads  # the window with the two, then the end of the bodies


def test_the_prune_window_is_an_index_seek(db: Engine) -> None:
    """The window read seeks ix_deliveries_unpruned rather than walking the primary key."""
    fill_history(db, 300, OLD, jobs=False)
    prune(db, MONTH)
    _analyze(db)
    with _reads_of_deliveries(db) as reads:
        prune(db, MONTH, batch_rows=BATCH)
    (window,) = reads
    assert "ix_deliveries_unpruned" in window, window
