"""JSON answers, and the one place where exceptions become HTTP answers.

Endpoints raise (a :class:`~receiver.errors.RequestRejected`, or let SQLAlchemy's
``OperationalError`` through) and :data:`exception_handlers`, which the app registers, answer.
The webhook catches its rejections itself only to count and log them; it is a raw ASGI
callable (the hot path), so it answers with :func:`send_json` and :func:`send_rejection`, which
write the same bytes as :func:`json_response` and :func:`rejection`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Send

from receiver.errors import RequestRejected, Unauthorized, Unavailable
from receiver.logs import get_logger

__all__ = [
    "DATABASE_UNAVAILABLE",
    "exception_handlers",
    "internal_error",
    "json_response",
    "rejection",
    "send_json",
    "send_rejection",
]

_log = get_logger("framehook.http")
_REASONS = {404: "not_found", 405: "method_not_allowed"}

DATABASE_UNAVAILABLE = "database_unavailable"
"""The ``reason`` of every answer that says the database cannot be reached."""


def json_response(
    status: int, content: Mapping[str, Any], request_id: str | None = None, **headers: str
) -> Response:
    """A compact JSON response (orjson), with ``X-Request-Id`` when known.

    ``content`` is a dict (a view's TypedDict is one): orjson writes dicts, not other mappings.
    """
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    return Response(orjson.dumps(content), status, headers=headers, media_type="application/json")


async def send_json(
    send: Send,
    status: int,
    content: Mapping[str, Any],
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Send what :func:`json_response` would answer, header for header, without building a
    ``Response`` (for raw ASGI callables)."""
    body = orjson.dumps(content)
    raw = (
        [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if headers
        else []
    )
    if request_id is not None:
        raw.append((b"x-request-id", request_id.encode("latin-1")))
    raw.append((b"content-length", str(len(body)).encode("latin-1")))
    raw.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _headers(exc: RequestRejected) -> dict[str, str]:
    headers = {"Connection": "close"} if exc.unread_body else {}
    if isinstance(exc, Unavailable) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        # RFC 6750: a token that came and was wrong is "invalid_token"; a missing one is not.
        error = ', error="invalid_token"' if exc.token_given else ""
        headers["WWW-Authenticate"] = f'Bearer realm="framehook"{error}'
    return headers


def rejection(exc: RequestRejected, request_id: str | None = None, **extra: Any) -> Response:
    """The error answer for ``exc``: its status, ``{"ok": false, "reason", "detail"}``, and
    ``Retry-After`` (503) or a ``WWW-Authenticate`` challenge (the admin API's 401)."""
    return json_response(
        exc.status_code, _problem(exc, request_id, extra), request_id, **_headers(exc)
    )


async def send_rejection(
    send: Send, exc: RequestRejected, request_id: str | None = None, **extra: Any
) -> None:
    """Send what :func:`rejection` would answer (for raw ASGI callables)."""
    await send_json(
        send, exc.status_code, _problem(exc, request_id, extra), request_id, _headers(exc)
    )


def _problem(
    exc: RequestRejected, request_id: str | None, extra: Mapping[str, Any]
) -> dict[str, Any]:
    body = {"ok": False, "reason": exc.reason, "detail": exc.detail, **extra}
    if request_id is not None:
        body["requestId"] = request_id
    return body


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


async def _database_down(_request: Request, exc: Exception) -> Response:
    # An endpoint's read or write that could not reach the database: a 503 the client may
    # retry, not a 500. The intake maps its own (``group_commit``); this covers the rest.
    assert isinstance(exc, OperationalError)
    return rejection(Unavailable(DATABASE_UNAVAILABLE, "database unavailable"))


def internal_error() -> dict[str, Any]:
    """The body of a 500: a bug, not bad input; still JSON, never a traceback on the wire."""
    return {"ok": False, "reason": "internal_error", "detail": "internal error"}


async def _unexpected(request: Request, exc: Exception) -> Response:
    _log.error("unhandled error", path=request.url.path, exc_info=exc)
    return json_response(500, internal_error())


exception_handlers: dict[Any, Any] = {
    HTTPException: _http_exception,
    RequestRejected: _rejected,
    OperationalError: _database_down,
    Exception: _unexpected,
}
