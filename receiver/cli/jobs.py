"""Commands on what the receiver recorded: ``jobs``, ``jobs show``, ``replay``, ``reconcile``
and ``prune``.

Each opens a short-lived engine on the configured database (one connection), does its work and
disposes of it; the admin tables, reconciliation and retention code load only when asked for.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from receiver.cli.config import age_option, database_failure, err, fail, load_settings
from receiver.errors import FramehookError
from receiver.intake.job_state import JobStatus

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from receiver.admin.queries import Page

__all__ = ["jobs", "jobs_app", "jobs_show", "prune", "reconcile", "replay"]

_T = TypeVar("_T")
_JOB_STATUSES = tuple(s.value for s in JobStatus)


def replay(
    task: Annotated[int | None, typer.Option(help="Re-queue this task.")] = None,
    job: Annotated[str | None, typer.Option(help="Re-run this job's finished tasks.")] = None,
    dead: Annotated[bool, typer.Option("--dead", help="Re-queue every dead task.")] = False,
    handler: Annotated[str | None, typer.Option(help="Only this handler's tasks.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
) -> None:
    """Queue tasks again: one (--task), a job's (--job) or all dead ones (--dead)."""
    from sqlalchemy.exc import SQLAlchemyError

    from receiver.db.engine import create_db_engine
    from receiver.queue.replay import replay_dead, replay_job, retry_task

    if sum((task is not None, job is not None, dead)) != 1:
        raise fail("say exactly one of --task ID, --job ID or --dead")
    if task is not None and handler is not None:
        raise fail("--handler goes with --job or --dead, not --task")
    settings = load_settings(database_url=database_url)
    try:
        engine = create_db_engine(settings.database_url, pool_size=1)
        if task is not None:
            count = int(retry_task(engine, task))
        elif job is not None:
            count = replay_job(engine, job, handler)
        else:
            count = replay_dead(engine, handler)
        engine.dispose()
    except FramehookError as exc:
        raise fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise database_failure(exc) from None
    if task is not None and not count:
        raise fail(f"task {task} not re-queued: no such task, or it is running or waiting", code=1)
    err.print(f"re-queued {count} task{'s' if count != 1 else ''}")


def reconcile(
    since: Annotated[
        str | None,
        typer.Option(help="Also walk Apiframe's job list back this far (90s, 30m, 2h, 7d)."),
    ] = None,
    api_url: Annotated[
        str | None, typer.Option(help="Apiframe's API (default: https://api.apiframe.ai).")
    ] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
) -> None:
    """Ask Apiframe's job API about unfinished jobs (and, with --since, jobs never heard of);
    what it says is recorded like a webhook, and handlers run as usual."""
    from rich.table import Table

    from receiver.apiframe.client import ApiframeError
    from receiver.services import reconcile_once

    window = age_option(since) if since is not None else None
    settings = load_settings(database_url=database_url, apiframe_url=api_url)
    try:
        report = asyncio.run(reconcile_once(settings, window))
    except ApiframeError as exc:
        raise fail(f"Apiframe's API: {exc}", code=1) from None
    except FramehookError as exc:
        raise fail(str(exc)) from None
    table = Table("outcome", "jobs", title="reconciliation")
    for outcome, count in sorted(report.outcomes.items()):
        table.add_row(outcome, str(count))
    Console().print(table)
    if report.outcomes.get("error"):
        raise typer.Exit(1)


def prune(
    older_than: Annotated[
        str, typer.Option(help="Prune what is older than this (90s, 30m, 2h, 7d).")
    ] = "30d",
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
) -> None:
    """Drop raw bodies and finished tasks older than --older-than; the dedupe ledger, jobs,
    deliveries and dead tasks are kept.

    It works in short batches, so a running receiver keeps answering; progress goes to
    standard error, and Ctrl-C stops it after the batch it is in, keeping what it did."""
    import signal
    import threading
    import time

    from sqlalchemy.exc import SQLAlchemyError

    from receiver.db.checkpoints import Checkpointer
    from receiver.db.engine import create_db_engine
    from receiver.db.retention import Pruned
    from receiver.db.retention import prune as prune_old

    age = age_option(older_than, "--older-than")
    settings = load_settings(database_url=database_url)
    stop = threading.Event()
    shown = time.monotonic()

    def show(done: Pruned) -> None:
        nonlocal shown
        if time.monotonic() - shown >= 1.0:
            shown = time.monotonic()
            err.print(f"pruning: {done.bodies} bodies, {done.tasks} tasks so far")

    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        engine = create_db_engine(settings.database_url, pool_size=1)
        # Standalone, nothing else checkpoints the SQLite WAL, which would grow by every page
        # the prune rewrites; with ``serve`` running, two checkpointers do no harm.
        checkpointer = Checkpointer(engine) if engine.dialect.name == "sqlite" else None
        if checkpointer is not None:
            checkpointer.start()
        try:
            pruned = prune_old(engine, age, progress=show, stop=stop)
        finally:
            if checkpointer is not None:
                checkpointer.stop()
            engine.dispose()
    except FramehookError as exc:
        raise fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise database_failure(exc) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    summary = f"{pruned.bodies} bodies, {pruned.tasks} tasks ({pruned.attempts} attempts)"
    if stop.is_set():
        err.print(f"interrupted: pruned {summary}; what was pruned stays pruned")
        raise typer.Exit(130)
    err.print(f"pruned {summary}")


