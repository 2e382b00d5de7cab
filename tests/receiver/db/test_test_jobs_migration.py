"""Migration 0009 (``jobs.test``) on a database that already holds jobs, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, text

from receiver.credits import credit_totals
from receiver.db.schema import current_revision, head_revision, upgrade
from tests.support.database import rows


def test_jobs_recorded_before_the_upgrade_are_real_jobs(empty_engine: Engine) -> None:
    """A 0008 database with a completed job upgrades to head: the job gets test = false, and
    the ledger still charges it."""
    upgrade(empty_engine, "0008")
    now = datetime.now(UTC).replace(tzinfo=None)
    with empty_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO jobs (id, status, progress, model, credit_cost, created_at, "
                "updated_at, completed_at) VALUES ('old', 'COMPLETED', 100, 'midjourney', 16, "
                ":now, :now, :now)"
            ),
            {"now": now},
        )
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    (job,) = rows(empty_engine, "SELECT id, test FROM jobs")
    assert (job.id, bool(job.test)) == ("old", False)
    with empty_engine.connect() as connection:
        assert credit_totals(connection).total.credits == 16
