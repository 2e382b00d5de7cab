"""The admin API's bearer token: configured, or generated at start and logged once."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import quote

from starlette.requests import Request

from receiver.errors import Unauthorized
from receiver.settings import Settings

__all__ = ["AdminToken", "base_url", "dashboard_url", "refused", "resolve_token"]

# A server bound to every interface is opened on loopback.
_ANY_HOST = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


@dataclass(frozen=True, slots=True)
class AdminToken:
    """The token ``/api/*`` wants in ``Authorization: Bearer <token>``.

    Attributes:
        generated: made up at start because ``FRAMEHOOK_ADMIN_TOKEN`` is unset; it changes at
            every start, so the app logs it (and replicas need a configured one).
    """

    value: str = field(repr=False)
    generated: bool = False

    def admits(self, request: Request) -> bool:
        """Whether the request carries this token (compared in constant time)."""
        scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        # Bytes, not str: compare_digest refuses non-ASCII text, which a header may carry.
        return hmac.compare_digest(given.strip().encode(), self.value.encode())

    def require(self, request: Request) -> None:
        """Let the request through only with this token.

        Raises:
            Unauthorized: the token is missing or wrong.
        """
        if not self.admits(request):
            raise refused(request)


def refused(request: Request) -> Unauthorized:
    """The 401 for a request without the admin token; it tells a wrong token from none."""
    return Unauthorized(token_given="authorization" in request.headers)


def resolve_token(settings: Settings) -> AdminToken:
    """``FRAMEHOOK_ADMIN_TOKEN``, or a new random token when it is unset."""
    if settings.admin_token is not None:
        return AdminToken(settings.admin_token.get_secret_value().strip())
    return AdminToken(secrets.token_urlsafe(32), generated=True)


def base_url(settings: Settings) -> str:
    """Where a browser reaches this receiver: ``FRAMEHOOK_PUBLIC_URL`` when set (a tunnel, a
    proxy), else ``http://HOST:PORT`` (loopback for a server bound to every interface)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = _ANY_HOST.get(settings.host, settings.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"


def dashboard_url(base: str, token: str | None = None) -> str:
    """The dashboard's address under ``base``, signed in when ``token`` is given.

    The token travels in the fragment (``/#token=...``), which a browser never sends to a
    server: the page keeps it for the tab and takes it out of the address bar.
    """
    return f"{base.rstrip('/')}/" + ("" if token is None else "#token=" + quote(token, safe=""))
