"""Whether a recorded file is still stored: its key holds the recorded size and SHA-256.

A key that merely exists is not enough: another job may have overwritten it (before job ids
were encoded injectively, ``x`` and ``x/`` shared keys), or the object may have been replaced
or damaged. The size is asked first (cheap); only an object of the right size is read and
hashed.
"""

from __future__ import annotations

import hashlib

import anyio.to_thread

from handlers._assets import Asset
from storage import ObjectNotFound, Storage

__all__ = ["holds"]

# Below this, hashing on the event loop costs less than a trip to a worker thread.
_THREAD_BYTES = 64 * 1024


async def holds(storage: Storage, asset: Asset) -> bool:
    """Whether ``asset.key`` holds ``asset.size`` bytes hashing to ``asset.sha256``.

    Raises:
        StorageError: the store could not be asked (not ``ObjectNotFound``: that is False).
    """
    if await storage.size(asset.key) != asset.size:
        return False
    digest = hashlib.sha256()
    try:
        async for chunk in storage.open(asset.key):
            if len(chunk) >= _THREAD_BYTES:
                await anyio.to_thread.run_sync(digest.update, chunk)
            else:
                digest.update(chunk)
    except ObjectNotFound:  # deleted since its size was read
        return False
    return digest.hexdigest() == asset.sha256
