"""The fake Apiframe as an ASGI app: the v2 job routes, the job API, a CDN and control routes.

Routes (all but the CDN and ``GET /v2/models`` need the API key, as ``X-API-Key: <key>`` or
``Authorization: Bearer <key>``; the ``/v2`` ones may answer 429/503 on purpose; an unknown
route or method answers Apiframe's ``{"error": ...}`` with 404 or 405):

- ``POST /v2/images/generate`` and the other job-creating routes: 202 ``{jobId, status}``.
- ``GET /v2/jobs/{id}``, ``GET /v2/jobs?status=&model=&limit=&cursor=&scope=&search=``
  ``&include_models=``: the job API.
- ``POST /v2/loras``, ``GET /v2/loras``, ``GET|DELETE /v2/loras/{id}``: LoRA trainings
  (``receiver.dev.fakeapi.loraroutes``); a ``flux-lora`` job needs a ``READY`` one.
- ``GET /v2/me``, ``GET /v2/models``, ``POST /v2/uploads`` (served at ``/cdn/uploads/``),
  ``POST /v2/assets/create``, ``GET /v2/assets/{assetId}``: ``receiver.dev.fakeapi.operations``.
- ``GET /cdn/{images|videos|audio}/{file}``: the result files, until they expire.
- ``GET|POST /_fake/behaviour``: read or change the behaviour (POST takes the fields to change).
- ``GET /_fake/deliveries``: what became of every webhook, and how much work is pending.
- ``POST /_fake/jobs/{id}/expire``: expire one job's assets now.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from receiver.dev.fakeapi.account import account_for
from receiver.dev.fakeapi.bodies import OPERATIONS
from receiver.dev.fakeapi.catalogue import ACTIONS
from receiver.dev.fakeapi.chaos import Behaviour, behaviour_as_json, updated_behaviour
from receiver.dev.fakeapi.idempotency import KEY_MAX_LENGTH, fingerprint
from receiver.dev.fakeapi.joblist import job_list
from receiver.dev.fakeapi.lifecycle import FakeApiframe
from receiver.dev.fakeapi.loraroutes import lora_routes
from receiver.dev.fakeapi.media import CONTENT_TYPES, media_file
from receiver.dev.fakeapi.operations import operation_routes
from receiver.dev.fakeapi.validation import JobRequest, job_request

__all__ = ["create_fake_apiframe", "fake_of"]

Endpoint = Callable[[Request], Awaitable[Response]]
WEBHOOK_EVENTS = ("progress", "completed", "failed")


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _invalid(details: Mapping[str, list[str]] | list[dict[str, str]]) -> JSONResponse:
    """400 in the spec's ``ValidationError`` shape: ``details`` maps JSON paths to messages
    (a list of ``{field, message}`` is folded into it)."""
    if isinstance(details, list):
        folded: dict[str, list[str]] = {}
        for problem in details:
            folded.setdefault(problem["field"], []).append(problem["message"])
        details = folded
    return _error(400, "Validation failed", details=dict(details))


async def _http_error(request: Request, exc: Exception) -> Response:
    """An unknown route or method, answered like Apiframe (``ErrorResponse``), not plain text."""
    assert isinstance(exc, HTTPException)
    message = "Not found" if exc.status_code == 404 else "Method not allowed"
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


def _guarded(fake: FakeApiframe, handler: Endpoint, *, chaos: bool) -> Endpoint:
    """``handler`` behind the API key check and, for the job API, the 429/503 dice."""

    async def endpoint(request: Request) -> Response:
        # Apiframe's two security schemes: the API key header, or a bearer token (the fake
        # takes its API key as the token). GET /v2/me tells the two apart.
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        by_api_key = "x-api-key" in request.headers or scheme.lower() != "bearer"
        given = request.headers.get("x-api-key", "") if by_api_key else token.strip()
        request.state.by_api_key = by_api_key
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


def _job_request(
    fake: FakeApiframe, operation: str, body: object
) -> tuple[str, JobRequest] | JSONResponse:
    """The job's model and the request's fields, or the answer refusing the request."""
    checked = job_request(operation, body)
    if not isinstance(checked, JobRequest):
        return _invalid(checked)
    model = checked.model
    if checked.parent_job_id is not None:
        # The spec gives these routes no 404: an unknown parent is a field that fails validation.
        parent = fake.jobs.get(checked.parent_job_id)
        wanted = ACTIONS[operation][0]
        if parent is None or parent.model != wanted:
            return _invalid({"parentJobId": [f"Not a {wanted} job of this team"]})
        model = parent.model
    assert model is not None
    assert isinstance(body, dict)
    if model == "flux-lora" and (missing := _lora_problem(fake, body)):
        return _invalid([missing])
    return model, checked


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
            key = request.headers.get("idempotency-key") or None
            if key is not None and len(key) > KEY_MAX_LENGTH:
                return _invalid({"Idempotency-Key": [f"At most {KEY_MAX_LENGTH} characters"]})
            raw = await request.body()
            try:
                body = json.loads(raw)
            except (ValueError, RecursionError):
                return _invalid({"": ["Invalid JSON"]})
            accepted = _job_request(fake, operation, body)
            if isinstance(accepted, JSONResponse):
                return accepted
            model, fields = accepted
            request_print = fingerprint(operation, raw)
            if key is not None and (seen := fake.idempotency.recall(key)) is not None:
                first_print, job_id = seen
                if first_print != request_print:
                    # The spec documents no 409/422 here: 400 is its only request error.
                    reused = "Already used with a different request (within 24 hours)"
                    return _invalid({"Idempotency-Key": [reused]})
                original = fake.jobs.get(job_id)
                assert original is not None
                return JSONResponse({"jobId": original.id, "status": original.status}, 202)
            if (sealed := await fake.webhook_url_problem(body.get("webhookUrl"))) is not None:
                return _invalid({"webhookUrl": [sealed]})
            job = fake.create_job(
                operation,
                model,
                body,
                request_base_url=str(request.base_url),
                webhook_url=fields.webhook_url,
                webhook_events=fields.webhook_events,
            )
            if key is not None:
                fake.idempotency.remember(key, request_print, job.id)
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
        status, body = job_list(
            fake.jobs, request.query_params, account_for(fake.api_key), fake.is_expired
        )
        return JSONResponse(body, status_code=status)

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
        *operation_routes(fake, api),
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
    allow_public_webhooks: bool = False,
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
            A transport given here is not sealed: it decides where webhooks go.
        allow_public_webhooks: let a job's ``webhookUrl`` name a public host. By default the
            fake, sending over the network, refuses one (400, ``details.webhookUrl``) and never
            sends a webhook to a public address (``receiver.dev.fakeapi.sealing``).

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
        allow_public_webhooks=allow_public_webhooks,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await fake.start()
        try:
            yield
        finally:
            await fake.stop()

    app = Starlette(
        routes=_routes(fake),
        lifespan=lifespan,
        exception_handlers={404: _http_error, 405: _http_error},
    )
    app.state.fake = fake
    return app


def fake_of(app: Starlette) -> FakeApiframe:
    """The running state behind an app made by :func:`create_fake_apiframe`."""
    fake: FakeApiframe = app.state.fake
    return fake
