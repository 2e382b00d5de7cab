"""What every command shares: its settings (environment, ``.env``, flags) and a clean failure.

A command never shows a traceback for a mistake the user can fix: it prints one ``error:`` line
on standard error and exits 2 (usage, configuration) or 1 (the work itself failed). A problem
is named as the user wrote it: the environment variable (``FRAMEHOOK_PORT``) or the flag
(``--port``), never the settings field behind it.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from receiver.durations import parse_age
from receiver.settings import Settings, setting_variables, variable_for

__all__ = [
    "age_option",
    "database_failure",
    "database_problem",
    "err",
    "fail",
    "load_settings",
    "unknown_variables",
    "warn",
]

err = Console(stderr=True, highlight=False)
"""Standard error: progress and errors go here, so standard output stays the command's answer."""

# Flags whose name is not the setting's (``--concurrency`` sets ``worker_concurrency``).
_FLAGS = {
    "run_worker": "--worker",
    "worker_concurrency": "--concurrency",
    "apiframe_url": "--api-url",
}

# FRAMEHOOK_* names that are not settings: the test suite's and the benchmarks' own.
_NOT_SETTINGS = ("FRAMEHOOK_TEST_", "FRAMEHOOK_BENCH_")

# psycopg's words for a server it could not reach: `connection to server at "h" (ip), port 5432
# failed: Connection refused`, or `on socket "/run/postgresql/.s.PGSQL.5432" failed: ...`.
_UNREACHABLE = re.compile(
    r'connection to server (?:at "(?P<host>[^"]+)"(?: \([^)]*\))?, port (?P<port>\d+)'
    r'|on socket "(?P<socket>[^"]+)") failed: (?P<why>[^\n]+)'
)
_DRIVERS = {"psycopg": "postgres", "psycopg_binary": "postgres", "psycopg_c": "postgres"}


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on standard error; return the exit to raise (``raise fail()``).

    The message is printed as text, never as Rich markup (``framehook[s3]`` stays whole), on
    one line whatever the terminal's width.
    """
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def warn(message: str) -> None:
    """Print ``warning: message`` on standard error, as text, on one line."""
    err.print(f"[bold yellow]warning:[/] {escape(message)}", soft_wrap=True)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``.env``, with CLI flags (not ``None``) on top.

    Warns (one line each) about ``FRAMEHOOK_*`` variables that no setting reads.

    Raises:
        typer.Exit: (code 2) a setting is invalid; each problem names its variable or flag.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    for name, closest in unknown_variables([*os.environ, *_dotenv_names()]):
        hint = f" (did you mean {closest}?)" if closest else ""
        warn(f"{name} is not a framehook setting; it is ignored{hint}")
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(f"{_named(e['loc'], given)}: {e['msg']}" for e in exc.errors())
        raise fail(f"invalid {problems}") from None


def _named(loc: tuple[int | str, ...], given: Mapping[str, Any]) -> str:
    field = str(loc[0]) if loc else ""
    if not field:
        return "configuration"
    if field in given:
        return _FLAGS.get(field, "--" + field.replace("_", "-"))
    return variable_for(field)


def _dotenv_names() -> list[str]:
    # The settings read ``.env`` too: a typo there deserves the same warning.
    if not Path(".env").is_file():
        return []
    from dotenv import dotenv_values

    return list(dotenv_values(".env"))


def unknown_variables(names: Iterable[str]) -> list[tuple[str, str | None]]:
    """The ``FRAMEHOOK_*`` names in ``names`` that no setting reads, each with the closest real
    name (or ``None``), in order, once each.

    Known: :class:`~receiver.settings.Settings`' variables and the built-in handlers' options
    (``FRAMEHOOK_ASSET_*``, ``FRAMEHOOK_FORWARD_*``); the test suite's ``FRAMEHOOK_TEST_*``
    and the benchmarks' ``FRAMEHOOK_BENCH_*`` are left alone.
    """
    from handlers.download import DownloadOptions
    from handlers.forward import ForwardOptions

    known = setting_variables()
    for options in (DownloadOptions, ForwardOptions):
        prefix = str(options.model_config.get("env_prefix", ""))
        known |= {prefix + f.upper() for f in options.model_fields}
    unknown: list[tuple[str, str | None]] = []
    for name in dict.fromkeys(n.upper() for n in names):  # settings ignore case
        if not name.startswith("FRAMEHOOK_") or name.startswith(_NOT_SETTINGS) or name in known:
            continue
        closest = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        unknown.append((name, closest[0] if closest else None))
    return unknown


def database_problem(exc: BaseException) -> str | None:
    """One line saying why the database could not be used, naming what to change; ``None``
    when ``exc`` is not a database that is missing its driver, away or refusing us."""
    if isinstance(exc, ModuleNotFoundError) and exc.name in _DRIVERS:
        extra = _DRIVERS[exc.name]
        return (
            f"postgresql:// needs the PostgreSQL driver (psycopg), which is not installed: "
            f"pip install 'framehook[{extra}]'"
        )
    # OperationalError (server away, refused, bad password, no such database, SQLite cannot
    # open its file) and InterfaceError: the connection, not a statement, went wrong.
    from sqlalchemy.exc import InterfaceError, OperationalError

    if not isinstance(exc, OperationalError | InterfaceError):
        return None
    said = str(exc.orig if exc.orig is not None else exc)
    found = _UNREACHABLE.search(said)
    if found is None:
        first = said.strip().splitlines()[0] if said.strip() else type(exc).__name__
        return f"cannot use the database: {first} (check FRAMEHOOK_DATABASE_URL)"
    where = found["socket"] or f"{found['host']}:{found['port']}"
    why = found["why"].strip().rstrip(".")
    return (
        f"cannot connect to PostgreSQL at {where}: {why[:1].lower()}{why[1:]} "
        "(check FRAMEHOOK_DATABASE_URL, and that the server is running)"
    )


def database_failure(exc: Exception) -> typer.Exit:
    """:func:`fail` for a database error a command caught: why, in one line (exit 2 when the
    database cannot be used at all, 1 when a statement failed)."""
    problem = database_problem(exc)
    if problem is not None:
        return fail(problem)
    said = str(exc.args[0] if exc.args else exc).strip()
    first = said.splitlines()[0] if said else ""
    return fail(f"database error: {type(exc).__name__}{': ' if first else ''}{first}", code=1)


def age_option(text: str, option: str = "--since") -> timedelta:
    """An age given to ``option`` (``90s``, ``30m``, ``2h``, ``7d``), or a usage error naming it."""
    try:
        return parse_age(text)
    except ValueError as exc:
        raise fail(f"{option} {exc}") from None
