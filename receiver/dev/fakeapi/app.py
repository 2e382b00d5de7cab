"""The fake Apiframe as an ASGI app: the v2 job routes, the job API, a CDN and control routes.

Routes (all but the CDN need ``X-API-Key``; the ``/v2`` ones may answer 429/503 on purpose):

- ``POST /v2/images/generate`` and the other job-creating routes: 202 ``{jobId, status}``.
- ``GET /v2/jobs/{id}``, ``GET /v2/jobs?status=&model=&limit=&cursor=``: the job API.
- ``POST /v2/loras``, ``GET /v2/loras``, ``GET|DELETE /v2/loras/{id}``: LoRA trainings
  (``receiver.dev.fakeapi.loraroutes``); a ``flux-lora`` job needs a ``READY`` one.
- ``GET /cdn/{images|videos|audio}/{file}``: the result files, until they expire.
- ``GET|POST /_fake/behaviour``: read or change the behaviour (POST takes the fields to change).
- ``GET /_fake/deliveries``: what became of every webhook, and how much work is pending.
- ``POST /_fake/jobs/{id}/expire``: expire one job's assets now.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from receiver.dev.fakeapi.bodies import DEFAULT_MODELS, OPERATIONS
from receiver.dev.fakeapi.chaos import Behaviour, behaviour_as_json, updated_behaviour
from receiver.dev.fakeapi.jobs import STATUSES
from receiver.dev.fakeapi.lifecycle import FakeApiframe
from receiver.dev.fakeapi.loraroutes import lora_routes
from receiver.dev.fakeapi.media import CONTENT_TYPES, media_file

__all__ = ["create_fake_apiframe", "fake_of"]

Endpoint = Callable[[Request], Awaitable[Response]]
WEBHOOK_EVENTS = ("progress", "completed", "failed")


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _invalid(details: list[dict[str, str]]) -> JSONResponse:
    return _error(400, "Validation failed", details=details)


def _guarded(fake: FakeApiframe, handler: Endpoint, *, chaos: bool) -> Endpoint:
    """``handler`` behind the API key check and, for the job API, the 429/503 dice."""

    async def endpoint(request: Request) -> Response:
        given = request.headers.get("x-api-key", "")
        if not hmac.compare_digest(given.encode(), fake.api_key.encode()):
            response: Response = _error(401, "Invalid or missing API key")
        elif chaos and (status := fake.api_status()) is not None:
            if status == 429:
                response = _error(429, "Too many requests, slow down")
                response.headers["Retry-After"] = str(fake.behaviour.retry_after_seconds)
            else:
                response = _error(503, "Service temporarily unavailable")
        else:
            response = await handler(request)
        response.headers["x-request-id"] = str(uuid.uuid4())
        return response

    return endpoint


def _job_request(operation: str, body: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The request's fields, or what is wrong with them."""
    if not isinstance(body, dict):
        return {}, [{"field": "body", "message": "must be a JSON object"}]
    problems = []
    model = body.get("model", DEFAULT_MODELS.get(operation))
    if not isinstance(model, str) or not model:
        problems.append({"field": "model", "message": "required (a model name)"})
    if operation.endswith("/generate") and not isinstance(body.get("prompt"), str):
        problems.append({"field": "prompt", "message": "required (a string)"})
    if operation.endswith("/action") and not isinstance(body.get("action"), str):
        problems.append({"field": "action", "message": "required (a string)"})
    url = body.get("webhookUrl")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        problems.append({"field": "webhookUrl", "message": "must be an http(s) URL"})
    events = body.get("webhookEvents", ["completed", "failed"])
    if not isinstance(events, list) or not set(events) <= set(WEBHOOK_EVENTS):
        problems.append(
            {"field": "webhookEvents", "message": f"an array of {', '.join(WEBHOOK_EVENTS)}"}
        )
    return {"model": model, "url": url, "events": frozenset(events or ())}, problems


def _lora_problem(fake: FakeApiframe, body: dict[str, Any]) -> dict[str, str] | None:
    """Why a ``flux-lora`` request cannot run: Apiframe wants a READY LoRA of the team."""
    params = body.get("fluxLoraParams")
    lora_id = params.get("loraId") if isinstance(params, dict) else None
    lora = fake.loras.get(lora_id) if isinstance(lora_id, str) else None
    if lora is None or lora.status != "READY":
        return {"field": "fluxLoraParams.loraId", "message": "a READY LoRA of this team"}
    return None


