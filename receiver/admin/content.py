"""``GET /api/assets/{id}/content``: a captured file, read back from the configured storage.

A browser's ``<img>``, ``<video>`` and ``<audio>`` cannot send a bearer token, so besides the
token the route accepts a link signed with it (``?expires=…&signature=…``, like an S3
presigned URL; ``receiver.links`` signs them): the job timeline hands one out with each asset,
valid for an hour, and handlers hand them to other apps (``context.links``, valid
``FRAMEHOOK_ASSET_LINK_SECONDS``). A link opens that one file only. The key is derived from the
admin token, so changing the token revokes every link.

The files came from the network: they are served with their recorded content type, never
sniffed, and in a CSP sandbox, so an HTML or SVG "image" cannot run script on this origin.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import anyio
from sqlalchemy import Engine, select
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from receiver.admin.auth import AdminToken, refused
from receiver.admin.paging import parse_id
from receiver.db.models import AssetRecord, metadata
from receiver.errors import BadQuery, Forbidden, NotFound, Unavailable
from receiver.links import ContentSigner
from storage import LocalStorage, Storage, StorageError, from_url

__all__ = ["LINK_SECONDS", "MAX_EXPIRES_DIGITS", "AssetLinks", "ContentEndpoint", "parse_expires"]

LINK_SECONDS = 3600
MAX_EXPIRES_DIGITS = 12
"""The longest ``expires`` a link may carry: Unix seconds have 10 digits until the year 2286."""
_EXPIRES = re.compile(f"[0-9]{{1,{MAX_EXPIRES_DIGITS}}}")  # [0-9]: ASCII only, unlike \d
_assets = metadata.tables[AssetRecord.__tablename__]


@dataclass(frozen=True, slots=True)
class AssetLinks:
    """Signs and checks the links to assets' content."""

    token: AdminToken = field(repr=False)

    @property
    def signer(self) -> ContentSigner:
        """The token's link key (``receiver.links``, which a worker signs with too)."""
        return ContentSigner(self.token.value)

    def link(self, asset_id: int, now: float | None = None, seconds: int = LINK_SECONDS) -> str:
        """The path (with its query) that opens asset ``asset_id`` for ``seconds``."""
        expires = int((time.time() if now is None else now) + seconds)
        return self.signer.path(asset_id, expires)

    def admits(self, request: Request, asset_id: int) -> bool:
        """Whether the request carries the token or a valid link to this asset.

        Raises:
            BadQuery: the link's ``expires`` is not a Unix time.
            Forbidden: the link is expired or its signature is wrong.
        """
        if self.token.admits(request):
            return True
        expires, signature = (request.query_params.get(k) for k in ("expires", "signature"))
        if expires is None or signature is None:
            return False
        when = parse_expires(expires)
        if not self.signer.signed(asset_id, when, signature):
            raise Forbidden("bad_signature", "this link was not signed by this server")
        if when < time.time():
            raise Forbidden("link_expired", "this link has expired; ask for a new one")
        return True


def parse_expires(value: str) -> int:
    """A signed link's ``expires``: Unix seconds, as up to :data:`MAX_EXPIRES_DIGITS` ASCII
    digits.

    Checked before ``int()``: ``str.isdigit`` also accepts other scripts' digits ("١٢٣") and
    superscripts ("²", which ``int`` refuses), and ``int`` refuses more than 4,300 digits;
    either way the link was not made here, and the answer is a 400, not a 500.

    Raises:
        BadQuery: ``value`` is not such a number.
    """
    if _EXPIRES.fullmatch(value) is None:
        raise BadQuery(
            "bad_expires",
            f"expires must be a Unix time in seconds (at most {MAX_EXPIRES_DIGITS} digits 0-9)",
        )
    return int(value)


@dataclass(slots=True)
class ContentEndpoint:
    """Serves assets from ``FRAMEHOOK_STORAGE_URL``; the store is opened at first use."""

    links: AssetLinks
    storage_url: str
    _storage: Storage | None = None

    def storage(self) -> Storage:
        if self._storage is None:
            try:
                self._storage = from_url(self.storage_url)
            except StorageError as exc:
                raise Unavailable("storage_unavailable", str(exc)) from exc
        return self._storage

    async def handle(self, request: Request) -> Response:
        """``GET /api/assets/{id}/content``: the asset's bytes, to the token or a signed link.

        Raises:
            Unauthorized: neither the token nor a link came.
            BadQuery: the id, or the link's ``expires``, is malformed.
            Forbidden: the link is expired or not this server's.
            NotFound: no such asset, or its file is not in this server's storage.
            Unavailable: the storage cannot be opened.
        """
        asset_id = parse_id(request.path_params["id"], "id")
        if not self.links.admits(request, asset_id):
            raise refused(request)
        engine: Engine = request.app.state.engine
        row = await anyio.to_thread.run_sync(_find, engine, asset_id)
        if row is None:
            raise NotFound("not_found", f"no asset {asset_id}")
        # The embedded worker's store when there is one: the same client, and the same
        # objects even for a process-local store (memory://).
        worker = getattr(request.app.state, "worker", None)
        storage = worker.storage if worker is not None else self.storage()
        if storage.uri(row.key) != row.storage_uri:
            # A plugin stored it somewhere of its own: this server cannot read it.
            raise NotFound("stored_elsewhere", f"asset {asset_id} is in {row.storage_uri}")
        headers = {
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, max-age=3600",
            "ETag": f'"{row.sha256}"',
        }
        media_type = row.content_type or "application/octet-stream"
        path = _local_file(storage, row.storage_uri)
        if path is not None:
            if not await anyio.Path(path).is_file():
                raise NotFound("object_missing", f"asset {asset_id} is gone from storage")
            # A file answers Range requests, so a video can seek.
            return FileResponse(path, media_type=media_type, headers=headers)
        if not await storage.exists(row.key):
            raise NotFound("object_missing", f"asset {asset_id} is gone from storage")
        headers["Content-Length"] = str(row.size)
        return StreamingResponse(storage.open(row.key), media_type=media_type, headers=headers)


def _find(engine: Engine, asset_id: int) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(_assets).where(_assets.c.id == asset_id)).first()


def _local_file(storage: Storage, uri: str) -> Path | None:
    if not isinstance(storage, LocalStorage) or not uri.startswith("file:"):
        return None
    path = Path(url2pathname(urlsplit(uri).path)).resolve()
    return path if path.is_relative_to(storage.root) else None
