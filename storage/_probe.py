"""A round trip through a store: what ``framehook doctor`` and ``/readyz`` ask of it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from storage._errors import StorageError
from storage._protocol import Storage
from storage.local import LocalStorage

__all__ = ["PROBE_PREFIX", "probe"]

PROBE_PREFIX = ".framehook-doctor"
"""Where probe objects are written (and deleted again)."""

_ATTEMPTS = 5


async def probe(store: Storage, prefix: str = PROBE_PREFIX) -> None:
    """Write a small object under ``prefix``, read it back and delete it.

    Raises:
        StorageError: the store refused a step (or whatever else its client raised).
        OSError: what was read back is not what was written.
    """
    # Each probe in a folder of its own: on local disk, a sibling's clean-up (processes that
    # start together all probe) then cannot empty the folder this one is writing into.
    folder = f"{prefix}/probe-{uuid.uuid4().hex}"
    key = f"{folder}/object"
    payload = uuid.uuid4().bytes

    try:
        await _put(store, key, payload)
        read = b"".join([chunk async for chunk in store.open(key)])
        if read != payload:
            raise OSError(f"read back {len(read)} bytes unlike the {len(payload)} written")
    finally:
        try:
            await store.delete(key)
        finally:
            if isinstance(store, LocalStorage):
                for empty in (store.root / folder, store.root / prefix):
                    with contextlib.suppress(OSError):  # only if empty: never anyone else's
                        empty.rmdir()


async def _put(store: Storage, key: str, payload: bytes) -> None:
    """Write the probe object. On local disk, a sibling's clean-up may still remove the shared
    prefix folder between this one's making it and making its own folder inside (ENOENT):
    writing again is then right; any other failure is the store's answer. Whether the prefix is
    there after the failure says nothing: a third prober may have made it again meanwhile."""

    async def chunks() -> AsyncIterator[bytes]:
        yield payload

    for attempt in range(_ATTEMPTS):
        try:
            await store.put(key, chunks(), "application/octet-stream")
            return
        except StorageError as exc:
            vanished = isinstance(store, LocalStorage) and isinstance(
                exc.__cause__, FileNotFoundError
            )
            if not vanished or attempt == _ATTEMPTS - 1:
                raise
