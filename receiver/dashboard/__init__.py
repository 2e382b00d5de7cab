"""The dashboard at ``/``: a static page that renders the admin API and follows ``/api/events``.

The page and its two files hold no data, so they are served without the token; everything
they show comes from ``/api/*``, which wants it. The page is strict about what it may load
(its own origin only), because the data it renders came from the network.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

__all__ = ["dashboard_routes"]

_STATIC = Path(__file__).parent / "static"
# The script is a few ES modules (app.js imports the others), each served as its own file: the
# policy below allows scripts from this origin only, and modules need no inline code.
_FILES = {
    **{module.name: "text/javascript" for module in sorted(_STATIC.glob("*.js"))},
    "style.css": "text/css",
}
# The page's own origin only: no inline script or style, no framing; media from /api links.
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
_HEADERS = {
    "Content-Security-Policy": _POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The files are small and change with the release; revalidation keeps upgrades visible.
    "Cache-Control": "no-cache",
}


async def _page(_request: Request) -> Response:
    return FileResponse(_STATIC / "index.html", media_type="text/html", headers=_HEADERS)


async def _file(request: Request) -> Response:
    name = request.url.path.rsplit("/", 1)[-1]
    return FileResponse(_STATIC / name, media_type=_FILES[name], headers=_HEADERS)


def dashboard_routes() -> list[Route]:
    """``GET /`` and the page's script and stylesheet."""
    return [
        Route("/", _page, methods=["GET"], name="dashboard"),
        *(
            Route(f"/dashboard/{name}", _file, methods=["GET"], name=f"dashboard_{name}")
            for name in _FILES
        ),
    ]