jobs_app = typer.Typer(help="List jobs, or show one job's timeline, from framehook's database.")


def _read_database(database_url: str | None, work: Callable[[Connection], _T]) -> _T:
    """Run ``work(connection)`` in one read transaction on the configured database."""
    from sqlalchemy.exc import SQLAlchemyError

    from receiver.db.engine import create_db_engine, normalize_url

    settings = load_settings(database_url=database_url)
    try:
        url = normalize_url(settings.database_url)
        file = url.database if url.get_backend_name() == "sqlite" else None
        # Connecting would create an empty SQLite file: a reader must not leave one behind.
        if file and file != ":memory:" and not Path(file).exists():
            raise fail(f"no database at {file} (FRAMEHOOK_DATABASE_URL, --database-url)")
        engine = create_db_engine(settings.database_url, pool_size=1)
        try:
            with engine.connect() as connection, connection.begin():
                return work(connection)
        finally:
            engine.dispose()
    except FramehookError as exc:
        raise fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise database_failure(exc) from None


_JSON_HELP = "Print the admin API's JSON for it (one document), not a table."


@jobs_app.callback(invoke_without_command=True)
def jobs(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(help=f"{', '.join(_JOB_STATUSES[:-1])} or {_JOB_STATUSES[-1]}."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Only this model's jobs.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only jobs created this recently (90s, 30m, 2h, 7d).")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1, max=200)] = 20,
    cursor: Annotated[
        str | None, typer.Option(help="Continue after this page (the JSON's nextCursor).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help=_JSON_HELP)] = False,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
) -> None:
    """List jobs newest first: id, model, status, progress, files captured (stored/expected:
    4/4, a shortfall such as 0/2 in red, — while nothing is expected), age.

    In a pipe, one tab-separated line per job, nothing cut: id, model, status, progress,
    captured, created (ISO 8601). With --json, GET /api/jobs's page: {items, nextCursor}.

    `framehook jobs show ID` prints one job's whole timeline.
    """
    if ctx.invoked_subcommand is not None:
        return
    from datetime import UTC, datetime

    from receiver.admin.paging import decode_cursor, encode_cursor
    from receiver.admin.queries import JobFilter, list_jobs
    from receiver.cli.tables import jobs_lines, jobs_table, print_json, stdout_console

    wanted = None if status is None else status.upper()
    if wanted is not None and wanted not in _JOB_STATUSES:
        raise fail(f"--status {status!r}: say one of {', '.join(_JOB_STATUSES)}")
    try:
        after = decode_cursor(cursor, "jobs", (datetime, str))
    except FramehookError:
        raise fail(f"--cursor {cursor!r}: not a nextCursor of framehook jobs --json") from None
    now = datetime.now(UTC)
    where = JobFilter(wanted, model, now - age_option(since) if since is not None else None)

    page: Page = _read_database(database_url, lambda c: list_jobs(c, where, limit, after))
    more = None if page.next_key is None else encode_cursor("jobs", page.next_key)
    if as_json:
        print_json({"items": list(page.items), "nextCursor": more})
        return
    # Notes go to standard error: in a pipe, standard output is the jobs alone.
    if not page.items:
        err.print("no jobs" + (" match" if status or model or since or cursor else " yet"))
        return
    console = stdout_console()
    if not console.is_terminal:
        sys.stdout.write(jobs_lines(page.items))
    else:
        console.print(jobs_table(page.items, now))
    if more is not None:
        err.print(f"[dim]newest {limit} shown; --limit for more, or --cursor {more}[/]")


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job's id.")],
    full: Annotated[
        bool, typer.Option("--full", help="Print every error whole, each attempt's too.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help=_JSON_HELP)] = False,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
) -> None:
    """One job's timeline: its state and files captured, every delivery and its outcome, the
    handler tasks with each attempt, their errors (each distinct one once, with how many
    attempts and which files it hit; cut to a line unless --full), and the captured files.

    With --json, GET /api/jobs/ID's answer, without the assets' contentUrl (a signed link
    needs the server's admin token).
    """
    from receiver.admin.queries import job_timeline
    from receiver.cli.tables import print_json, stdout_console, timeline

    found = _read_database(database_url, lambda connection: job_timeline(connection, job_id))
    if found is None:
        raise fail(f"no job {job_id!r} in the database", code=1)
    if as_json:
        print_json(found)
        return
    stdout_console().print(timeline(found, full=full))
