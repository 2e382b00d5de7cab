"""The ``framehook`` command."""

from __future__ import annotations

import asyncio
import gc
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from receiver.errors import FramehookError
from receiver.settings import Settings
from storage import StorageError, from_url

__all__ = ["app", "main"]

app = typer.Typer(
    name="framehook",
    help="Receive, verify, store and act on Apiframe v2 webhooks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Manage framehook's database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

_err = Console(stderr=True, highlight=False)


def _fail(message: str, code: int = 2) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``.env``, with CLI flags (not ``None``) on top."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise _fail(f"invalid configuration: {problems}") from None


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default: 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default: 8000).")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
    proxy_headers: Annotated[
        bool | None,
        typer.Option(
            "--proxy-headers/--no-proxy-headers",
            help="Trust X-Forwarded-For/-Proto from --forwarded-allow-ips (proxy, tunnel).",
        ),
    ] = None,
    forwarded_allow_ips: Annotated[
        str | None, typer.Option(help="Proxies trusted for proxy headers ('*' for any).")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error.")] = None,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Run a worker in this process (--no-worker for receiver-only replicas).",
        ),
    ] = True,
) -> None:
    """Run the webhook receiver (uvicorn), with an embedded worker by default."""
    import uvicorn

    from receiver.app import create_app
    from receiver.database import normalize_url
    from receiver.logs import configure_logging

    settings = load_settings(
        host=host,
        port=port,
        database_url=database_url,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        log_level=log_level,
        run_worker=None if worker else False,
    )
    configure_logging(settings.resolved_log_format(), settings.log_level)
    try:
        normalize_url(settings.database_url)
        from_url(settings.storage_url)
        asgi = create_app(settings)
    except (FramehookError, StorageError) as exc:
        raise _fail(str(exc)) from None
    # Everything alive now (modules, models, settings) lives as long as the process: keep it
    # out of the cyclic GC's full collections, whose pauses otherwise set the tail latency
    # (bench/ack.py: p99 ~70 ms -> ~25 ms). Objects made later are collected as usual.
    gc.collect()
    gc.freeze()
    _err.print(
        f"framehook: Apiframe webhooks to [bold]POST http://{settings.host}:{settings.port}"
        "/webhooks/apiframe[/]"
    )
    uvicorn.run(
        asgi,
        host=settings.host,
        port=settings.port,
        proxy_headers=settings.proxy_headers,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=30,
    )


@app.command("worker")
def worker_command(
    concurrency: Annotated[
        int | None, typer.Option(help="Handler runs at once (default: 8).", min=1)
    ] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error.")] = None,
) -> None:
    """Run a standalone worker (scale-out: as many as you like, on any machine)."""
    import asyncio

    from receiver.logs import configure_logging
    from receiver.standalone import run_worker_process

    settings = load_settings(
        database_url=database_url, log_level=log_level, worker_concurrency=concurrency
    )
    configure_logging(settings.resolved_log_format(), settings.log_level)
    try:
        from_url(settings.storage_url)
        asyncio.run(run_worker_process(settings))
    except (FramehookError, StorageError) as exc:
        raise _fail(str(exc)) from None


