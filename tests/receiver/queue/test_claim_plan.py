"""On PostgreSQL a claim reaches the rows it locked by primary key, whatever the table's size:
the planner never scans the whole ``tasks`` table to find the few ids the claim picked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text

from bench.tasks import HANDLER, fill
from receiver.queue.tasks import TaskQueue

POSTGRES_ONLY = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
QUEUED = 3_000
"""Enough queued tasks that, with ``id IN (subquery)``, the planner hashed the whole table."""


class _Explaining:
    """A DBAPI cursor that first records the plan of each statement, then runs it."""

    def __init__(self, cursor: Any, plans: list[str]) -> None:
        self._cursor = cursor
        self._plans = plans

    def execute(self, statement: str, params: Any = None) -> None:
        self._cursor.execute("EXPLAIN " + statement, params)
        self._plans.append("\n".join(row[0] for row in self._cursor.fetchall()))
        self._cursor.execute(statement, params)

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()  # type: ignore[no-any-return]


@POSTGRES_ONLY
def test_a_claim_finds_its_tasks_by_primary_key_not_by_scanning_the_table(
    database_url: str, db: Engine
) -> None:
    """The claim of 128 of 3,000 queued tasks (analysed) walks the claim index for the ids and
    the primary key for the rows; no sequential scan of ``tasks``; 128 tasks are claimed."""
    fill(database_url.replace("postgresql+psycopg://", "postgresql://"), QUEUED)
    queue = TaskQueue(db, "plan-test")
    plans: list[str] = []
    now = datetime.now(UTC)
    with db.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        cursor = _Explaining(connection.connection.cursor(), plans)
        rows, _events = queue._sql.claim(cursor, [HANDLER], 128, now, now, "plan-test")
    (plan,) = plans
    assert "Seq Scan on tasks" not in plan, plan
    assert "ix_tasks_claim" in plan, plan
    assert "tasks_pkey" in plan, plan
    assert len(rows) == 128
    with db.connect() as connection:
        running = connection.execute(text("SELECT count(*) FROM tasks WHERE status = 'running'"))
        assert running.scalar() == 128
