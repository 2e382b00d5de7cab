"""Serving ``/metrics``: on the app's port (:func:`metrics_routes`) or on a port of its own
(:func:`wsgi_app`, which ``receiver.services.serving_metrics`` serves), behind
``FRAMEHOOK_METRICS_TOKEN`` when it is set.

The metrics tell whoever reads them how much traffic arrives, which handlers run and how they
fail, and what is spent on which model: worth a token, or a port the public cannot reach.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import anyio
import orjson
from prometheus_client.exposition import make_wsgi_app

from receiver.errors import Unauthorized

if TYPE_CHECKING:
    # Types only: a standalone worker serves its metrics with wsgi_app, never with starlette;
    # every module it loads stays resident.
    from pydantic import SecretStr
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from receiver.metrics.meters import Metrics
    from receiver.settings import Settings

__all__ = ["MetricsEndpoint", "WSGIApp", "bearer_matches", "metrics_routes", "wsgi_app"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
"""A WSGI application (what prometheus-client's exporter serves)."""

_CHALLENGE = 'Bearer realm="framehook"'


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (compared in constant
    time).

    The admin API's token check (``receiver.admin.auth``) reads the header the same way; this
    module does not import it, because a standalone worker, which serves metrics too, loads no
    admin API.
    """
    scheme, _, given = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Bytes, not str: compare_digest refuses non-ASCII text, which a header may carry.
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _token_text(token: SecretStr) -> str:
    return token.get_secret_value().strip()


def wsgi_app(metrics: Metrics, token: SecretStr | None = None) -> WSGIApp:
    """prometheus-client's exposition of ``metrics`` as a WSGI app, answering only requests
    with ``Authorization: Bearer <token>`` when ``token`` is given (others get the receiver's
    401: JSON with a ``reason``, and a Bearer challenge)."""
    app: WSGIApp = make_wsgi_app(metrics.registry)
    if token is None:
        return app
    expected = _token_text(token)

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        authorization = environ.get("HTTP_AUTHORIZATION")
        if bearer_matches(authorization, expected):
            return app(environ, start_response)
        refused = Unauthorized(token_given=authorization is not None)
        body = {"ok": False, "reason": refused.reason, "detail": refused.detail}
        headers = [("Content-Type", "application/json"), ("WWW-Authenticate", _CHALLENGE)]
        start_response("401 Unauthorized", headers)
        return [orjson.dumps(body)]

    return guarded


class MetricsEndpoint:
    """``GET /metrics`` on the app's port: ``app.state.metrics`` in Prometheus text format
    (OpenMetrics if asked), to ``Authorization: Bearer <token>`` only when a token is set."""

    __slots__ = ("_token",)

    def __init__(self, token: SecretStr | None = None) -> None:
        self._token = None if token is None else _token_text(token)

    async def handle(self, request: Request) -> Response:
        """The scrape.

        Raises:
            Unauthorized: a token is set and the request does not carry it.
        """
        from starlette.responses import Response  # the receiver's alone: see the imports

        authorization = request.headers.get("authorization")
        if self._token is not None and not bearer_matches(authorization, self._token):
            raise Unauthorized(token_given=authorization is not None)
        metrics: Metrics = request.app.state.metrics
        body, content_type = await anyio.to_thread.run_sync(
            metrics.render, request.headers.get("accept")
        )
        return Response(body, headers={"Content-Type": content_type})


def metrics_routes(settings: Settings) -> list[Route]:
    """``/metrics`` on the app's port, behind ``FRAMEHOOK_METRICS_TOKEN`` when set; none when
    ``FRAMEHOOK_METRICS_PORT`` gives the metrics a port of their own."""
    from starlette.routing import Route

    if settings.metrics_port is not None:
        return []
    endpoint = MetricsEndpoint(settings.metrics_token)
    return [Route("/metrics", endpoint.handle, methods=["GET"], name="metrics")]
