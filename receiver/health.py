"""Liveness and readiness probes."""

from __future__ import annotations

import anyio
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response

from receiver.db.engine import ping
from receiver.errors import Unavailable
from receiver.responses import DATABASE_UNAVAILABLE, json_response

__all__ = ["healthz", "readyz"]

READY_TIMEOUT_SECONDS = 2.0


async def healthz(_request: Request) -> Response:
    """200 while the process can answer at all."""
    return json_response(200, {"ok": True})


async def readyz(request: Request) -> Response:
    """200 when the database answers within two seconds, else 503 (take me out of rotation).

    Raises:
        Unavailable: the database failed or was slow; answered without ``Retry-After``, since
            the prober keeps its own schedule.
    """
    engine: Engine = request.app.state.engine
    try:
        with anyio.fail_after(READY_TIMEOUT_SECONDS):
            await anyio.to_thread.run_sync(ping, engine, abandon_on_cancel=True)
    except Exception as exc:
        detail = (
            "database did not answer in time"
            if isinstance(exc, TimeoutError)
            else "database unavailable"
        )
        raise Unavailable(DATABASE_UNAVAILABLE, detail, retry_after=None) from exc
    return json_response(200, {"ok": True})
