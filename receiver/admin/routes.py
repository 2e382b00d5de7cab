"""The admin API's endpoints: ``/api/jobs``, ``/api/deliveries``, ``/api/tasks`` and their
actions, ``/api/credits``, each behind the bearer token, each answering JSON.

Reads run in a worker thread on one connection and transaction; a bad parameter is a 400
with a ``reason`` before any SQL runs. Endpoints only raise: ``receiver.responses`` answers
every rejection, and an unreachable database (SQLAlchemy's ``OperationalError``) as a 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import anyio
from sqlalchemy import Connection, Engine
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receiver.admin.auth import AdminToken
from receiver.admin.content import AssetLinks, ContentEndpoint
from receiver.admin.credits import credits_query
from receiver.admin.events import EventsEndpoint, StreamSlots
from receiver.admin.openapi import OPENAPI
from receiver.admin.paging import (
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
    find_delivery,
    find_task,
    job_exists,
    job_timeline,
    list_deliveries,
    list_jobs,
    list_tasks,
)
from receiver.admin.views import (
    AssetView,
    CreditsView,
    DeliveryWithBodyView,
    JobTimelineView,
    PageView,
    ReplayedView,
    RetriedView,
    TaskView,
)
from receiver.db.engine import writing
from receiver.db.models import TaskStatus
from receiver.errors import Conflict, NotFound
from receiver.queue.replay import replay_job, requeue_task
from receiver.responses import json_response
from receiver.settings import Settings

__all__ = ["admin_routes"]

T = TypeVar("T")
F = TypeVar("F")
V = TypeVar("V")
Endpoint = Callable[[Request], Awaitable[Mapping[str, Any]]]
"""An endpoint's JSON object (a view), answered with a 200."""
Handler = Callable[[Request], Awaitable[Response]]


def _guarded(token: AdminToken, endpoint: Endpoint) -> Handler:
    """The endpoint behind the token, its result as a 200."""

    async def handle(request: Request) -> Response:
        token.require(request)
        return json_response(200, await endpoint(request))

    return handle


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def _read(request: Request, work: Callable[[Connection], T]) -> T:
    engine = _engine(request)

    def run() -> T:
        with engine.connect() as connection, connection.begin():
            return work(connection)

    return await anyio.to_thread.run_sync(run)


def _wake_worker(request: Request) -> None:
    # The embedded worker (if this process runs one) starts re-queued tasks now, not at its
    # next poll; workers elsewhere hear PostgreSQL's NOTIFY, or poll.
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.wake()


def _listing(
    kind: str,
    key: tuple[type, ...],
    where: Callable[[QueryParams], F],
    read: Callable[[Connection, F, int, tuple[Any, ...] | None], Page[V]],
) -> Callable[[Request], Awaitable[PageView[V]]]:
    """``GET /api/{kind}``: one page of a list, newest first, filtered by ``where``.

    Its cursor is tagged with ``kind`` (another list's is refused) and holds a position of
    ``key``'s types; every parameter is checked before the read.
    """

    async def listing(request: Request) -> PageView[V]:
        q = request.query_params
        filters = where(q)
        limit = parse_limit(q.get("limit"))
        after = decode_cursor(q.get("cursor"), kind, key)
        page = await _read(request, lambda c: read(c, filters, limit, after))
        cursor = None if page.next_key is None else encode_cursor(kind, page.next_key)
        return {"items": page.items, "nextCursor": cursor}

    return listing


def _job_filter(q: QueryParams) -> JobFilter:
    """Jobs by ``status``, ``model``, ``since``/``until`` on their creation, and ``jobId`` (an
    id or the start of one: what a person pastes, trimmed)."""
    return JobFilter(
        status=parse_choice(q.get("status"), "status", JOB_STATUSES),
        model=parse_text(q.get("model"), "model"),
        since=parse_time(q.get("since"), "since"),
        until=parse_time(q.get("until"), "until"),
        id_prefix=(parse_text(q.get("jobId"), "jobId") or "").strip() or None,
    )


def _delivery_filter(q: QueryParams) -> DeliveryFilter:
    """Deliveries (never their bodies) by ``outcome``, ``event`` and ``jobId``."""
    return DeliveryFilter(
        outcome=parse_choice(q.get("outcome"), "outcome", OUTCOMES),
        event=parse_text(q.get("event"), "event"),
        job_id=parse_text(q.get("jobId"), "jobId"),
    )


