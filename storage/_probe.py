"""A round trip through a store: what ``framehook doctor`` and ``/readyz`` ask of it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from storage._protocol import Storage
from storage.local import LocalStorage

__all__ = ["PROBE_PREFIX", "probe"]

PROBE_PREFIX = ".framehook-doctor"
"""Where probe objects are written (and deleted again)."""


async def probe(store: Storage, prefix: str = PROBE_PREFIX) -> None:
    """Write a small object under ``prefix``, read it back and delete it.

    Raises:
        StorageError: the store refused a step (or whatever else its client raised).
        OSError: what was read back is not what was written.
    """
    key = f"{prefix}/probe-{uuid.uuid4().hex}"
    payload = uuid.uuid4().bytes

    async def chunks() -> AsyncIterator[bytes]:
        yield payload

    try:
        await store.put(key, chunks(), "application/octet-stream")
        read = b"".join([chunk async for chunk in store.open(key)])
        if read != payload:
            raise OSError(f"read back {len(read)} bytes unlike the {len(payload)} written")
    finally:
        try:
            await store.delete(key)
        finally:
            if isinstance(store, LocalStorage):
                with contextlib.suppress(OSError):  # only if empty: never anyone else's files
                    (store.root / prefix).rmdir()
