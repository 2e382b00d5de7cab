"""The storage check: a probe object written, read back and deleted where files go."""

from __future__ import annotations

import asyncio

from receiver.doctor._result import Check, Status
from receiver.settings import Settings
from storage import PROBE_PREFIX, MemoryStorage, StorageError, from_url, probe

__all__ = ["check_storage"]


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
    where = settings.storage_url
    try:
        where = store.uri(PROBE_PREFIX)
        asyncio.run(asyncio.wait_for(probe(store), timeout))
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
