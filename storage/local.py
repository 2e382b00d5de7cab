"""The local filesystem store (a path or ``file://``): atomic, fsynced, confined to its root.

Every ``OSError`` of the store's own is raised as the storage error it means
(``storage._errors.os_failure``): a full disk as ``StorageFull``, a read-only or forbidden
directory as ``StorageRefused``, with the ``OSError`` as its cause. An error of the stream being
stored is raised unchanged: it is the caller's, not the store's.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from stat import S_ISREG
from typing import Any, BinaryIO, TypeVar, TypeVarTuple

import anyio

from storage._errors import ObjectNotFound, StorageError, os_failure
from storage._keys import clean_key
from storage._protocol import StoredObject

__all__ = ["LocalStorage"]

_CHUNK = 1024 * 1024
_T = TypeVar("_T")
_Args = TypeVarTuple("_Args")


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
        action = f"writing {clean_key(key)}"
        await self._run(action, _make_parents, path)
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            out = await self._run(action, temp.open, "wb")
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    # Hashing and writing in the thread (both release the GIL) lets the event
                    # loop read the next chunk from the network meanwhile.
                    await self._run(action, _write, out, digest, chunk)
                await self._run(action, _flush, out)
            finally:
                await anyio.to_thread.run_sync(_close, out)
            await self._run(action, os.replace, temp, path)
            await self._run(action, _fsync_dir, path.parent)
        except BaseException:
            await anyio.to_thread.run_sync(_discard, temp)
            raise
        await anyio.to_thread.run_sync(_sweep_parts, path)
        return StoredObject(clean_key(key), path.as_uri(), size, digest.hexdigest(), content_type)

    async def exists(self, key: str) -> bool:
        path = self._path(key)
        return await self._run(f"looking up {clean_key(key)}", path.is_file)

    async def size(self, key: str) -> int | None:
        path = self._path(key)
        return await self._run(f"looking up {clean_key(key)}", _file_size, path)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        action = f"reading {clean_key(key)}"
        try:
            handle = await anyio.open_file(path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        except OSError as exc:
            raise os_failure(exc, self._name, action) from exc
        async with handle:
            while True:
                try:
                    chunk = await handle.read(_CHUNK)
                except OSError as exc:
                    raise os_failure(exc, self._name, action) from exc
                if not chunk:
                    return
                yield chunk

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await self._run(f"deleting {clean_key(key)}", _unlink, path)

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    @property
    def _name(self) -> str:
        return f"local storage {self.root}"

    async def _run(self, action: str, call: Callable[[*_Args], _T], *args: *_Args) -> _T:
        """``call(*args)`` in a worker thread, an ``OSError`` raised as the storage error it
        means (only the store's own calls go through here, never the stream's)."""
        try:
            return await anyio.to_thread.run_sync(call, *args)
        except OSError as exc:
            raise os_failure(exc, self._name, action) from exc


def _unlink(path: Path) -> None:
    # Nothing is stored under a key whose directory is a file (as ``_file_size`` says): removing
    # nothing is not an error.
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        path.unlink()


def _make_parents(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)


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


def _close(out: BinaryIO) -> None:
    # After a failure the original error is the one to report; after success the bytes were
    # already flushed and fsynced, so a failing close loses nothing.
    with contextlib.suppress(OSError):
        out.close()


def _discard(temp: Path) -> None:
    # On a read-only filesystem even unlinking a file that is not there fails (EROFS): that must
    # not hide the error that brought us here.
    with contextlib.suppress(OSError):
        temp.unlink(missing_ok=True)


def _sweep_parts(path: Path) -> None:
    # A writer killed mid-put (SIGKILL, power loss) leaves its hidden temporary file behind;
    # once the key is stored whole, those leftovers are garbage. A writer still busy on the
    # same key (a frozen worker whose lease expired) loses its temporary file and fails its put,
    # which is right: this one won. Only garbage collection: a leftover that cannot go now
    # fails nothing (the object is stored), and the next put of the key tries again.
    with contextlib.suppress(OSError):
        for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
            leftover.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
