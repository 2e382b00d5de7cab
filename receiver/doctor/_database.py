"""The database check: it answers, and its schema is at this version's head."""

from __future__ import annotations

import time
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

import receiver.db.migrations
from receiver.db.engine import create_db_engine, normalize_url, ping
from receiver.db.schema import HEAD, current_revision
from receiver.doctor._result import Check, Status
from receiver.errors import ConfigurationError
from receiver.settings import Settings

__all__ = ["check_database"]


def _reason(exc: BaseException) -> str:
    """The driver's first line, without SQLAlchemy's wrapper and background link."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}".rstrip(": ")


def check_database(settings: Settings) -> list[Check]:
    """Whether the database answers (``SELECT 1``) and its schema is at this version's head."""
    url_hint = "FRAMEHOOK_DATABASE_URL: sqlite:///path/to/framehook.db or postgresql://..."
    try:
        url = normalize_url(settings.database_url)
    except ConfigurationError as exc:
        return [Check("database", Status.FAIL, str(exc), url_hint)]
    dialect = url.get_backend_name()
    file = url.database if dialect == "sqlite" else None
    # Where it is, never with the password.
    shown = (
        f"sqlite {file}"
        if dialect == "sqlite"
        else f"postgresql {url.username}@{url.host}:{url.port or 5432}/{url.database}"
    )
    # Connecting would create an empty SQLite file: the doctor looks, it does not set up.
    if file and file != ":memory:" and not Path(file).exists():
        return [
            Check(
                "database",
                Status.WARN,
                f"sqlite: no database at {file} yet",
                "`framehook serve` creates and migrates it at start; or run `framehook db upgrade`",
            )
        ]
    try:
        engine = create_db_engine(settings.database_url, pool_size=1)
    except ModuleNotFoundError as exc:
        return [
            Check(
                "database",
                Status.FAIL,
                f"{dialect}: the driver is not installed ({exc})",
                "pip install 'framehook[postgres]'",
            )
        ]
    try:
        started = time.perf_counter()
        try:
            ping(engine)
        except SQLAlchemyError as exc:
            return [
                Check(
                    "database",
                    Status.FAIL,
                    f"{shown} does not answer: {_reason(exc)}",
                    "is the database server running and reachable from here? " + url_hint,
                )
            ]
        elapsed = (time.perf_counter() - started) * 1000
        answered = Check("database", Status.OK, f"{shown} answers ({elapsed:.0f} ms)")
        return [answered, _schema(engine, settings)]
    finally:
        engine.dispose()


def _schema(engine: Engine, settings: Settings) -> Check:
    try:
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        return Check(
            "schema",
            Status.FAIL,
            f"cannot read the schema revision: {_reason(exc)}",
            "the database user needs to read the alembic_version table",
        )
    if current == HEAD:
        return Check("schema", Status.OK, f"at revision {HEAD} (current)")
    scripts = ScriptDirectory(str(Path(receiver.db.migrations.__file__).parent))
    if current is not None and current not in {s.revision for s in scripts.walk_revisions()}:
        return Check(
            "schema",
            Status.FAIL,
            f"at revision {current}, unknown to this framehook (it ships up to {HEAD}): "
            "migrated by a newer version?",
            "run the framehook version that migrated this database",
        )
    state = "empty (no tables yet)" if current is None else f"at revision {current}, behind {HEAD}"
    auto = settings.is_sqlite if settings.auto_migrate is None else settings.auto_migrate
    if auto:
        return Check(
            "schema",
            Status.WARN,
            f"{state}: `framehook serve` migrates it at start",
            "or run `framehook db upgrade` now",
        )
    setting = "is off" if settings.auto_migrate is False else "is unset"
    return Check(
        "schema",
        Status.FAIL,
        f"{state}; `framehook serve` will not migrate it (FRAMEHOOK_AUTO_MIGRATE {setting})",
        "run `framehook db upgrade`, or set FRAMEHOOK_AUTO_MIGRATE=true to migrate at start",
    )
