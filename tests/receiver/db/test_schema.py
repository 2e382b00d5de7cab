"""Alembic migrations: they build exactly the models' schema, on both databases."""

from __future__ import annotations

import subprocess
import sys
import threading

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from receiver.db.engine import create_db_engine
from receiver.db.models import metadata
from receiver.db.schema import HEAD, current_revision, head_revision, is_current, upgrade


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


def test_head_is_known_without_alembic_and_matches_its_scripts() -> None:
    """``HEAD`` (read without Alembic) is the newest migration shipped."""
    assert head_revision() == HEAD


def test_a_current_schema_is_recognised_without_importing_alembic(sqlite_url: str) -> None:
    """A process starting on a migrated database never loads Alembic (memory it would keep)."""
    engine = create_db_engine(sqlite_url)
    assert not is_current(engine)
    upgrade(engine)
    assert is_current(engine)
    engine.dispose()
    probe = (
        "import sys\n"
        "from receiver.app import prepare_schema\n"
        "from receiver.db.engine import create_db_engine\n"
        "from receiver.settings import Settings\n"
        f"engine = create_db_engine({sqlite_url!r})\n"
        f"prepare_schema(engine, Settings(database_url={sqlite_url!r}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
