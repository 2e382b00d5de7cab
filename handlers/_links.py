"""Download links for stored assets: what a handler hands to another app.

A handler that tells another system about a job's files (the built-in ``forward``) cannot
hand over a storage key: the other system has no credentials. It asks ``context.links`` for
a link instead. In a worker the link is a presigned URL when the storage can sign one (S3,
GCS, Azure), else framehook's own signed content link (local storage, with
``FRAMEHOOK_PUBLIC_URL`` set); either stops working at ``expires_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from handlers._assets import Asset

__all__ = ["AssetLink", "AssetLinker", "NoLinks"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetLink:
    """A URL that serves one stored asset's bytes to anyone holding it, until it expires.

    Attributes:
        url: an absolute ``https://`` (or ``http://``) URL; a plain GET needs no credentials.
        expires_at: when the URL stops working (timezone-aware, UTC).
    """

    url: str
    expires_at: datetime


@runtime_checkable
class AssetLinker(Protocol):
    """Makes download links for stored assets (``context.links``)."""

    async def link(self, asset: Asset) -> AssetLink | None:
        """A link to ``asset``'s stored bytes, or ``None`` when this framehook cannot make one
        (storage that cannot sign, and no ``FRAMEHOOK_PUBLIC_URL`` to serve it from).

        It does not check that the file is still stored. It raises nothing for a missing
        capability (that is ``None``); an error from the storage's signer reaches the caller.
        """
        ...


class NoLinks:
    """A linker that never has a link: the default where nothing can serve files."""

    __slots__ = ()

    async def link(self, asset: Asset) -> AssetLink | None:
        """Always ``None``."""
        return None
