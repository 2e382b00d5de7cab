"""The admin API's endpoints: ``/api/jobs``, ``/api/deliveries``, ``/api/tasks`` and their
actions, ``/api/credits``, each behind the bearer token, each answering JSON.

Reads run in a worker thread on one connection and transaction; a bad parameter is a 400
with a ``reason`` before any SQL runs; an unreachable database is a 503.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import anyio
import orjson
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receiver.admin.auth import AdminToken
from receiver.admin.content import AssetLinks, ContentEndpoint
from receiver.admin.credits import credits_query
from receiver.admin.feed import Change, Feed
from receiver.admin.openapi import OPENAPI
from receiver.admin.paging import (
    Conflict,
    NotFound,
    decode_cursor,
    encode_cursor,
    parse_choice,
    parse_id,
    parse_limit,
    parse_text,
    parse_time,
)
from receiver.admin.queries import (
    JOB_STATUSES,
    OUTCOMES,
    TASK_STATUSES,
    DeliveryFilter,
    JobFilter,
    Page,
    TaskFilter,
    find_task,
    job_exists,
    job_timeline,
    list_deliveries,
    list_jobs,
    list_tasks,
)
from receiver.errors import RequestRejected
from receiver.queue.replay import replay_job, retry_task
from receiver.responses import json_response
from receiver.settings import Settings

__all__ = ["admin_routes"]

T = TypeVar("T")
Payload = dict[str, Any]
Endpoint = Callable[[Request], Awaitable[Payload]]


def _problem(status: int, reason: str, detail: str, **headers: str) -> Response:
    return json_response(status, {"ok": False, "reason": reason, "detail": detail}, **headers)


def _unauthorized(request: Request) -> Response:
    given = "authorization" in request.headers
    challenge = 'Bearer realm="framehook"' + (', error="invalid_token"' if given else "")
    message = "wrong bearer token" if given else "send Authorization: Bearer <token>"
    return _problem(401, "unauthorized", message, **{"WWW-Authenticate": challenge})


def _answered(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[..., Any]:
    """The endpoint with its rejections and an unreachable database answered as JSON."""

    async def handle(request: Request) -> Response:
        try:
            return await endpoint(request)
        except RequestRejected as exc:
            return _problem(exc.status_code, exc.reason, exc.detail)
        except OperationalError:
            return _problem(
                503, "database_unavailable", "database unavailable", **{"Retry-After": "1"}
            )

    return handle


def _guarded(token: AdminToken, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint behind the token, its result as a 200 and its rejections as JSON."""

    async def handle(request: Request) -> Response:
        if not token.admits(request):
            return _unauthorized(request)
        return json_response(200, await endpoint(request))

    return _answered(handle)


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def _read(request: Request, work: Callable[[Connection], T]) -> T:
    engine = _engine(request)

    def run() -> T:
        with engine.connect() as connection, connection.begin():
            return work(connection)

    return await anyio.to_thread.run_sync(run)


def _listing(page: Page, kind: str) -> Payload:
    cursor = None if page.next_key is None else encode_cursor(kind, page.next_key)
    return {"items": page.items, "nextCursor": cursor}


def _wake_worker(request: Request) -> None:
    # The embedded worker (if this process runs one) starts re-queued tasks now, not at its
    # next poll; workers elsewhere hear PostgreSQL's NOTIFY, or poll.
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.wake()


async def jobs(request: Request) -> Payload:
    """``GET /api/jobs``: jobs newest first, filtered."""
    q = request.query_params
    where = JobFilter(
        status=parse_choice(q.get("status"), "status", JOB_STATUSES),
        model=parse_text(q.get("model"), "model"),
        since=parse_time(q.get("since"), "since"),
        until=parse_time(q.get("until"), "until"),
    )
    limit = parse_limit(q.get("limit"))
    after = decode_cursor(q.get("cursor"), "jobs", (datetime, str))
    page = await _read(request, lambda c: list_jobs(c, where, limit, after))
    return _listing(page, "jobs")


def _job(links: AssetLinks) -> Endpoint:
    async def job(request: Request) -> Payload:
        """``GET /api/jobs/{id}``: the job and its timeline, each asset with a signed link."""
        job_id = parse_text(request.path_params["id"], "id") or ""
        found = await _read(request, lambda c: job_timeline(c, job_id))
        if found is None:
            raise NotFound("not_found", f"no job {job_id!r}")
        for asset in found["assets"]:
            asset["contentUrl"] = links.link(asset["id"])
        return found

    return job


_DOWN = '{"reason":"database_unavailable"}'


def _events(token: AdminToken, poll_seconds: float) -> Callable[[Request], Awaitable[Response]]:
    async def events(request: Request) -> Response:
        """``GET /api/events[?job=ID]``: server-sent events of what changes (see ``feed``)."""
        if not token.admits(request):
            return _unauthorized(request)
        feed = Feed(watch=parse_text(request.query_params.get("job"), "job"))
        engine = _engine(request)

        def poll() -> list[Change]:
            with engine.connect() as connection, connection.begin():
                return feed.poll(connection)

        async def stream() -> AsyncIterator[ServerSentEvent]:
            yield ServerSentEvent(data="{}", event="ready", retry=2000)
            down = False
            while True:
                try:
                    changes = await anyio.to_thread.run_sync(poll)
                except OperationalError:
                    # The stream stays open: the client shows "database unavailable" and the
                    # next poll that works carries on where this one stopped.
                    if not down:
                        yield ServerSentEvent(
                            data='{"reason":"database_unavailable"}', event="down"
                        )
                    down = True
                else:
                    if down:
                        yield ServerSentEvent(data="{}", event="ready")
                    down = False
                    for name, data in changes:
                        yield ServerSentEvent(data=orjson.dumps(data).decode(), event=name)
                await anyio.sleep(poll_seconds)

        # X-Accel-Buffering: a reverse proxy (nginx) would otherwise hold events back.
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return EventSourceResponse(stream(), ping=15, headers=headers)

    return _answered(events)