@app.command()
def replay(
    task: Annotated[int | None, typer.Option(help="Re-queue this task.")] = None,
    job: Annotated[str | None, typer.Option(help="Re-run this job's finished tasks.")] = None,
    dead: Annotated[bool, typer.Option("--dead", help="Re-queue every dead task.")] = False,
    handler: Annotated[str | None, typer.Option(help="Only this handler's tasks.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
) -> None:
    """Queue tasks again: one (--task), a job's (--job) or all dead ones (--dead)."""
    from sqlalchemy.exc import SQLAlchemyError

    from receiver.database import create_db_engine
    from receiver.replay import replay_dead, replay_job, retry_task

    if sum((task is not None, job is not None, dead)) != 1:
        raise _fail("say exactly one of --task ID, --job ID or --dead")
    if task is not None and handler is not None:
        raise _fail("--handler goes with --job or --dead, not --task")
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
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _fail(f"database error: {exc.__class__.__name__}") from None
    if task is not None and not count:
        raise _fail(f"task {task} not re-queued: no such task, or it is running now", code=1)
    _err.print(f"re-queued {count} task{'s' if count != 1 else ''}")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str, option: str = "--since") -> timedelta:
    """``90s``, ``30m``, ``2h``, ``7d`` (a bare number is seconds)."""
    value = text.strip().lower()
    unit = value[-1] if value and value[-1] in _UNITS else "s"
    number = value[:-1] if value and value[-1] in _UNITS else value
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        raise _fail(f"{option} {text!r}: expected a duration such as 90s, 30m, 2h or 7d") from None
    if seconds < 0:
        raise _fail(f"{option} {text!r}: must not be negative")
    return timedelta(seconds=seconds)


@app.command()
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
    from receiver.apiframe import ApiframeError
    from receiver.runner import reconcile_once

    window = _duration(since) if since is not None else None
    settings = load_settings(database_url=database_url, apiframe_url=api_url)
    try:
        report = asyncio.run(reconcile_once(settings, window))
    except ApiframeError as exc:
        raise _fail(f"Apiframe's API: {exc}", code=1) from None
    except FramehookError as exc:
        raise _fail(str(exc)) from None
    table = Table("outcome", "jobs", title="reconciliation")
    for outcome, count in sorted(report.outcomes.items()):
        table.add_row(outcome, str(count))
    Console().print(table)
    if report.outcomes.get("error"):
        raise typer.Exit(1)


jobs_app = typer.Typer(help="List jobs, or show one job's timeline, from framehook's database.")
app.add_typer(jobs_app, name="jobs")


def _read_database(database_url: str | None, work: Any) -> Any:
    """Run ``work(connection)`` in one read transaction on the configured database."""
    from sqlalchemy.exc import SQLAlchemyError

    from receiver.database import create_db_engine, normalize_url

    settings = load_settings(database_url=database_url)
    try:
        url = normalize_url(settings.database_url)
        file = url.database if url.get_backend_name() == "sqlite" else None
        if file and file != ":memory:" and not Path(file).exists():
            raise _fail(f"no database at {file} (FRAMEHOOK_DATABASE_URL, --database-url)")
        engine = create_db_engine(settings.database_url, pool_size=1)
        try:
            with engine.connect() as connection, connection.begin():
                return work(connection)
        finally:
            engine.dispose()
    except FramehookError as exc:
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _fail(f"database error: {exc.__class__.__name__}") from None


@jobs_app.callback(invoke_without_command=True)
def jobs(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="QUEUED, PROCESSING, COMPLETED, FAILED or CANCELLED.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Only this model's jobs.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only jobs created this recently (90s, 30m, 2h, 7d).")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1, max=200)] = 20,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
) -> None:
    """List jobs newest first: id, model, status, progress, files captured, age.

    `framehook jobs show ID` prints one job's whole timeline.
    """
    if ctx.invoked_subcommand is not None:
        return
    from datetime import UTC, datetime

    from receiver.admin.queries import JOB_STATUSES, JobFilter, asset_counts, list_jobs
    from receiver.admin.tables import jobs_table

    wanted = None if status is None else status.upper()
    if wanted is not None and wanted not in JOB_STATUSES:
        raise _fail(f"--status {status!r}: say one of {', '.join(JOB_STATUSES)}")
    now = datetime.now(UTC)
    where = JobFilter(wanted, model, now - _duration(since) if since is not None else None)

    def read(connection: Any) -> Any:
        page = list_jobs(connection, where, limit)
        return page, asset_counts(connection, [j["id"] for j in page.items])

    page, files = _read_database(database_url, read)
    console = Console()
    if not page.items:
        console.print("no jobs" + (" match" if status or model or since else " yet"))
        return
    console.print(jobs_table(page.items, files, now))
    if page.next_key is not None:
        console.print(f"[dim]newest {limit} shown; --limit for more[/]")


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job's id.")],
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
) -> None:
    """One job's timeline: its state, every delivery and its outcome, the handler tasks with
    each attempt and error, and the captured files."""
    from receiver.admin.queries import job_timeline
    from receiver.admin.tables import timeline

    found = _read_database(database_url, lambda connection: job_timeline(connection, job_id))
    if found is None:
        raise _fail(f"no job {job_id!r} in the database", code=1)
    Console().print(timeline(found))


