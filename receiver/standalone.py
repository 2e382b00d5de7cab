"""``framehook worker``: a worker process of its own, stopped by SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal

import anyio

from receiver.app import prepare_schema
from receiver.database import create_db_engine
from receiver.logs import get_logger
from receiver.registry import load_handlers
from receiver.runner import build_worker, http_client, running_worker
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
        worker = build_worker(engine, handlers, settings, http_client(settings))
        async with running_worker(worker, settings):
            await stop.wait()
            _log.info("stop requested")
    finally:
        engine.dispose()
