"""Schema management: Alembic migrations shipped in the package, run programmatically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from receiver.db.engine import writing
from receiver.logs import get_logger

if TYPE_CHECKING:
    from alembic.config import Config

    from receiver.settings import Settings

__all__ = ["HEAD", "current_revision", "head_revision", "is_current", "prepare_schema", "upgrade"]

_log = get_logger("framehook.schema")

HEAD = "0012"
"""The newest revision this version ships (a test keeps it equal to Alembic's head). Known
without Alembic, so a process whose schema is current never imports it (about 10 MiB)."""

_SCRIPTS = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every framehook process.
_PG_MIGRATION_LOCK = 0x6672616D65686F6B  # "framehok"


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version of framehook ships, as Alembic reads the scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to run from several processes at once.

    On PostgreSQL an advisory lock serialises concurrent upgrades (replicas starting together
    during a rolling deploy); SQLite serialises them with its write lock.
    """
    from alembic import command

    with writing(engine) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
        command.upgrade(_config(connection), revision)


def is_current(engine: Engine) -> bool:
    """Whether the database is at ``HEAD``, read without Alembic."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:  # no alembic_version table yet: an empty database
        return False
    return [r[0] for r in rows] == [HEAD]


def prepare_schema(engine: Engine, settings: Settings) -> None:
    """At a process's start: migrate (SQLite, or when FRAMEHOOK_AUTO_MIGRATE) or warn if the
    schema is behind. Here rather than in ``receiver.app`` so a worker needs no web app."""
    if is_current(engine):
        return
    auto = settings.is_sqlite if settings.auto_migrate is None else settings.auto_migrate
    if auto:
        upgrade(engine)
        return
    current, head = current_revision(engine), head_revision()
    if current != head:
        _log.warning(
            "database schema is not current; run `framehook db upgrade`",
            current=current,
            expected=head,
        )
