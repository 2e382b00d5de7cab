"""The long-running commands: ``framehook serve`` (receiver) and ``framehook worker``.

uvicorn and the ASGI app are imported inside ``serve`` only: a standalone worker never needs
them, and every module loaded before ``gc.freeze()`` stays in memory for the process's life.
"""

from __future__ import annotations

import gc
from typing import Annotated

import typer

from receiver.cli.config import err, fail, load_settings
from receiver.errors import FramehookError
from storage import StorageError, from_url

__all__ = ["serve", "worker_command"]


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
    from receiver.db.engine import normalize_url
    from receiver.logs import configure_logging
    from receiver.server import bounded_protocol

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
        raise fail(str(exc)) from None
    # Everything alive now (modules, models, settings) lives as long as the process: keep it
    # out of the cyclic GC's full collections, whose pauses otherwise set the tail latency
    # (bench/ack.py: p99 ~70 ms -> ~25 ms). Objects made later are collected as usual.
    gc.collect()
    gc.freeze()
    err.print(
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
        http=bounded_protocol(
            settings.header_timeout_seconds,
            settings.body_timeout_seconds,
            settings.max_connections,
        ),
    )


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
    from receiver.queue.process import run_worker_process

    settings = load_settings(
        database_url=database_url, log_level=log_level, worker_concurrency=concurrency
    )
    configure_logging(settings.resolved_log_format(), settings.log_level)
    try:
        from_url(settings.storage_url)
        asyncio.run(run_worker_process(settings))
    except (FramehookError, StorageError) as exc:
        raise fail(str(exc)) from None
