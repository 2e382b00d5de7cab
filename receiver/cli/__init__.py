"""The ``framehook`` command: one Typer app, its commands in one module per concept.

- ``serve``: ``serve`` (the receiver) and ``worker``;
- ``jobs``: what the receiver recorded: ``jobs``, ``jobs show``, ``replay``, ``reconcile``,
  ``prune``;
- ``dev``: trying it out: ``send-test``, ``demo``, ``generate``, ``simulate``;
- ``fake``: ``fake-apiframe``, the fake Apiframe served on its own;
- ``db``: ``db upgrade``;
- ``credits``: what the jobs cost;
- ``doctor``: checking a deployment;
- ``config``: what they share (settings from the environment and flags, clean failures).

A database that is away, refusing us or missing its driver is one ``error:`` line whichever
command met it: :func:`main` turns what escaped the command into that line.

The commands are registered here, in the order ``framehook --help`` lists them. Importing this
package loads only Typer, Rich and the settings: each command imports what it alone needs
(uvicorn, Alembic, the fake Apiframe, the simulator) inside its body, so a ``framehook worker``
process does not carry them.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from receiver import __version__
from receiver.cli import credits, db, dev, doctor, fake, jobs, serve
from receiver.cli.config import database_problem, fail

__all__ = ["app", "main"]

app = typer.Typer(
    name="framehook",
    help="Receive, verify, store and act on Apiframe v2 webhooks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"framehook {__version__}")
        raise typer.Exit


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Receive, verify, store and act on Apiframe v2 webhooks."""


app.command("serve")(serve.serve)
app.command("worker")(serve.worker_command)
app.command("replay")(jobs.replay)
app.command("reconcile")(jobs.reconcile)
app.command("send-test")(dev.send_test)
app.command("demo")(dev.demo)
app.command("generate")(dev.generate)
app.command("simulate")(dev.simulate)
app.command("fake-apiframe")(fake.fake_apiframe)
app.command("prune")(jobs.prune)
app.command("credits")(credits.credits_command)
app.command("doctor")(doctor.doctor)
app.add_typer(db.db_app, name="db")
app.add_typer(jobs.jobs_app, name="jobs")


def main() -> None:
    """Console-script entry point: a database problem is one line and exit 2, not a traceback."""
    try:
        app(prog_name="framehook")
    except Exception as exc:
        message = database_problem(exc)
        if message is None:
            raise
        sys.exit(fail(message).exit_code)
