"""Building and running workers from settings: embedded in ``serve`` or standalone."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

import anyio
import httpx
from sqlalchemy import Engine

from handlers import FetchPolicy, Handler, safe_client
from receiver.errors import ConfigurationError
from receiver.links import asset_linker
from receiver.logs import get_logger
from receiver.metrics import Metrics, wsgi_app
from receiver.queue.notify import Listener
from receiver.queue.tasks import TaskQueue
from receiver.queue.worker import Worker, worker_name
from receiver.settings import Settings
from storage import from_url

if TYPE_CHECKING:
    from pydantic import SecretStr

    # Reconciliation's modules are imported where it starts: a standalone worker never
    # reconciles, and every module it loads stays resident (bench/download.py: worker RSS).
    from receiver.intake.recorder import Recorder
    from receiver.reconcile.reconciler import Reconciler, Report

__all__ = [
    "build_worker",
    "http_client",
    "reconcile_once",
    "running_pruner",
    "running_reconciler",
    "running_worker",
    "serving_metrics",
]


_log = get_logger("framehook.runner")


def http_client(settings: Settings) -> httpx.AsyncClient:
    """The client handlers share: the download safety rules of ``settings`` on every request.

    Raises:
        ConfigurationError: ``FRAMEHOOK_ASSET_HOSTS`` or ``FRAMEHOOK_ASSET_ALLOW_NETWORKS``
            holds an entry that is not a host name, wildcard, IP address or CIDR.
    """
    try:
        policy = FetchPolicy(
            hosts=tuple(settings.asset_hosts),
            allow_networks=tuple(settings.asset_allow_networks),
            allow_http=settings.asset_allow_http,
        )
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from exc
    return safe_client(policy)


def build_worker(
    engine: Engine,
    handlers: Sequence[Handler],
    settings: Settings,
    http: httpx.AsyncClient,
    concurrency: int | None = None,
    metrics: Metrics | None = None,
    link_token: str | None = None,
) -> Worker:
    """A worker for ``handlers`` configured by ``settings`` (counting into ``metrics``).

    ``link_token`` is the admin token of the receiver in this process (``serve``'s, maybe
    generated), which signs the content links handlers hand out; a standalone worker has none
    and signs with ``FRAMEHOOK_ADMIN_TOKEN`` (``receiver.links.asset_linker``).

    Raises:
        StorageError: ``FRAMEHOOK_STORAGE_URL`` names no usable backend.
    """
    queue = TaskQueue(
        engine,
        worker_name(),
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.retry_max_attempts,
    )
    storage = from_url(settings.storage_url)
    return Worker(
        queue,
        handlers,
        settings.retry_policy(),
        storage,
        http,
        concurrency=concurrency or settings.worker_concurrency,
        poll_seconds=settings.poll_seconds,
        timeout_seconds=settings.handler_timeout_seconds,
        grace_seconds=settings.grace_seconds,
        metrics=metrics,
        links=asset_linker(settings, storage, engine, link_token),
    )


@contextlib.asynccontextmanager
async def running_worker(worker: Worker, settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``worker`` (and, on PostgreSQL, a LISTEN wake-up) on this loop for the duration of
    the block; yields its task (done early only if the worker died). On exit, stop it
    gracefully and close its HTTP client."""
    stop = asyncio.Event()
    listener = (
        None if settings.is_sqlite else Listener(settings.database_url, worker.wake_threadsafe)
    )
    task = asyncio.create_task(worker.run(stop), name="framehook-worker")
    if listener is not None:
        listener.start()
    try:
        yield task
    finally:
        stop.set()
        try:
            await task
        finally:
            if listener is not None:
                await asyncio.get_running_loop().run_in_executor(None, listener.stop)
            await worker.http.aclose()


@contextlib.asynccontextmanager
async def running_reconciler(
    engine: Engine,
    recorder: Recorder,
    settings: Settings,
    wake: Callable[[], None],
    metrics: Metrics | None = None,
) -> AsyncIterator[Reconciler]:
    """Reconcile with Apiframe's job API in the background for the duration of the block
    (``FRAMEHOOK_RECONCILE``), with the first signing key (counting into ``metrics``)."""
    from receiver.apiframe.client import ApiframeClient
    from receiver.reconcile.reconciler import Reconciler, Waits, reconcile_periodically

    client = ApiframeClient(settings.require_api_keys()[0], settings.apiframe_url)
    if metrics is not None:
        metrics.watch_api(client)
    waits = Waits(
        image=timedelta(seconds=settings.reconcile_image_seconds),
        video=timedelta(seconds=settings.reconcile_video_seconds),
        music=timedelta(seconds=settings.reconcile_music_seconds),
        lora=timedelta(seconds=settings.reconcile_lora_seconds),
    )
    reconciler = Reconciler(engine, recorder, client, waits, on_recorded=wake, metrics=metrics)
    stop = asyncio.Event()
    task = asyncio.create_task(
        reconcile_periodically(reconciler, settings.reconcile_interval_seconds, stop)
    )
    try:
        yield reconciler
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()


