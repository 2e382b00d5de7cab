"""``framehook doctor``: print what ``receiver.doctor`` found, one line per check."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

__all__ = ["doctor"]

_NAME_WIDTH = 16
_MARKS = {"ok": "[green]ok  [/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}


def doctor(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the checks as JSON, for scripts and monitoring.")
    ] = False,
    apiframe: Annotated[
        bool,
        typer.Option(
            "--apiframe", help="Also ask Apiframe's job API whether it accepts the API key."
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds each network check may take.", min=0.1)
    ] = 5.0,
) -> None:
    """Check this deployment: configuration, API keys, database and schema, storage, handlers,
    public URL, forward endpoints (a signed ping) and admin token.

    One line per check (ok, warn or FAIL) with a hint for each problem; exits 1 if any check
    failed, else 0.
    """
    from receiver.doctor import Status, diagnose
    from receiver.logs import configure_logging

    # Whatever the checked code logs goes to standard error, and only when it matters: standard
    # output is the report (and with --json, a document a script parses).
    configure_logging("console" if sys.stderr.isatty() else "json", "warning")
    checks = diagnose(apiframe=apiframe, timeout=timeout)
    failed = any(c.status is Status.FAIL for c in checks)
    counts = {status.value: sum(c.status is status for c in checks) for status in Status}
    if as_json:
        report = {"ok": not failed, "counts": counts, "checks": [asdict(c) for c in checks]}
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        console = Console(highlight=False, soft_wrap=True)
        # Names line up in a column; a long one (a handler's module:attr) only pushes its line.
        width = min(max(len(c.name) for c in checks), _NAME_WIDTH)
        for check in checks:
            console.print(f"{_MARKS[check.status]}  {check.name:<{width}}  {escape(check.detail)}")
            if check.hint and check.status is not Status.OK:
                console.print(f"      {' ' * width}  [dim]hint: {escape(check.hint)}[/]")
        console.print(
            f"\n{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} FAIL"
            + (": framehook is not ready" if failed else "")
        )
    raise typer.Exit(1 if failed else 0)
