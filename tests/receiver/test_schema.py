"""Alembic migrations: they build exactly the models' schema, on both databases."""

from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from receiver.models import metadata
from receiver.schema import current_revision, head_revision, upgrade


def test_migrations_match_the_models(db: Engine) -> None:
    """After `upgrade`, autogenerate finds no difference between the database and the models."""
    upgrade(db)
    with db.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_upgrade_is_idempotent_and_reaches_head(db: Engine) -> None:
    """Running upgrade twice is harmless and leaves the database at the shipped head."""
    upgrade(db)
    upgrade(db)
    assert current_revision(db) == head_revision()


def test_concurrent_upgrades_do_not_collide(db: Engine) -> None:
    """Several processes (here threads) upgrading at once all succeed: the lock serialises them."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            upgrade(db)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert current_revision(db) == head_revision()
