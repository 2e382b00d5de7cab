"""Presigned URLs: a link to one stored object that works without the store's credentials.

An optional capability, not part of ``Storage``: S3, GCS and Azure sign URLs (their ``presign``),
a local or in-memory store cannot. A custom backend that can sign implements ``presign`` too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol, runtime_checkable

from storage._protocol import Storage

__all__ = ["Presigning", "presigned_url"]


@runtime_checkable
class Presigning(Protocol):
    """A store that can sign GET URLs to its objects (``S3Storage``, ``GCSStorage``,
    ``AzureStorage``)."""

    async def presign(self, key: str, expires_in: timedelta) -> str:
        """A URL a plain GET, without credentials, reads the object under ``key`` from, for
        ``expires_in``. It does not check that the object exists (signing is local).

        Raises:
            ValueError: ``expires_in`` is not positive.
            InvalidKey: the key is empty, absolute, or escapes the store.
            StorageError: the store cannot sign (credentials that cannot, such as GCS without
                a service account key).
        """
        ...


async def presigned_url(store: Storage, key: str, expires_in: timedelta) -> str | None:
    """A presigned GET URL to the object under ``key``, valid for ``expires_in``, or ``None``
    when ``store`` cannot sign one (local, memory, a custom backend without ``presign``).

    Raises:
        ValueError, InvalidKey, StorageError: as ``Presigning.presign``.
    """
    if not isinstance(store, Presigning):
        return None
    return await store.presign(key, expires_in)
