"""What every command shares: its settings (environment, ``.env``, flags) and a clean failure.

A command never shows a traceback for a mistake the user can fix: it prints one ``error:`` line
on standard error and exits 2 (usage, configuration) or 1 (the work itself failed).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from receiver.durations import parse_age
from receiver.settings import Settings

__all__ = ["age_option", "err", "fail", "load_settings"]

err = Console(stderr=True, highlight=False)
"""Standard error: progress and errors go here, so standard output stays the command's answer."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on standard error; return the exit to raise (``raise fail()``)."""
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``.env``, with CLI flags (not ``None``) on top.

    Raises:
        typer.Exit: (code 2) a setting is invalid; every problem is printed with its field.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise fail(f"invalid configuration: {problems}") from None


def age_option(text: str, option: str = "--since") -> timedelta:
    """An age given to ``option`` (``90s``, ``30m``, ``2h``, ``7d``), or a usage error naming it."""
    try:
        return parse_age(text)
    except ValueError as exc:
        raise fail(f"{option} {exc}") from None
