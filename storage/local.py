"""The local filesystem store (a path or ``file://``): atomic, fsynced, confined to its root."""

from __future__ import annotations

import glob
import hashlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from stat import S_ISREG
from typing import Any, BinaryIO

import anyio

from storage._errors import ObjectNotFound, StorageError
from storage._keys import clean_key
from storage._protocol import StoredObject

__all__ = ["LocalStorage"]

_CHUNK = 1024 * 1024


class LocalStorage:
    """Objects as files under ``root``.

    ``put`` writes to a hidden temporary file in the destination directory, fsyncs it, renames
    it over the final name and fsyncs the directory: a crash leaves either the old object or
    the new one, never a partial file under the final name.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / clean_key(key)).resolve()
        if not path.is_relative_to(self.root):  # a symlink pointing out of the root
            raise StorageError(f"storage key {key!r} resolves outside the store")
        return path

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None
    ) -> StoredObject:
        path = self._path(key)
        await anyio.to_thread.run_sync(lambda: path.parent.mkdir(parents=True, exist_ok=True))
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            out = await anyio.to_thread.run_sync(temp.open, "wb")
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    # Hashing and writing in the thread (both release the GIL) lets the event
                    # loop read the next chunk from the network meanwhile.
                    await anyio.to_thread.run_sync(_write, out, digest, chunk)
                await anyio.to_thread.run_sync(_flush, out)
            finally:
                await anyio.to_thread.run_sync(out.close)
            await anyio.to_thread.run_sync(os.replace, temp, path)
            await anyio.to_thread.run_sync(_fsync_dir, path.parent)
        except BaseException:
            await anyio.to_thread.run_sync(lambda: temp.unlink(missing_ok=True))
            raise
        await anyio.to_thread.run_sync(_sweep_parts, path)
        return StoredObject(clean_key(key), path.as_uri(), size, digest.hexdigest(), content_type)

    async def exists(self, key: str) -> bool:
        path = self._path(key)
        return await anyio.to_thread.run_sync(path.is_file)

    async def size(self, key: str) -> int | None:
        path = self._path(key)
        return await anyio.to_thread.run_sync(_file_size, path)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await anyio.open_file(path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        async with handle:
            while chunk := await handle.read(_CHUNK):
                yield chunk

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()


def _file_size(path: Path) -> int | None:
    try:
        stat = path.stat()
    except (FileNotFoundError, NotADirectoryError):  # or a file where a directory would be
        return None
    return stat.st_size if S_ISREG(stat.st_mode) else None


def _write(out: BinaryIO, digest: Any, chunk: bytes) -> None:
    digest.update(chunk)
    out.write(chunk)


def _flush(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())


def _sweep_parts(path: Path) -> None:
    # A writer killed mid-put (SIGKILL, power loss) leaves its hidden temporary file behind;
    # once the key is stored whole, those leftovers are garbage. A writer still busy on the
    # same key (a frozen worker whose lease expired) loses its temporary file and fails its put,
    # which is right: this one won.
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        leftover.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
