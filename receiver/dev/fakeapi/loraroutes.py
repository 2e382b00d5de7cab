"""The fake's LoRA routes: ``POST /v2/loras``, ``GET /v2/loras``, ``GET|DELETE /v2/loras/{id}``.

``POST`` takes Apiframe's multipart/form-data (15 to 30 ``images`` files, ``name``, ...,
``webhookUrl``, ``webhookEvents`` as a comma-separated string) or, for tests, the same fields as
a JSON object with ``images`` a list. Answers and errors are shaped like Apiframe's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from receiver.dev.fakeapi.account import account_for
from receiver.dev.fakeapi.lifecycle import FakeApiframe
from receiver.dev.fakeapi.loras import json_images, lora_request, parse_multipart, valid_lora_id

__all__ = ["MAX_LORA_BODY_BYTES", "lora_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]
MAX_LORA_BODY_BYTES = 100 * 1024 * 1024
"""Apiframe's limit on a training's photos, all together."""


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _invalid(field: str, message: str) -> JSONResponse:
    return _error(400, "Validation failed", details={field: [message]})


async def _fields(request: Request) -> tuple[dict[str, Any], int] | Response:
    """The request's fields and image count, or the error to answer."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_LORA_BODY_BYTES:
        return _error(400, "The images exceed 100 MB in total")
    body = await request.body()
    if len(body) > MAX_LORA_BODY_BYTES:
        return _error(400, "The images exceed 100 MB in total")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        parsed = parse_multipart(body, content_type)
        if parsed is None:
            return _error(400, "The body is not valid multipart/form-data")
        return dict(parsed[0]), parsed[1]
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _error(400, "Send multipart/form-data (or, to this fake, a JSON object)")
    if not isinstance(data, dict):
        return _error(400, "The body must be a JSON object")
    return data, json_images(data.get("images"))


def lora_routes(fake: FakeApiframe, api: Callable[[Endpoint], Endpoint]) -> list[Route]:
    """The LoRA routes, each wrapped by ``api`` (the API key check and the 429/503 dice)."""

    async def create(request: Request) -> Response:
        found = await _fields(request)
        if isinstance(found, Response):
            return found
        fields, images = found
        values, problems = lora_request(fields, images)
        if problems:
            return _error(400, "Validation failed", details=problems)
        owner = account_for(fake.api_key)
        lora = fake.create_lora({**values, "user_id": owner.user_id, "team_id": owner.team_id})
        return JSONResponse(
            {"id": lora.id, "status": lora.status, "imageCount": lora.image_count},
            status_code=202,
        )

    async def listing(request: Request) -> Response:
        query = request.query_params
        limit_text = query.get("limit", "24")
        limit = int(limit_text) if limit_text.isdigit() else 0
        if not 1 <= limit <= 100:
            return _invalid("limit", "Expected an integer from 1 to 100")
        archived = query.get("includeArchived", "false").lower() == "true"
        try:
            items, cursor = fake.loras.page(
                limit=limit, cursor=query.get("cursor") or None, archived=archived
            )
        except ValueError:
            return _invalid("cursor", "Invalid cursor")
        return JSONResponse({"items": [lo.resource() for lo in items], "nextCursor": cursor})

    async def one(request: Request) -> Response:
        lora_id = request.path_params["lora_id"]
        if not valid_lora_id(lora_id):
            return _invalid("id", "Invalid uuid")
        lora = fake.loras.get(lora_id)
        if lora is None:
            return _error(404, "LoRA not found")
        if request.method == "DELETE":
            # A soft delete, idempotent: archiving an archived LoRA is 204 again.
            lora.status = "ARCHIVED"
            return Response(status_code=204)
        return JSONResponse(lora.resource())

    return [
        Route("/v2/loras", api(create), methods=["POST"]),
        Route("/v2/loras", api(listing), methods=["GET"]),
        Route("/v2/loras/{lora_id}", api(one), methods=["GET", "DELETE"]),
    ]