def _routes(fake: FakeApiframe) -> list[Route]:
    def create(operation: str) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "The body is not valid JSON")
            fields, problems = _job_request(operation, body)
            if problems:
                return _invalid(problems)
            if fields["model"] == "flux-lora" and (missing := _lora_problem(fake, body)):
                return _invalid([missing])
            job = fake.create_job(
                operation,
                fields["model"],
                body,
                request_base_url=str(request.base_url),
                webhook_url=fields["url"],
                webhook_events=fields["events"],
            )
            return JSONResponse({"jobId": job.id, "status": job.status}, status_code=202)

        return endpoint

    async def get_job(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        try:
            uuid.UUID(job_id)
        except ValueError:
            return _invalid([{"field": "id", "message": "must be a UUID"}])
        job = fake.jobs.get(job_id)
        if job is None:
            return _error(404, "Job not found")
        return JSONResponse(job.resource(fake.is_expired(job)))

    async def list_jobs(request: Request) -> Response:
        query = request.query_params
        status, model = query.get("status") or None, query.get("model") or None
        problems = []
        if status is not None and status not in STATUSES:
            problems.append({"field": "status", "message": f"one of {', '.join(STATUSES)}"})
        limit_text = query.get("limit", "20")
        limit = int(limit_text) if limit_text.isdigit() else 0
        if not 1 <= limit <= 100:
            problems.append({"field": "limit", "message": "an integer from 1 to 100"})
        if problems:
            return _invalid(problems)
        try:
            page = fake.jobs.page(
                status=status, model=model, limit=limit, cursor=query.get("cursor") or None
            )
        except ValueError:
            return _invalid([{"field": "cursor", "message": "not a cursor from this API"}])
        return JSONResponse(
            {
                "jobs": [job.resource(fake.is_expired(job)) for job in page.jobs],
                "nextCursor": page.next_cursor,
                "hasMore": page.has_more,
            }
        )

    async def cdn(request: Request) -> Response:
        folder, name = request.path_params["folder"], request.path_params["name"]
        path = f"{folder}/{name}"
        job = fake.jobs.get(name[:36])
        if job is None or path not in job.files or fake.is_expired(job):
            return PlainTextResponse("Not Found", status_code=404)
        extension = name.rsplit(".", 1)[-1]
        return Response(
            media_file(name, f"{job.id}/{path}"),
            media_type=CONTENT_TYPES[extension],
            headers={"Cache-Control": "public, max-age=86400"},
        )

    async def behaviour(request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = await request.json()
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object of behaviour fields")
                fake.set_behaviour(updated_behaviour(fake.behaviour, changes))
            except ValueError as exc:
                return _error(400, str(exc))
        return JSONResponse(behaviour_as_json(fake.behaviour))

    async def deliveries(request: Request) -> Response:
        return JSONResponse(
            {
                "deliveries": [d.as_json() for d in list(fake.deliveries)],
                "jobs": len(fake.jobs),
                "pending": fake.pending,
            }
        )

    async def expire(request: Request) -> Response:
        job = fake.jobs.get(request.path_params["job_id"])
        if job is None:
            return _error(404, "Job not found")
        job.expired_by_hand = True
        return JSONResponse({"id": job.id, "expired": True})

    def api(handler: Endpoint) -> Endpoint:
        return _guarded(fake, handler, chaos=True)

    def control(handler: Endpoint) -> Endpoint:
        return _guarded(fake, handler, chaos=False)

    return [
        *(Route(f"/v2/{op}", api(create(op)), methods=["POST"]) for op in OPERATIONS),
        *lora_routes(fake, api),
        Route("/v2/jobs", api(list_jobs), methods=["GET"]),
        Route("/v2/jobs/{job_id}", api(get_job), methods=["GET"]),
        Route("/cdn/{folder}/{name}", cdn, methods=["GET"]),
        Route("/_fake/behaviour", control(behaviour), methods=["GET", "POST"]),
        Route("/_fake/deliveries", control(deliveries), methods=["GET"]),
        Route("/_fake/jobs/{job_id}/expire", control(expire), methods=["POST"]),
    ]


def create_fake_apiframe(
    api_key: str,
    *,
    behaviour: Behaviour | None = None,
    base_url: str | None = None,
    seed: int = 0,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """A fake Apiframe v2: accepts jobs, runs them, sends signed webhooks, serves the files.

    Background work (jobs, webhooks) runs on the app's event loop between its lifespan's start
    and end: serve it with uvicorn, or enter ``app.router.lifespan_context(app)`` around
    requests made through ``httpx.ASGITransport``. ``fake_of(app)`` gives the running state
    (jobs, deliveries, ``settle()``).

    Args:
        api_key: the key clients must send as ``X-API-Key``; its SHA-256 signs the webhooks.
        behaviour: what the fake does (timing and misbehaviour); the default is well-behaved.
        base_url: the fake's URL as seen by whoever downloads the results (a proxy, a tunnel);
            by default, the URL each job was created at.
        seed: seeds every random decision, so a run can be repeated.
        webhook_transport: an httpx transport for the webhooks (tests); the network otherwise.

    Raises:
        ValueError: the API key is empty.
    """
    if not api_key.strip():
        raise ValueError("the fake Apiframe needs a non-empty API key")
    fake = FakeApiframe(
        api_key,
        behaviour,
        seed=seed,
        base_url=base_url,
        webhook_transport=webhook_transport,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await fake.start()
        try:
            yield
        finally:
            await fake.stop()

    app = Starlette(routes=_routes(fake), lifespan=lifespan)
    app.state.fake = fake
    return app


def fake_of(app: Starlette) -> FakeApiframe:
    """The running state behind an app made by :func:`create_fake_apiframe`."""
    fake: FakeApiframe = app.state.fake
    return fake
