"""The slimmer ``deliveries`` indexes (migration 0011) still serve every admin query that an
index served before (by outcome, by job): the plans, read from each database, use an index
rather than the table. (Filtering by event alone walks the primary key, as it always did.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, insert, text

from receiver.admin.queries import DeliveryFilter, job_timeline, list_deliveries
from receiver.db.models import Delivery, Job, metadata

_deliveries = metadata.tables[Delivery.__tablename__]
_jobs = metadata.tables[Job.__tablename__]


@pytest.fixture
def history(db: Engine) -> Engine:
    """5,000 accepted deliveries over 500 jobs, and a few duplicates and conflicts, analysed."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = [
        {
            "received_at": start + timedelta(seconds=n),
            "source": "webhook",
            "request_id": f"r{n}",
            "job_id": f"job{n % 500}",
            "event": "job.completed",
            "event_mismatch": False,
            "outcome": "duplicate" if n % 1000 == 7 else "conflict" if n == 4321 else "accepted",
            "dedupe_key": f"k{n}",
            "fingerprint": "f" * 64,
        }
        for n in range(5000)
    ]
    with db.begin() as connection:
        connection.execute(insert(_deliveries), rows)
        connection.execute(
            insert(_jobs),
            [{"id": "job7", "status": "completed", "created_at": start, "updated_at": start}],
        )
    with db.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()
    return db


def _plan_of(engine: Engine, run: Callable[[Connection], object]) -> str:
    """The plans of the SELECTs ``run`` makes, as the database reads them."""
    plans: list[str] = []

    def explain(conn: Connection, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if not statement.lstrip().upper().startswith("SELECT"):
            return
        sqlite = conn.dialect.name == "sqlite"
        cursor.execute(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + statement, params)
        plans.extend(str(r[-1] if sqlite else r[0]) for r in cursor.fetchall())

    with engine.connect() as connection:
        event.listen(connection, "before_cursor_execute", explain)
        run(connection)
    assert plans, "no SELECT was run"
    return "\n".join(plans)


@pytest.mark.parametrize("outcome", ["duplicate", "conflict"])
def test_a_rare_outcome_is_listed_from_the_partial_index(history: Engine, outcome: str) -> None:
    """Listing duplicates (or conflicts) reads the partial outcome index, not the table."""
    plan = _plan_of(history, lambda c: list_deliveries(c, DeliveryFilter(outcome=outcome), 50))
    assert "ix_deliveries_outcome" in plan, plan


def test_a_rare_outcome_page_has_exactly_its_rows(history: Engine) -> None:
    """The extra condition that picks the partial index changes nothing in what is listed."""
    with history.connect() as connection:
        page = list_deliveries(connection, DeliveryFilter(outcome="duplicate"), 50)
        accepted = list_deliveries(connection, DeliveryFilter(outcome="accepted"), 5000)
    assert [d["requestId"] for d in page.items] == [f"r{n}" for n in (4007, 3007, 2007, 1007, 7)]
    assert len(accepted.items) == 4994


def test_a_jobs_deliveries_are_found_by_the_job_index(history: Engine) -> None:
    """The deliveries list filtered by job, and a job's timeline, use the job_id index."""
    plan = _plan_of(history, lambda c: list_deliveries(c, DeliveryFilter(job_id="job7"), 50))
    assert "ix_deliveries_job_id" in plan, plan
    plan = _plan_of(history, lambda c: job_timeline(c, "job7"))
    assert "ix_deliveries_job_id" in plan, plan


def test_no_index_on_the_dedupe_key(db: Engine) -> None:
    """The ledger's primary key is the dedupe; deliveries keep no second copy of it."""
    names = {i.name for i in _deliveries.indexes}
    assert names == {
        "ix_deliveries_job_id",
        "ix_deliveries_lora_id",
        "ix_deliveries_outcome",
        "ix_deliveries_received_at",
        "ix_deliveries_unpruned",
    }
