"""``framehook credits``: what the recorded jobs cost, per model or per UTC day."""

from __future__ import annotations

from typing import Annotated

import typer

from receiver.cli.config import fail, load_settings
from receiver.cli.jobs import _duration
from receiver.errors import FramehookError

__all__ = ["credits_command"]


def credits_command(
    since: Annotated[
        str | None, typer.Option(help="Only jobs that ended this recently (90s, 30m, 2h, 7d).")
    ] = None,
    by: Annotated[str, typer.Option(help="Group by model or day (UTC).")] = "model",
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
) -> None:
    """Credits charged by completed jobs (failed ones are refunded), with a total."""
    from sqlalchemy.exc import SQLAlchemyError

    from receiver.credits import run_credits

    if by not in ("model", "day"):
        raise fail(f"--by {by!r}: expected model or day")
    age = None if since is None else _duration(since)
    settings = load_settings(database_url=database_url)
    try:
        typer.echo(run_credits(settings, age, by), nl=False)
    except (FramehookError, ValueError) as exc:
        raise fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise fail(f"database error: {exc.__class__.__name__}") from None
