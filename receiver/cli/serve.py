"""The long-running commands: ``framehook serve`` (receiver) and ``framehook worker``.

uvicorn and the ASGI app are imported inside ``serve`` only: a standalone worker never needs
them, and every module loaded before ``gc.freeze()`` stays in memory for the process's life.
"""

from __future__ import annotations

import errno
import gc
import logging
import signal
import socket
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from receiver.cli.config import err, fail, load_settings
from receiver.cli.tunnel import TunnelKind, tunneled
from receiver.errors import FramehookError
from receiver.settings import Settings
from storage import LocalStorage, StorageError, from_url, probe

if TYPE_CHECKING:
    import uvicorn

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
    tunnel: Annotated[
        TunnelKind | None,
        typer.Option(
            help="Start this tunnel client to the receiver and use its public URL as "
            "FRAMEHOOK_PUBLIC_URL (trusting its proxy headers from loopback).",
        ),
    ] = None,
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
    except (FramehookError, StorageError) as exc:
        raise fail(str(exc)) from None
    # The port first: a server already there is found before any migration or worker runs.
    sock = _bind(settings.host, settings.port)
    settings = settings.model_copy(update={"port": sock.getsockname()[1]})  # --port 0
    _check_database(settings)
    _check_storage(settings)
    # After the bind (the tunnel needs the port) and before the app (it gets the public URL).
    with tunneled(tunnel, settings) as settings:
        try:
            asgi = create_app(settings)
        except (FramehookError, StorageError) as exc:
            raise fail(str(exc)) from None
        # Everything alive now (modules, models, settings) lives as long as the process: keep it
        # out of the cyclic GC's full collections, whose pauses otherwise set the tail latency
        # (bench/ack.py: p99 ~70 ms -> ~25 ms). Objects made later are collected as usual.
        gc.collect()
        gc.freeze()
        shown = f"[{settings.host}]" if ":" in settings.host else settings.host
        err.print(
            f"framehook: Apiframe webhooks to [bold]POST http://{escape(shown)}:"
            f"{settings.port}/webhooks/apiframe[/]",
            soft_wrap=True,
        )
        config = uvicorn.Config(
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
        try:
            _server_class()(config).run(sockets=[sock])
        except KeyboardInterrupt:
            # uvicorn re-raises the Ctrl-C it shut down for, once it has (twice: it hurried).
            raise typer.Exit(130) from None
        finally:
            sock.close()


def _server_class() -> type[uvicorn.Server]:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, but a second Ctrl-C during the graceful shutdown stops at once,
        quietly.

        uvicorn's own "force quit" leaves the open requests and the worker's tasks to be
        cancelled as the event loop closes, and logs a traceback for each. Nothing is lost
        by cutting them short: a webhook is acknowledged only once it is committed (Apiframe
        sends an unacknowledged one again), and a task whose handler was interrupted is
        claimed again when its lease runs out. ``SystemExit`` unwinds the process, so what
        ``serve`` opened (the socket, a tunnel client) is still closed on the way out.
        """

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if sig == signal.SIGINT and self.should_exit:
                err.print(
                    "framehook: second Ctrl-C, stopping now: unacknowledged webhooks come "
                    "again, interrupted handler runs are retried",
                    soft_wrap=True,
                )
                # The cancelled requests' and lifespan's tracebacks say nothing new.
                logging.getLogger("uvicorn.error").disabled = True
                raise SystemExit(130)
            super().handle_exit(sig, frame)

    return Server


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, as uvicorn would open it, or one line saying why
    not: a port in use, a privileged port, an address this machine does not have."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except socket.gaierror:
        sock.close()
        raise fail(
            f"--host {host}: not an address, nor a name this machine resolves (FRAMEHOOK_HOST)"
        ) from None
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise fail(
                f"port {port} on {host} is in use: stop the other server or pass --port"
            ) from None
        if exc.errno == errno.EACCES:
            raise fail(
                f"port {port} on {host} needs more privileges (ports under 1024 do): "
                "pass --port with a higher one"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise fail(
                f"{host} is not an address of this machine: pass another --host (FRAMEHOOK_HOST)"
            ) from None
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _check_database(settings: Settings) -> None:
    """Connect once: a database that is away (or a driver that is missing) stops the start
    here with one line (``receiver.cli.main`` words it), not in uvicorn's start-up log."""
    from receiver.db.engine import create_db_engine, ping

    engine = create_db_engine(settings.database_url, pool_size=1)
    try:
        ping(engine)
    finally:
        engine.dispose()


def _check_storage(settings: Settings) -> None:
    """A local directory this process cannot write to stops the start (every capture would
    fail): the probe ``framehook doctor`` and ``/readyz`` use. An object store is left to
    those two: probing one at every start costs requests and wants delete rights too."""
    import asyncio

    store = from_url(settings.storage_url)
    if not isinstance(store, LocalStorage):
        return
    try:
        asyncio.run(probe(store))
    except StorageError as exc:
        raise fail(f"cannot store captured files: {exc}") from None
    except OSError as exc:
        raise fail(
            f"cannot store captured files under {store.root}: {exc.strerror or exc}; "
            "set FRAMEHOOK_STORAGE_URL to a directory framehook may write"
        ) from None


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
    except StorageError as exc:
        raise fail(str(exc)) from None
    _check_database(settings)
    _check_storage(settings)
    try:
        asyncio.run(run_worker_process(settings))
    except (FramehookError, StorageError) as exc:
        raise fail(str(exc)) from None
