"""The storage check: a probe object written, read back and deleted where files go."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from receiver.doctor._result import Check, Status
from receiver.settings import Settings
from storage import LocalStorage, MemoryStorage, Storage, StorageError, from_url

__all__ = ["PROBE_PREFIX", "check_storage"]

PROBE_PREFIX = ".framehook-doctor"
"""Where the storage check writes its probe object (and deletes it again)."""


async def _round_trip(store: Storage, key: str, payload: bytes) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield payload

    try:
        await store.put(key, chunks(), "application/octet-stream")
        read = b"".join([chunk async for chunk in store.open(key)])
        if read != payload:
            raise OSError(f"read back {len(read)} bytes unlike the {len(payload)} written")
    finally:
        await store.delete(key)


def check_storage(settings: Settings, timeout: float = 5.0) -> list[Check]:
    """Whether a probe object can be written, read back and deleted where files are captured."""
    try:
        store = from_url(settings.storage_url)
    except StorageError as exc:
        return [
            Check(
                "storage",
                Status.FAIL,
                str(exc),
                "FRAMEHOOK_STORAGE_URL: a directory, file://, s3://bucket/prefix, gs://, az://",
            )
        ]
    key = f"{PROBE_PREFIX}/probe-{uuid.uuid4().hex}"
    where = settings.storage_url
    try:
        where = store.uri(PROBE_PREFIX)
        asyncio.run(asyncio.wait_for(_round_trip(store, key, uuid.uuid4().bytes), timeout))
    except TimeoutError:
        return [
            Check(
                "storage",
                Status.FAIL,
                f"no answer from {where} within {timeout:g} s",
                "is the object store reachable from here (endpoint, network, proxy)?",
            )
        ]
    except Exception as exc:
        return [
            Check(
                "storage",
                Status.FAIL,
                f"cannot write under {where}: {type(exc).__name__}: {exc}",
                "make sure the place exists and framehook may write there (a directory this "
                "user owns; a bucket whose credentials allow put, get and delete)",
            )
        ]
    finally:
        if isinstance(store, LocalStorage):
            with contextlib.suppress(OSError):  # only if empty: never anyone else's files
                (store.root / PROBE_PREFIX).rmdir()
    if isinstance(store, MemoryStorage):
        return [
            Check(
                "storage",
                Status.WARN,
                "memory:// keeps captured files in the process only: they vanish when it exits",
                "FRAMEHOOK_STORAGE_URL: a directory or an object store (s3://, gs://, az://)",
            )
        ]
    return [Check("storage", Status.OK, f"wrote, read back and deleted a probe under {where}")]