def _task_filter(q: QueryParams) -> TaskFilter:
    """Tasks by ``status`` (dead ones unless asked; ``all``: every status), ``handler`` and
    ``jobId``."""
    status = parse_choice(q.get("status", TaskStatus.DEAD), "status", (*TASK_STATUSES, "all"))
    return TaskFilter(
        status=None if status == "all" else status,
        handler=parse_text(q.get("handler"), "handler"),
        job_id=parse_text(q.get("jobId"), "jobId"),
    )


jobs = _listing("jobs", (datetime, str), _job_filter, list_jobs)
deliveries = _listing("deliveries", (int,), _delivery_filter, list_deliveries)
tasks = _listing("tasks", (int,), _task_filter, list_tasks)


def _job(links: AssetLinks) -> Callable[[Request], Awaitable[JobTimelineView]]:
    async def job(request: Request) -> JobTimelineView:
        """``GET /api/jobs/{id}``: the job and its timeline, each asset with a signed link."""
        job_id = parse_text(request.path_params["id"], "id") or ""
        found = await _read(request, lambda c: job_timeline(c, job_id))
        if found is None:
            raise NotFound("not_found", f"no job {job_id!r}")
        assets: list[AssetView] = [
            {**asset, "contentUrl": links.link(asset["id"])} for asset in found["assets"]
        ]
        return {**found, "assets": assets}

    return job


async def delivery(request: Request) -> DeliveryWithBodyView:
    """``GET /api/deliveries/{id}``: one delivery with its raw body (null once pruned)."""
    delivery_id = parse_id(request.path_params["id"], "delivery_id")
    found = await _read(request, lambda c: find_delivery(c, delivery_id))
    if found is None:
        raise NotFound("not_found", f"no delivery {delivery_id}")
    return found


def _requeue_and_read(engine: Engine, task_id: int) -> tuple[bool, TaskView | None]:
    # One transaction: read back after a later commit, a worker woken by the requeue could
    # already have claimed the task, and the answer would say "running" for a task just queued.
    with writing(engine) as connection:
        return requeue_task(connection, task_id), find_task(connection, task_id)


async def retry(request: Request) -> RetriedView:
    """``POST /api/tasks/{id}/retry``: queue one task again, with a fresh retry budget."""
    task_id = parse_id(request.path_params["id"], "task_id")
    requeued, task = await anyio.to_thread.run_sync(_requeue_and_read, _engine(request), task_id)
    if task is None:
        raise NotFound("not_found", f"no task {task_id}")
    if not requeued:
        if task["status"] == TaskStatus.WAITING:
            raise Conflict(
                "task_waiting",
                f"task {task_id} is waiting for {', '.join(task['waitsFor'])}; "
                "it runs once they have ended",
            )
        raise Conflict("task_running", f"task {task_id} is running; retry it once it has ended")
    _wake_worker(request)
    return {"ok": True, "requeued": 1, "task": task}


async def replay(request: Request) -> ReplayedView:
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
    return {
        "ok": True,
        "jobId": job_id,
        "handler": handler,
        "requeued": count,
        "tasks": list(page.items),
    }


async def credits(request: Request) -> CreditsView:
    """``GET /api/credits[?by=model|day&since=7d&until=T]``: the credit ledger."""
    return await _read(request, credits_query(request.query_params))


async def openapi(_request: Request) -> Response:
    """``GET /api/openapi.json``: the OpenAPI 3.1 description (public: it holds no data)."""
    return json_response(200, OPENAPI)


def admin_routes(token: AdminToken, settings: Settings) -> list[Route]:
    """Every ``/api`` route, the data ones behind ``token``."""
    links = AssetLinks(token)
    content = ContentEndpoint(links, settings.storage_url)
    events = EventsEndpoint(
        token, settings.events_poll_seconds, StreamSlots(settings.events_max_streams)
    )
    return [
        Route("/api/openapi.json", openapi, methods=["GET"], name="admin_openapi"),
        Route("/api/events", events.handle, methods=["GET"], name="admin_events"),
        Route("/api/jobs", _guarded(token, jobs), methods=["GET"], name="admin_jobs"),
        Route("/api/jobs/{id}", _guarded(token, _job(links)), methods=["GET"], name="admin_job"),
        Route(
            "/api/assets/{id}/content", content.handle, methods=["GET"], name="admin_asset_content"
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
        Route(
            "/api/deliveries/{id}",
            _guarded(token, delivery),
            methods=["GET"],
            name="admin_delivery",
        ),
        Route("/api/tasks", _guarded(token, tasks), methods=["GET"], name="admin_tasks"),
        Route("/api/credits", _guarded(token, credits), methods=["GET"], name="admin_credits"),
        Route(
            "/api/tasks/{id}/retry", _guarded(token, retry), methods=["POST"], name="admin_retry"
        ),
    ]