@app.command("send-test")
def send_test(
    event: Annotated[str, typer.Argument(metavar="EVENT", help="progress, completed or failed.")],
    url: Annotated[
        str | None,
        typer.Option(
            help="Where to POST (default: http://FRAMEHOOK_HOST:FRAMEHOOK_PORT/webhooks/apiframe)."
        ),
    ] = None,
    modality: Annotated[
        str,
        typer.Option(help="image, upscale, midjourney, video, midjourney-video, music or stems."),
    ] = "midjourney",
    model: Annotated[
        str | None, typer.Option(help="The job's model (default: the modality's usual one).")
    ] = None,
    job_id: Annotated[str | None, typer.Option(help="The job's id (default: a new UUID).")] = None,
    progress: Annotated[
        int | None,
        typer.Option(help="A progress event's percentage (default: 45).", min=0, max=100),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="The key to sign with (default: APIFRAME_API_KEY).")
    ] = None,
    asset_base_url: Annotated[
        str | None,
        typer.Option(help="Where the result's URLs point (default: https://cdn2.apiframe.ai)."),
    ] = None,
    repeat: Annotated[
        int, typer.Option(help="Send the same bytes this many times (a redelivery).", min=1)
    ] = 1,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.", min=0.1)] = 10,
) -> None:
    """Sign and POST a realistic Apiframe webhook to a receiver, like `stripe trigger`.

    Prints each answer's status and JSON; exits 0 if every answer was 2xx, else 1.
    """
    import json
    import uuid

    import httpx
    from rich.markup import escape

    from receiver.fakeapi import CDN_BASE_URL, sample_webhook, signature

    if event not in ("progress", "completed", "failed"):
        raise _fail(f"unknown event {event!r}: say progress, completed or failed")
    if progress is not None and event != "progress":
        raise _fail("--progress goes with the progress event")
    try:
        job_id = None if job_id is None else str(uuid.UUID(job_id))
    except ValueError:
        raise _fail(f"--job-id {job_id!r} is not a UUID (Apiframe's job ids are)") from None
    settings = load_settings()
    key = api_key or next(iter(settings.signing_api_keys()), None)
    if not key:
        raise _fail("no API key to sign with: pass --api-key or set APIFRAME_API_KEY")
    if url is None:
        # A server bound to every interface is reached on loopback.
        any_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104
        host = any_host.get(settings.host, settings.host)
        url = f"http://{f'[{host}]' if ':' in host else host}:{settings.port}/webhooks/apiframe"
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise _fail(f"--url {url!r} is not a URL: {exc}") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise _fail(f"--url {url!r} is not an http(s) URL")
    try:
        payload = sample_webhook(
            event,
            modality,
            model=model,
            job_id=job_id,
            progress=progress,
            asset_base_url=asset_base_url or CDN_BASE_URL,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "framehook-send-test",
        "X-Webhook-Event": event,
        "X-Webhook-Signature": signature(body, key),
    }
    _err.print(
        f"POST {escape(url)}: {event} of job {payload['jobId']} ({payload['model']})",
        soft_wrap=True,
    )
    all_ok = True
    with httpx.Client(timeout=timeout) as client:
        for _ in range(repeat):
            try:
                response = client.post(target, content=body, headers=headers)
            except httpx.ConnectError as exc:
                raise _fail(f"could not connect to {url} ({exc}): is it running?", 1) from None
            except httpx.HTTPError as exc:
                raise _fail(f"no answer from {url}: {type(exc).__name__}: {exc}", 1) from None
            typer.echo(f"{response.status_code} {response.reason_phrase}")
            try:
                typer.echo(json.dumps(response.json(), indent=2))
            except ValueError:
                typer.echo(response.text)
            all_ok = all_ok and response.is_success
    if not all_ok:
        raise typer.Exit(1)


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo's database and files go.")
    ] = Path("framehook-demo"),
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every job and its files.", min=1)
    ] = 120,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Keep both servers up afterwards (Ctrl-C).")
    ] = False,
    step_seconds: Annotated[
        float, typer.Option(help="The fake Apiframe's seconds between a job's steps.", min=0)
    ] = 0.3,
) -> None:
    """Everything offline in one command: a fake Apiframe, the receiver, a few jobs, their files.

    No API key needed. Exits 0 when every job ended as planned with its files on disk.
    """
    from receiver.demo import run_demo

    code = run_demo(
        directory, timeout=timeout, keep_running=keep_running, step_seconds=step_seconds
    )
    if code:
        raise typer.Exit(code)


