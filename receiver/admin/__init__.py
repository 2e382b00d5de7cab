"""The admin API: jobs, deliveries and tasks as JSON under ``/api``, behind a bearer token.

``create_app`` mounts :func:`admin_api`'s routes and, when the token was generated, logs it
once at start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.routing import Route

from receiver.admin.auth import AdminToken, resolve_token
from receiver.admin.routes import admin_routes
from receiver.settings import Settings

__all__ = ["AdminAPI", "AdminToken", "admin_api"]


@dataclass(frozen=True, slots=True)
class AdminAPI:
    """The admin routes and the token they want."""

    routes: list[Route]
    token: AdminToken = field(repr=False)


def admin_api(settings: Settings) -> AdminAPI:
    """The ``/api`` routes, guarded by ``FRAMEHOOK_ADMIN_TOKEN`` or a newly generated token."""
    token = resolve_token(settings)
    return AdminAPI(admin_routes(token, settings), token)
