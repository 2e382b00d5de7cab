"""Fixtures for the migration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from receiver.db.engine import create_db_engine
from tests.support.database import postgres_admin


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with no schema at all: SQLite, then a scratch PostgreSQL one."""
    if request.param == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path / 'framehook.db'}")
        yield engine
        engine.dispose()
        return
    admin = postgres_admin(request.getfixturevalue("postgres_server_url"))
    name = f"framehook_mig_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_db_engine(admin.url.set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