@app.command()
def generate(
    route: Annotated[
        str, typer.Argument(metavar="ROUTE", help="images/generate, videos/generate, ...")
    ],
    model: Annotated[str | None, typer.Option(help="The model (e.g. midjourney).")] = None,
    prompt: Annotated[str | None, typer.Option(help="The prompt.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KEY=VALUE", help="Another request field (a JSON value or text); repeatable."
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(help="This receiver's public address, a tunnel's (FRAMEHOOK_PUBLIC_URL)."),
    ] = None,
    api_url: Annotated[
        str | None, typer.Option(help="Apiframe's API (FRAMEHOOK_APIFRAME_URL).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="The receiver's database (FRAMEHOOK_DATABASE_URL).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to follow the job.", min=1)] = 900,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the job, or only submit it.")
    ] = True,
) -> None:
    """Submit a job to Apiframe and follow it live until its files are stored.

    The webhooks go to --public-url + /webhooks/apiframe, where `framehook serve` records
    them. Exits 0 when the job completed with its files, 1 if it failed or timed out.
    """
    from receiver.database import normalize_url
    from receiver.generate import Follow, UsageProblem, build_request, run_generate

    settings = load_settings(public_url=public_url, apiframe_url=api_url, database_url=database_url)
    key = next(iter(settings.signing_api_keys()), None)
    if not key:
        raise _fail("no API key: set APIFRAME_API_KEY to your Apiframe key")
    try:
        normalize_url(settings.database_url)
        request = build_request(
            route, model=model, prompt=prompt, params=param or [], public_url=settings.public_url
        )
    except (FramehookError, UsageProblem) as exc:
        raise _fail(str(exc)) from None
    code = run_generate(settings, key, request, Follow(timeout) if wait else None)
    if code:
        raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade(
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply schema migrations (safe to run from several processes at once)."""
    from sqlalchemy.exc import SQLAlchemyError

    from receiver.database import create_db_engine
    from receiver.schema import current_revision, upgrade

    settings = load_settings(database_url=database_url)
    try:
        engine = create_db_engine(settings.database_url, pool_size=1)
        before = current_revision(engine)
        upgrade(engine, revision)
        after = current_revision(engine)
    except FramehookError as exc:
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _fail(
            f"database error: {exc.__class__.__name__}: {exc.args[0] if exc.args else exc}"
        ) from None
    _err.print(f"schema at revision {after} (was {before or 'empty'})")
    engine.dispose()


@app.command()
def simulate(
    jobs: Annotated[int, typer.Option(help="How many jobs.", min=1, max=10_000)] = 30,
    duplicates: Annotated[float, typer.Option(help="Share of webhooks sent twice.")] = 0.2,
    reorder: Annotated[float, typer.Option(help="Share of webhooks sent out of order.")] = 0.2,
    drops: Annotated[float, typer.Option(help="Share of webhooks never sent.")] = 0.1,
    delays: Annotated[float, typer.Option(help="Share of webhooks sent late.")] = 0.1,
    failures: Annotated[float, typer.Option(help="Share of jobs that fail.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of every random choice (repeatable runs).")] = 0,
    step_seconds: Annotated[float, typer.Option(help="The fake's time per job step.")] = 0.05,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Keep the database and files here.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for agreement.")] = 120.0,
) -> None:
    """Run jobs through a misbehaving fake Apiframe into a receiver of its own; print
    expected against actual final states and files; exit 1 on any mismatch."""
    from receiver.simulate import Chaos, run_simulation

    for name, rate in (
        ("duplicates", duplicates),
        ("reorder", reorder),
        ("drops", drops),
        ("delays", delays),
        ("failures", failures),
    ):
        if not 0.0 <= rate <= 1.0:
            raise _fail(f"--{name} {rate}: a share between 0 and 1")
    chaos = Chaos(duplicates, reorder, drops, delays, failures, step_seconds, seed)
    code = run_simulation(jobs, chaos, directory=directory, timeout=timeout)
    raise typer.Exit(code)


@app.command()
def prune(
    older_than: Annotated[
        str, typer.Option(help="Prune what is older than this (90s, 30m, 2h, 7d).")
    ] = "30d",
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL.")] = None,
) -> None:
    """Drop raw bodies and finished tasks older than --older-than; the dedupe ledger, jobs,
    deliveries and dead tasks are kept."""
    from sqlalchemy.exc import SQLAlchemyError

    from receiver.database import create_db_engine
    from receiver.retention import prune as prune_old

    age = _duration(older_than, "--older-than")
    settings = load_settings(database_url=database_url)
    try:
        engine = create_db_engine(settings.database_url, pool_size=1)
        pruned = prune_old(engine, age)
        engine.dispose()
    except FramehookError as exc:
        raise _fail(str(exc)) from None
    except SQLAlchemyError as exc:
        raise _fail(f"database error: {exc.__class__.__name__}") from None
    _err.print(f"pruned {pruned.bodies} bodies, {pruned.tasks} tasks ({pruned.attempts} attempts)")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="framehook")


if __name__ == "__main__":  # pragma: no cover
    main()
