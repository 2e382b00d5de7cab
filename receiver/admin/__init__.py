"""The admin API: jobs, deliveries and tasks as JSON under ``/api``, behind a bearer token.

``create_app`` mounts :func:`admin_api`'s routes and logs the dashboard's address once at
start (:func:`dashboard_url`): with the token when it was generated (nobody knows it
otherwise), and with a configured one only in console logs, never in JSON logs (they are
shipped and kept elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.routing import Route

from receiver.admin.auth import AdminToken, base_url, dashboard_url, resolve_token
from receiver.admin.routes import admin_routes
from receiver.settings import Settings

__all__ = ["AdminAPI", "AdminToken", "admin_api", "base_url", "dashboard_url"]


@dataclass(frozen=True, slots=True)
class AdminAPI:
    """The admin routes and the token they want."""

    routes: list[Route]
    token: AdminToken = field(repr=False)


def admin_api(settings: Settings) -> AdminAPI:
    """The ``/api`` routes, guarded by ``FRAMEHOOK_ADMIN_TOKEN`` or a newly generated token."""
    token = resolve_token(settings)
    return AdminAPI(admin_routes(token, settings), token)
