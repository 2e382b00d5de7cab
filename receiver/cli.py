"""The ``framehook`` command."""

from __future__ import annotations

import gc
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

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


def main() -> None:
    """Console-script entry point."""
    app(prog_name="framehook")


if __name__ == "__main__":  # pragma: no cover
    main()
