"""``framehook db``: the database schema (Alembic, which only these commands import)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from receiver.cli.config import database_failure, err, fail, load_settings
from receiver.errors import FramehookError

__all__ = ["db_app", "db_upgrade"]

db_app = typer.Typer(help="Manage framehook's database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply schema migrations (safe to run from several processes at once)."""
    from sqlalchemy.exc import SQLAlchemyError

    from receiver.db.engine import create_db_engine
    from receiver.db.schema import current_revision, upgrade

    settings = load_settings(database_url=database_url)
    try:
        engine = create_db_engine(settings.database_url, pool_size=1)
        before = current_revision(engine)
        upgrade(engine, revision)
        after = current_revision(engine)
    except FramehookError as exc:
        raise fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise database_failure(exc) from None
    err.print(f"schema at revision {escape(str(after))} (was {escape(str(before or 'empty'))})")
    engine.dispose()
