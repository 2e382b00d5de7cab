"""The baseline for ``bench/ack.py``: a Starlette endpoint that only verifies the signature.

It does what every receiver must do and nothing more: read the body, check
``X-Webhook-Signature`` with framehook's own ``Verifier`` (so the HMAC cost is identical), and
answer 202. Whatever framehook costs beyond this is parsing, dedupe, durable commit and logging.

Serve it like framehook is served::

    APIFRAME_API_KEY=... uvicorn bench.bare_app:app --host 127.0.0.1 --port 8001 \\
        --no-access-log --log-level warning --no-server-header --no-proxy-headers
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receiver.apiframe.signatures import Verifier
from receiver.errors import SignatureRejected

__all__ = ["app", "create_app"]

# Small fixed bodies: the baseline should not pay for JSON encoding framehook also skips.
_ACCEPTED = b'{"ok":true}'
_REJECTED = b'{"ok":false,"reason":"signature_rejected"}'


def create_app(api_key: str) -> Starlette:
    """The bare endpoint for one API key."""
    verifier = Verifier([api_key])

    async def webhook(request: Request) -> Response:
        body = await request.body()
        try:
            verifier.verify(request.headers.get("x-webhook-signature"), body)
        except SignatureRejected:
            return Response(_REJECTED, 401, media_type="application/json")
        return Response(_ACCEPTED, 202, media_type="application/json")

    return Starlette(routes=[Route("/webhooks/apiframe", webhook, methods=["POST"])])


def _from_environment() -> Starlette:
    key = os.environ.get("APIFRAME_API_KEY", "").strip()
    if not key:
        raise RuntimeError("bench.bare_app needs APIFRAME_API_KEY in the environment")
    return create_app(key)


# uvicorn imports ``bench.bare_app:app``; the key comes from the environment, like framehook's.
app = _from_environment()
