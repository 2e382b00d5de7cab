"""The ASGI application, built in one place from one ``Settings``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from receiver.admin import admin_api, base_url, dashboard_url
from receiver.apiframe.signatures import Verifier
from receiver.dashboard import dashboard_routes
from receiver.db.checkpoints import Checkpointer
from receiver.db.engine import create_db_engine
from receiver.db.schema import prepare_schema
from receiver.health import Readiness, healthz, readyz
from receiver.intake.group_commit import Committer
from receiver.intake.recorder import Arrival, Receipt, Recorder
from receiver.intake.webhook import WebhookEndpoint
from receiver.logs import get_logger
from receiver.metrics import Metrics, metrics_routes
from receiver.queue.embedded import worker_thread
from receiver.queue.registry import load_handlers, subscriptions_for
from receiver.queue.worker import Worker
from receiver.responses import exception_handlers, internal_error, send_json
from receiver.services import (
    build_worker,
    http_client,
    running_pruner,
    running_reconciler,
    serving_metrics,
)
from receiver.settings import Settings

__all__ = ["WEBHOOK_PATH", "create_app", "prepare_schema"]

_log = get_logger("framehook.app")

WEBHOOK_PATH = "/webhooks/apiframe"
"""Where Apiframe POSTs its webhooks."""


class _Receiver(Starlette):
    """Starlette, with ``POST /webhooks/apiframe`` answered ahead of its middleware.

    Starlette's two middlewares (server errors, exception handlers) and its router wrap each
    ``send`` and walk the routes: ~5 % of a delivery's CPU, for nothing the webhook needs, as
    it answers its own rejections. Any other request, and a webhook under a ``root_path``, goes
    through Starlette as before (the same route is registered there too)."""

    def __init__(self, webhook: WebhookEndpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._webhook = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == WEBHOOK_PATH
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            scope["app"] = self
            try:
                await self._webhook(scope, receive, send)
            except Exception as exc:
                # A bug, not bad input: what Starlette's handler for it answers (receiver.
                # responses), unless the answer had started (then the connection is cut).
                _log.error("unhandled error", path=WEBHOOK_PATH, exc_info=exc)
                with contextlib.suppress(Exception):
                    await send_json(send, 500, internal_error())
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, handlers: Sequence[Any] = ()) -> Starlette:
    """Build the receiver.

    Args:
        settings: the configuration; read from the environment when omitted.
        handlers: handler objects registered in code, in addition to ``FRAMEHOOK_HANDLERS``.

    Raises:
        ConfigurationError: no API key is configured, or a setting is unusable.
        RegistryError: a handler cannot be loaded, or two share a name.
    """
    settings = settings or Settings()
    verifier = Verifier(settings.require_api_keys())
    loaded = load_handlers(settings.handlers, handlers)
    writers = settings.intake_writers or (1 if settings.is_sqlite else 4)
    recorder: Recorder | None = None

    def record(connection: Any, arrivals: Sequence[Arrival]) -> list[Receipt]:
        assert recorder is not None
        return recorder.record_many(connection, arrivals)

    woken: list[Callable[[], None]] = []

    def wake_workers(receipts: list[Receipt]) -> None:
        # A task committed: the embedded worker starts it now, not at its next poll.
        if any(r.tasks for r in receipts):
            for wake in woken:
                wake()

    def wake_workers_now() -> None:
        for wake in woken:
            wake()

    committer: Committer[Arrival, Receipt] = Committer(
        record,
        on_commit=wake_workers,
        writers=writers,
        inline=settings.is_sqlite,
        batch_max=settings.intake_batch_max,
        max_pending=settings.intake_max_pending,
        wait_seconds=settings.intake_timeout_seconds,
    )
    metrics = Metrics()
    webhook = WebhookEndpoint(
        verifier,
        committer,
        settings.max_body_bytes,
        metrics,
        settings.lora_id_fields,
        max_unverified_bytes=settings.max_unverified_bytes,
    )
    admin = admin_api(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal recorder
        # Room for every writer and every concurrent handler run: a pool too small opens and
        # closes overflow connections all the time (measured: hundreds per thousand tasks).
        worker_connections = settings.worker_concurrency + 2 if settings.run_worker else 0
        engine = create_db_engine(settings.database_url, pool_size=writers + 2 + worker_connections)
        checkpointer: Checkpointer | None = None
        try:
            await anyio.to_thread.run_sync(prepare_schema, engine, settings)
            recorder = Recorder(engine.dialect.name, subscriptions_for(loaded))
            app.state.engine = engine
            app.state.metrics = metrics
            metrics.watch_tasks(engine)
            app.state.settings = settings
            app.state.readiness = Readiness(settings, committer)
            app.state.handlers = loaded
            checkpointer = Checkpointer(engine) if engine.dialect.name == "sqlite" else None
            if checkpointer is not None:
                checkpointer.start()
            await committer.start(engine)
            async with contextlib.AsyncExitStack() as stack:
                if settings.run_worker:

                    def build() -> Worker:
                        # Called on the worker's thread: its HTTP client lives on its loop.
                        http = http_client(settings)
                        token = admin.token.value
                        return build_worker(
                            engine, loaded, settings, http, metrics=metrics, link_token=token
                        )

                    # On a thread and loop of its own: handlers never delay a 202.
                    worker = await stack.enter_async_context(worker_thread(build, settings))
                    woken.append(worker.wake_threadsafe)
                    app.state.worker = worker
                await stack.enter_async_context(running_pruner(engine, settings))
                # FRAMEHOOK_METRICS_PORT: /metrics on a port of its own (not the webhook's).
                stack.enter_context(
                    serving_metrics(
                        metrics,
                        settings.metrics_port,
                        settings.metrics_host,
                        settings.metrics_token,
                    )
                )
                if settings.reconcile:
                    await stack.enter_async_context(
                        running_reconciler(
                            engine, recorder, settings, lambda: wake_workers_now(), metrics
                        )
                    )
                if admin.token.generated:
                    # Once per start, so an operator can use /api without configuring one.
                    _log.warning(
                        "admin token generated",
                        bearer=admin.token.value,
                        dashboard=dashboard_url(base_url(settings), admin.token.value),
                        hint="set FRAMEHOOK_ADMIN_TOKEN to keep one across restarts",
                    )
                else:
                    # A configured token is a long-lived secret: in a terminal's log only.
                    shown = settings.resolved_log_format() == "console"
                    _log.info(
                        "dashboard",
                        url=dashboard_url(base_url(settings), admin.token.value if shown else None),
                    )
                _log.info(
                    "receiver ready",
                    database=engine.dialect.name,
                    handlers=[h.name for h in loaded],
                    signing_keys=len(settings.signing_api_keys()),
                    worker=settings.run_worker,
                )
                yield
        finally:
            await committer.stop()
            if checkpointer is not None:
                await anyio.to_thread.run_sync(checkpointer.stop)
            engine.dispose()

    return _Receiver(
        webhook,
        routes=[
            # A raw ASGI app (no Request/Response objects: the hot path); the Route still
            # answers other methods 405 with Allow, as JSON.
            Route(WEBHOOK_PATH, webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *metrics_routes(settings),
            *admin.routes,
            *dashboard_routes(),
        ],
        lifespan=lifespan,
        exception_handlers=exception_handlers,
    )