async def reconcile_once(settings: Settings, since: timedelta | None) -> Report:
    """``framehook reconcile``: walk the job list back ``since`` (if given), then look up
    every job still unfinished, whatever its wait. Tasks are queued for the loaded handlers;
    a running worker picks them up.

    Raises:
        ConfigurationError: no API key; RegistryError: a handler cannot be loaded.
    """
    from receiver.apiframe.client import ApiframeClient
    from receiver.db.engine import create_db_engine
    from receiver.db.schema import prepare_schema
    from receiver.intake.recorder import Recorder
    from receiver.queue.registry import load_handlers, subscriptions_for
    from receiver.reconcile.reconciler import Reconciler, Report, Waits

    key = settings.require_api_keys()[0]
    handlers = load_handlers(settings.handlers)
    engine = create_db_engine(settings.database_url)
    client = ApiframeClient(key, settings.apiframe_url)
    try:
        await anyio.to_thread.run_sync(prepare_schema, engine, settings)
        recorder = Recorder(engine.dialect.name, subscriptions_for(handlers))
        # From the command line: every unfinished job and training is looked up now.
        now_waits = Waits(timedelta(0), timedelta(0), timedelta(0), timedelta(0))
        reconciler = Reconciler(engine, recorder, client, now_waits)
        report = Report()
        if since is not None:
            report = await reconciler.discover(datetime.now(UTC) - since)
        polled = await reconciler.poll_stale(limit=10_000)
        report.outcomes.update(polled.outcomes)
        report.add("api_requests", sum(client.polls.values()))
        return report
    finally:
        await client.aclose()
        engine.dispose()


@contextlib.asynccontextmanager
async def running_pruner(engine: Engine, settings: Settings) -> AsyncIterator[None]:
    """Prune old bodies and finished tasks every ``FRAMEHOOK_RETENTION_INTERVAL_SECONDS``
    for the duration of the block (``FRAMEHOOK_RETENTION_DAYS``; 0 switches it off).

    The prune runs in a thread, in short batches that let the intake commit between them; at
    the block's end it stops after the batch it is in (a thread cannot be cancelled, and a
    prune of millions of rows would otherwise hold up the shutdown)."""
    from receiver.db.retention import prune

    age = timedelta(days=settings.retention_days)
    stop = threading.Event()

    async def loop() -> None:
        while True:
            await asyncio.sleep(settings.retention_interval_seconds)
            try:
                pruned = await anyio.to_thread.run_sync(partial(prune, engine, age, stop=stop))
            except Exception as exc:
                _log.warning("pruning failed", error=f"{type(exc).__name__}: {exc}")
                continue
            if pruned.bodies or pruned.tasks:
                _log.info("pruned", bodies=pruned.bodies, tasks=pruned.tasks)

    task = asyncio.create_task(loop()) if settings.retention_days > 0 else None
    try:
        yield
    finally:
        stop.set()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.contextmanager
def serving_metrics(
    metrics: Metrics, port: int | None, host: str, token: SecretStr | None = None
) -> Iterator[int | None]:
    """Serve ``metrics`` over HTTP on ``host:port`` while in the block, behind ``token`` when
    given; yields the port bound (``0`` binds a free one; ``port`` ``None``: nothing served,
    yields ``None``).

    ``framehook worker`` serves its metrics here (``FRAMEHOOK_WORKER_METRICS_PORT``), and so
    does ``serve`` when ``FRAMEHOOK_METRICS_PORT`` moves them off the webhook port.

    Raises:
        OSError: the address cannot be bound.
    """
    if port is None:
        yield None
        return
    # prometheus-client's own exporter (its WSGI app, on its threaded server), started the way
    # its start_http_server does, with the token check in front: a few threads of its own,
    # nothing that runs on an event loop.
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client.exposition import ThreadingWSGIServer

    # "::" or a host name may want IPv6: bind the family the address resolves to.
    family, *_, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]

    class Server(ThreadingWSGIServer):
        address_family = family

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """No line per scrape on stderr."""

    server = make_server(str(address[0]), port, wsgi_app(metrics, token), Server, QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="framehook-metrics", daemon=True)
    thread.start()
    bound = int(server.server_address[1])
    _log.info("metrics served", url=f"http://{host}:{bound}/metrics", token=token is not None)
    try:
        yield bound
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
