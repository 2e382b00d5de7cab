"""The storage extension point."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Storage", "StoredObject"]


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What a completed ``put`` stored.

    Attributes:
        key: the key it is stored under (``job-id/image-1.png``).
        uri: where it lives, as a URI (``file:///…``, ``s3://bucket/…``, ``memory://…``).
        size: bytes stored.
        sha256: hex SHA-256 of the bytes stored.
        content_type: the content type given to ``put``, if any.
    """

    key: str
    uri: str
    size: int
    sha256: str
    content_type: str | None = None


@runtime_checkable
class Storage(Protocol):
    """An asset store. framehook calls it from handlers (the ``download`` handler, plugins).

    Keys are relative, ``/``-separated paths. Implementations must make ``put`` atomic: a
    reader sees either nothing or the whole object under its key, never a partial one.
    """

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None
    ) -> StoredObject:
        """Store the streamed ``chunks`` under ``key`` (replacing any object there).

        Raises:
            InvalidKey: the key is empty, absolute, or escapes the store.
            StorageFull: no room left; may pass once space is freed.
            StorageRefused: the store may not be written (read-only, permission denied):
                retrying cannot help until its configuration changes.
            StorageError: the backend failed; nothing is visible under ``key``. An error of
                ``chunks`` itself is raised as it is.
        """
        ...

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    async def size(self, key: str) -> int | None:
        """The size in bytes of the object under ``key``, or ``None`` if nothing is stored
        there, without reading it (the ``download`` handler checks a recorded file with it
        before it reads the bytes to hash them).

        Raises:
            InvalidKey: the key is empty, absolute, or escapes the store.
            StorageError: the backend failed.
        """
        ...

    def open(self, key: str) -> AsyncIterator[bytes]:
        """Stream the object under ``key``.

        Raises:
            ObjectNotFound: nothing is stored under ``key``.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove the object under ``key``; removing nothing is not an error."""
        ...

    def uri(self, key: str) -> str:
        """The URI an object under ``key`` has (for display and records)."""
        ...