def _content(endpoint: ContentEndpoint) -> Callable[[Request], Awaitable[Response]]:
    async def content(request: Request) -> Response:
        """``GET /api/assets/{id}/content``: the file, to the token or a signed link."""
        try:
            return await endpoint.handle(request, _engine(request))
        except RequestRejected as exc:
            if exc.status_code == 401:
                return _unauthorized(request)
            raise

    return _answered(content)


async def deliveries(request: Request) -> Payload:
    """``GET /api/deliveries``: deliveries newest first, filtered, without bodies."""
    q = request.query_params
    where = DeliveryFilter(
        outcome=parse_choice(q.get("outcome"), "outcome", OUTCOMES),
        event=parse_text(q.get("event"), "event"),
        job_id=parse_text(q.get("jobId"), "jobId"),
    )
    limit = parse_limit(q.get("limit"))
    after = decode_cursor(q.get("cursor"), "deliveries", (int,))
    page = await _read(
        request, lambda c: list_deliveries(c, where, limit, after[0] if after else None)
    )
    return _listing(page, "deliveries")


async def tasks(request: Request) -> Payload:
    """``GET /api/tasks``: tasks newest first; dead ones unless ``status`` says otherwise."""
    q = request.query_params
    status = parse_choice(q.get("status", "dead"), "status", (*TASK_STATUSES, "all"))
    where = TaskFilter(
        status=None if status == "all" else status,
        handler=parse_text(q.get("handler"), "handler"),
        job_id=parse_text(q.get("jobId"), "jobId"),
    )
    limit = parse_limit(q.get("limit"))
    after = decode_cursor(q.get("cursor"), "tasks", (int,))
    page = await _read(request, lambda c: list_tasks(c, where, limit, after[0] if after else None))
    return _listing(page, "tasks")


async def retry(request: Request) -> Payload:
    """``POST /api/tasks/{id}/retry``: queue one task again, with a fresh retry budget."""
    task_id = parse_id(request.path_params["id"], "task_id")
    requeued = await anyio.to_thread.run_sync(retry_task, _engine(request), task_id)
    task = await _read(request, lambda c: find_task(c, task_id))
    if task is None:
        raise NotFound("not_found", f"no task {task_id}")
    if not requeued:
        raise Conflict("task_running", f"task {task_id} is running; retry it once it has ended")
    _wake_worker(request)
    return {"ok": True, "requeued": 1, "task": task}


async def replay(request: Request) -> Payload:
    """``POST /api/jobs/{id}/replay[?handler=NAME]``: run the job's finished tasks again."""
    job_id = parse_text(request.path_params["id"], "id") or ""
    handler = parse_text(request.query_params.get("handler"), "handler")
    if not await _read(request, lambda c: job_exists(c, job_id)):
        raise NotFound("not_found", f"no job {job_id!r}")
    count = await anyio.to_thread.run_sync(replay_job, _engine(request), job_id, handler)
    if count:
        _wake_worker(request)
    where = TaskFilter(status=None, handler=handler, job_id=job_id)
    page = await _read(request, lambda c: list_tasks(c, where, 1000))
    return {"ok": True, "jobId": job_id, "handler": handler, "requeued": count, "tasks": page.items}


async def credits(request: Request) -> Payload:
    """``GET /api/credits[?by=model|day&since=7d&until=T]``: the credit ledger."""
    return await _read(request, credits_query(request.query_params))


async def openapi(_request: Request) -> Response:
    """``GET /api/openapi.json``: the OpenAPI 3.1 description (public: it holds no data)."""
    return json_response(200, OPENAPI)


def admin_routes(token: AdminToken, settings: Settings) -> list[Route]:
    """Every ``/api`` route, the data ones behind ``token``."""
    links = AssetLinks(token)
    content = ContentEndpoint(links, settings.storage_url)
    events = _events(token, settings.events_poll_seconds)
    return [
        Route("/api/openapi.json", openapi, methods=["GET"], name="admin_openapi"),
        Route("/api/events", events, methods=["GET"], name="admin_events"),
        Route("/api/jobs", _guarded(token, jobs), methods=["GET"], name="admin_jobs"),
        Route("/api/jobs/{id}", _guarded(token, _job(links)), methods=["GET"], name="admin_job"),
        Route(
            "/api/assets/{id}/content",
            _content(content),
            methods=["GET"],
            name="admin_asset_content",
        ),
        Route(
            "/api/jobs/{id}/replay", _guarded(token, replay), methods=["POST"], name="admin_replay"
        ),
        Route(
            "/api/deliveries",
            _guarded(token, deliveries),
            methods=["GET"],
            name="admin_deliveries",
        ),
        Route("/api/tasks", _guarded(token, tasks), methods=["GET"], name="admin_tasks"),
        Route("/api/credits", _guarded(token, credits), methods=["GET"], name="admin_credits"),
        Route(
            "/api/tasks/{id}/retry", _guarded(token, retry), methods=["POST"], name="admin_retry"
        ),
    ]
