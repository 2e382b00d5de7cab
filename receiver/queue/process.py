"""``framehook worker``: a worker process of its own, stopped by SIGTERM or SIGINT, with its
own ``/metrics`` when ``FRAMEHOOK_WORKER_METRICS_PORT`` is set (behind
``FRAMEHOOK_METRICS_TOKEN`` when that is set)."""

from __future__ import annotations

import asyncio
import signal

import anyio

from receiver.db.engine import create_db_engine
from receiver.db.schema import prepare_schema
from receiver.logs import get_logger
from receiver.metrics import Metrics
from receiver.queue.registry import load_handlers
from receiver.services import build_worker, http_client, running_worker, serving_metrics
from receiver.settings import Settings

__all__ = ["run_worker_process"]

_log = get_logger("framehook.worker")


async def run_worker_process(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then stop gracefully.

    Raises:
        RegistryError: a configured handler cannot be loaded.
        ConfigurationError: the database URL is unusable.
    """
    handlers = load_handlers(settings.handlers)
    # One connection per concurrent handler run, plus claims and lease renewal.
    engine = create_db_engine(settings.database_url, pool_size=settings.worker_concurrency + 4)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await anyio.to_thread.run_sync(prepare_schema, engine, settings)
        metrics = Metrics()
        worker = build_worker(engine, handlers, settings, http_client(settings), metrics=metrics)
        with serving_metrics(
            metrics,
            settings.worker_metrics_port,
            settings.worker_metrics_host,
            settings.metrics_token,
        ):
            async with running_worker(worker, settings):
                await stop.wait()
                _log.info("stop requested")
    finally:
        engine.dispose()
