"""Download links to captured files: framehook's signed content links, and the linker handlers
get as ``context.links``.

A content link (``/api/assets/{id}/content?expires=…&signature=…``) opens one asset without
the admin token, like an S3 presigned URL. Its HMAC key is derived from the admin token, so
any process that knows the token can make links the receiver accepts (a standalone
``framehook worker`` included), and changing the token revokes them all. The admin API checks
them (``receiver.admin.content``); this module has no web framework in it, so a worker process
can sign without carrying one.

The linker a worker gives its handlers prefers the storage's own presigned URL (S3, GCS,
Azure: the app fetches straight from the bucket); for a store that cannot sign it falls back to
a content link under ``FRAMEHOOK_PUBLIC_URL``. Either is valid ``FRAMEHOOK_ASSET_LINK_SECONDS``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import anyio
from sqlalchemy import Engine, select

from handlers import Asset, AssetLink
from receiver.db.models import AssetRecord, metadata
from receiver.logs import get_logger
from receiver.settings import Settings
from storage import Storage, presigned_url

__all__ = ["ContentSigner", "WorkerLinks", "asset_linker"]

_log = get_logger("framehook.links")
_assets = metadata.tables[AssetRecord.__tablename__]


@dataclass(frozen=True, slots=True)
class ContentSigner:
    """Signs and checks content links with a key derived from the admin token."""

    token: str = field(repr=False)

    def signature(self, asset_id: int, expires: int) -> str:
        """The link's signature: HMAC-SHA256 of ``id:expires``."""
        key = hashlib.sha256(b"framehook asset link\0" + self.token.encode()).digest()
        return hmac.new(key, f"{asset_id}:{expires}".encode(), hashlib.sha256).hexdigest()

    def path(self, asset_id: int, expires: int) -> str:
        """The path (with its query) that opens asset ``asset_id`` until Unix time ``expires``."""
        query = urlencode({"expires": expires, "signature": self.signature(asset_id, expires)})
        return f"/api/assets/{asset_id}/content?{query}"

    def signed(self, asset_id: int, expires: int, signature: str) -> bool:
        """Whether ``signature`` is this key's for the asset and time (constant time)."""
        expected = self.signature(asset_id, expires)
        return hmac.compare_digest(signature.encode(), expected.encode())


class WorkerLinks:
    """``handlers.AssetLinker`` for a worker: presigned URLs, else content links.

    Args:
        storage: the worker's store (the one the content route reads, too).
        engine: the database, to find an asset's id for its content link.
        seconds: how long a link is valid.
        public_url: where the app reaches the receiver (``FRAMEHOOK_PUBLIC_URL``), if set.
        signer: signs content links; ``None`` when this process has no usable admin token.
        missing: why content links cannot be made (logged once, at the first link wanted).
        caveat: what to know about the content links made (logged once, at the first one).
    """

    def __init__(
        self,
        storage: Storage,
        engine: Engine,
        *,
        seconds: int,
        public_url: str | None,
        signer: ContentSigner | None,
        missing: str | None = None,
        caveat: str | None = None,
    ) -> None:
        self.storage = storage
        self.engine = engine
        self.valid_for = timedelta(seconds=seconds)
        self.public_url = public_url.rstrip("/") if public_url else None
        self.signer = signer
        self.missing = missing
        self.caveat = caveat
        self._told = False

    async def link(self, asset: Asset) -> AssetLink | None:
        """A link to ``asset``'s bytes, valid for ``seconds``; ``None`` when the asset is not
        in this worker's storage (a plugin stored it elsewhere) or no link can be made.

        Raises:
            StorageError: the storage failed to sign.
        """
        if self.storage.uri(asset.key) != asset.storage_uri:
            return None
        # Taken before signing, so the link works at least until the time it states.
        expires_at = datetime.now(UTC).replace(microsecond=0) + self.valid_for
        url = await presigned_url(self.storage, asset.key, self.valid_for)
        if url is not None:
            return AssetLink(url=url, expires_at=expires_at)
        if self.public_url is None or self.signer is None:
            if not self._told:
                self._told = True
                _log.warning("no links to stored files", reason=self.missing)
            return None
        asset_id = await anyio.to_thread.run_sync(self._find, asset)
        if asset_id is None:
            return None
        if self.caveat is not None and not self._told:
            self._told = True
            _log.warning("links to stored files are temporary", reason=self.caveat)
        path = self.signer.path(asset_id, int(expires_at.timestamp()))
        return AssetLink(url=self.public_url + path, expires_at=expires_at)

    def _find(self, asset: Asset) -> int | None:
        a = _assets
        query = select(a.c.id).where(
            a.c.job_id == asset.job_id,
            a.c.handler == asset.handler,
            a.c.position == asset.position,
            a.c.key == asset.key,
        )
        with self.engine.connect() as connection:
            found = connection.execute(query).scalar()
        return None if found is None else int(found)


def asset_linker(
    settings: Settings, storage: Storage, engine: Engine, token: str | None = None
) -> WorkerLinks:
    """The linker for a worker configured by ``settings``.

    Args:
        token: the admin token this process's receiver uses (``serve`` passes its own, which
            may be generated); a standalone worker passes none and uses
            ``FRAMEHOOK_ADMIN_TOKEN``: a generated one would differ from the receiver's.
    """
    configured = settings.admin_token.get_secret_value().strip() if settings.admin_token else None
    token = token or configured
    missing = None
    if not settings.public_url:
        missing = (
            "the storage cannot sign URLs and FRAMEHOOK_PUBLIC_URL is unset: set it to where "
            "your app reaches this receiver"
        )
    elif not token:
        missing = (
            "the storage cannot sign URLs and FRAMEHOOK_ADMIN_TOKEN is unset: set it, the same "
            "for `framehook serve` and `framehook worker`, to sign links the receiver accepts"
        )
    caveat = None
    if token and not configured:
        caveat = (
            "they are signed with the admin token generated at this start and stop working "
            "when serve restarts: set FRAMEHOOK_ADMIN_TOKEN to keep them valid"
        )
    return WorkerLinks(
        storage,
        engine,
        seconds=settings.asset_link_seconds,
        public_url=settings.public_url,
        signer=ContentSigner(token) if token else None,
        missing=missing,
        caveat=caveat,
    )
