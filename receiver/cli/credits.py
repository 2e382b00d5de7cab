"""``framehook credits``: what the recorded jobs cost, per model or per UTC day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from receiver.cli.config import age_option, database_failure, fail, load_settings
from receiver.errors import FramehookError

if TYPE_CHECKING:
    from receiver.credits import CreditTotals
    from receiver.settings import Settings

__all__ = ["credits_command", "read_credits", "render_credits", "run_credits"]


def credits_command(
    since: Annotated[
        str | None, typer.Option(help="Only jobs that ended this recently (90s, 30m, 2h, 7d).")
    ] = None,
    by: Annotated[str, typer.Option(help="Group by model or day (UTC).")] = "model",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print GET /api/credits's JSON, not a table.")
    ] = False,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
) -> None:
    """Credits charged by completed jobs (failed ones are refunded), with a total.

    Test jobs (`framehook send-test`) count nothing and are left out."""
    from sqlalchemy.exc import SQLAlchemyError

    from receiver.admin.views import credits_view
    from receiver.cli.tables import print_json

    if by not in ("model", "day"):
        raise fail(f"--by {by!r}: expected model or day")
    age = None if since is None else age_option(since)
    settings = load_settings(database_url=database_url)
    try:
        totals = read_credits(settings, age, by)
        if as_json:
            print_json(credits_view(totals))
        else:
            typer.echo(render_credits(totals), nl=False)
    except (FramehookError, ValueError) as exc:
        raise fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise database_failure(exc) from None


def _amount(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def render_credits(totals: CreditTotals) -> str:
    """The ledger as a plain-text table, with a total line (what ``framehook credits`` prints)."""
    window = f" since {totals.since:%Y-%m-%d %H:%M} UTC" if totals.since is not None else ""
    if not totals.rows:
        return f"no completed or failed jobs{window}\n"
    header = (totals.by.upper(), "COMPLETED", "FAILED", "CREDITS")
    lines = [
        (r.key or "(unknown)", str(r.completed), str(r.failed), _amount(r.credits))
        for r in totals.rows
    ]
    total = totals.total
    lines.append(("total", str(total.completed), str(total.failed), _amount(total.credits)))
    width = [max(len(row[n]) for row in (header, *lines)) for n in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(width[0])
        rest = "  ".join(c.rjust(w) for c, w in zip(cells[1:], width[1:], strict=True))
        return f"{first}  {rest}"

    rule = "-" * len(line(header))
    body = [line(header), *(line(c) for c in lines[:-1]), rule, line(lines[-1])]
    return "\n".join(body) + f"\n\ncredits charged by jobs that ended{window or ' (all time)'}\n"


def run_credits(settings: Settings, since: timedelta | None = None, by: str = "model") -> str:
    """``framehook credits [--since 7d] [--by model|day]``: the ledger of the configured
    database (``FRAMEHOOK_DATABASE_URL``) as the table to print (see :func:`read_credits`)."""
    return render_credits(read_credits(settings, since, by))


def read_credits(
    settings: Settings, since: timedelta | None = None, by: str = "model"
) -> CreditTotals:
    """The ledger of the configured database (``FRAMEHOOK_DATABASE_URL``).

    Args:
        settings: the configuration (only ``database_url`` is used).
        since: how far back to look; everything when ``None``.
        by: ``model`` or ``day``.

    Raises:
        ValueError: ``by`` is neither ``model`` nor ``day``, or ``since`` is negative.
        sqlalchemy.exc.SQLAlchemyError: the database cannot be read.
    """
    from receiver.credits import credit_totals, grouping
    from receiver.db.engine import create_db_engine

    grouped = grouping(by)
    if since is not None and since < timedelta(0):
        raise ValueError("--since must not be negative")
    start = None if since is None else datetime.now(UTC) - since
    engine = create_db_engine(settings.database_url, pool_size=1)
    try:
        with engine.connect() as connection:
            totals = credit_totals(connection, start, grouped)
    finally:
        engine.dispose()
    return totals
