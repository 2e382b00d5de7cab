"""An in-memory store: for tests and ``handlers.testing`` (``memory://``)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

from storage._errors import ObjectNotFound
from storage._keys import clean_key
from storage._protocol import StoredObject

__all__ = ["MemoryStorage"]


class MemoryStorage:
    """Keeps objects in a dict; ``put`` becomes visible only once the stream is complete."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.objects: dict[str, tuple[bytes, str | None]] = {}

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None
    ) -> StoredObject:
        key = clean_key(key)
        buffer = bytearray()
        async for chunk in chunks:
            buffer.extend(chunk)
        data = bytes(buffer)
        self.objects[key] = (data, content_type)
        return StoredObject(
            key, self.uri(key), len(data), hashlib.sha256(data).hexdigest(), content_type
        )

    async def exists(self, key: str) -> bool:
        return clean_key(key) in self.objects

    async def size(self, key: str) -> int | None:
        stored = self.objects.get(clean_key(key))
        return None if stored is None else len(stored[0])

    async def open(self, key: str) -> AsyncIterator[bytes]:
        key = clean_key(key)
        if key not in self.objects:
            raise ObjectNotFound(key)
        yield self.objects[key][0]

    async def delete(self, key: str) -> None:
        self.objects.pop(clean_key(key), None)

    def uri(self, key: str) -> str:
        return f"memory://{self.name}/{clean_key(key)}"
