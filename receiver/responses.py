"""JSON answers, and the one place where exceptions become HTTP statuses."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from receiver.errors import RequestRejected, Unavailable
from receiver.logs import get_logger

__all__ = ["exception_handlers", "json_response", "rejection"]

_log = get_logger("framehook.http")
_REASONS = {404: "not_found", 405: "method_not_allowed"}


def json_response(
    status: int, content: dict[str, Any], request_id: str | None = None, **headers: str
) -> Response:
    """A compact JSON response (orjson), with ``X-Request-Id`` when known."""
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    return Response(orjson.dumps(content), status, headers=headers, media_type="application/json")


def rejection(exc: RequestRejected, request_id: str | None = None, **extra: Any) -> Response:
    """The error answer for ``exc``: its status, and ``{"ok": false, "reason", "detail"}``."""
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Unavailable) else {}
    body = {"ok": False, "reason": exc.reason, "detail": exc.detail, **extra}
    if request_id is not None:
        body["requestId"] = request_id
    return json_response(exc.status_code, body, request_id, **headers)


async def _http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    reason = _REASONS.get(exc.status_code, "http_error")
    response = json_response(exc.status_code, {"ok": False, "reason": reason, "detail": exc.detail})
    # Starlette's own headers (``Allow`` on a 405) belong on the answer.
    response.headers.update(exc.headers or {})
    return response


async def _rejected(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestRejected)
    return rejection(exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # A bug, not bad input; still JSON, still no traceback on the wire.
    _log.error("unhandled error", path=request.url.path, exc_info=exc)
    return json_response(500, {"ok": False, "reason": "internal_error", "detail": "internal error"})


exception_handlers: dict[Any, Any] = {
    HTTPException: _http_exception,
    RequestRejected: _rejected,
    Exception: _unexpected,
}
