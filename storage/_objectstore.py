"""What the S3, GCS and Azure backends share: a ``Storage`` over an obstore ``ObjectStore``.

Only the cloud backends import this module, and only once ``from_url`` meets their scheme: it
needs ``obstore`` (the ``s3``/``gcs``/``azure`` extras), which the base install does not.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Final, TypeVar
from urllib.parse import SplitResult, quote, urlsplit

from storage._errors import InvalidKey, ObjectNotFound, StorageError
from storage._keys import clean_key
from storage._protocol import StoredObject

if TYPE_CHECKING:
    from obstore import Attributes
    from obstore.store import AzureStore, GCSStore, S3Store

__all__ = ["PART_SIZE", "ObjectStoreStorage", "build_store"]

CloudStore = TypeVar("CloudStore", "S3Store", "GCSStore", "AzureStore")

# A streamed put holds about PART_SIZE * (MAX_CONCURRENCY + 1) bytes: the part being sent and
# the one being filled from the source meanwhile (obstore keeps the source's chunks, without
# copying them, until their part is acknowledged). 5 MiB is S3's (and GCS's) smallest part;
# with S3's 10,000-part limit an object may reach 48 GiB (FRAMEHOOK_ASSET_MAX_BYTES defaults to
# 5 GiB). One part at a time: a worker must capture 1 GiB into S3 in at most 100 MiB of RSS,
# interpreter included (issue 4's benchmark, bench/download.py), and each part more in flight
# costs 5-6 MiB of it per file. Measured there (idle worker: 84 MiB), the peak above idle with
# 512 KiB download chunks: 12-16 MiB with 1 part in flight, 19 with 2, 24 with 3 (8 MiB x 4:
# 42), so one part is what fits.
# Against nanio and moto the time did not change measurably: the server's own ingest bounds
# it. Against a real S3 a second part in flight buys throughput per object, but a worker runs
# FRAMEHOOK_ASSET_CONCURRENCY files at once, so its total is what concurrency scales. (glibc's
# malloc settings were no help: MALLOC_ARENA_MAX=2 changed nothing, a fixed 256 KiB mmap
# threshold saved 1-2 MiB for twice the CPU time.)
PART_SIZE: Final = 5 * 1024 * 1024
MAX_CONCURRENCY: Final = 1
READ_CHUNK: Final = 1024 * 1024
# What an Azure blob name may hold for obstore to sign a URL to it that Azure accepts.
_AZURE_SIGNABLE: Final = "/-._~"


class ObjectStoreStorage:
    """Objects in a bucket (or container) under a prefix, through obstore.

    ``put`` streams: an object smaller than one part goes up in a single request, a larger one
    as a multipart upload of ``PART_SIZE`` parts, ``MAX_CONCURRENCY`` at a time, aborted if the
    source or the upload fails. Either way the object becomes visible under its key only once
    it is complete, as the Protocol asks.
    """

    def __init__(
        self, store: S3Store | GCSStore | AzureStore, *, backend: str, base_uri: str
    ) -> None:
        """Wrap ``store``.

        Args:
            store: an obstore store, already bound to its bucket and prefix.
            backend: the name errors use (``S3``, ``GCS``, ``Azure``).
            base_uri: the URI of the prefix, which ``uri(key)`` extends with the key.
        """
        self._store = store
        self.backend = backend
        self.base_uri = base_uri.rstrip("/")

    def __repr__(self) -> str:
        # Never the obstore store's repr: AzureStore's panics when the account comes from the
        # emulator defaults.
        return f"{type(self).__name__}({self.base_uri!r})"

    def _key(self, key: str) -> str:
        key = clean_key(key)
        # obstore refuses control characters in paths; say so before reading any data.
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
            raise InvalidKey(f"storage key {key!r} contains a control character")
        return key

    def _failed(self, action: str, key: str, exc: Exception) -> StorageError:
        if isinstance(exc, ValueError):  # obstore could not parse the path
            return InvalidKey(f"{self.backend}: {key!r} is not a valid object path: {exc}")
        return StorageError(
            f"{self.backend}: could not {action} {self.uri(key)}: {_first_line(exc)}"
        )

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None
    ) -> StoredObject:
        key = self._key(key)
        tally = _Tally(chunks)
        attributes: Attributes | None = {"Content-Type": content_type} if content_type else None
        # The first part decides: a stream that ends within it goes up whole (one request, no
        # multipart upload to create, complete or abort).
        head = await tally.take(PART_SIZE)
        try:
            if tally.exhausted:
                await self._store.put_async(
                    key, b"".join(head), attributes=attributes, use_multipart=False
                )
            else:
                await self._store.put_async(
                    key,
                    _chain(head, tally),
                    attributes=attributes,
                    use_multipart=True,
                    chunk_size=PART_SIZE,
                    max_concurrency=MAX_CONCURRENCY,
                )
        except Exception as exc:
            if tally.failure is None:
                raise self._failed("store", key, exc) from exc
            # The source failed and obstore aborted the upload: the caller's error, unchanged.
            if exc is tally.failure:
                raise
            raise tally.failure from exc
        return tally.stored(key, self.uri(key), content_type)

    async def exists(self, key: str) -> bool:
        key = self._key(key)
        try:
            await self._store.head_async(key)
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise self._failed("look up", key, exc) from exc
        return True

    async def size(self, key: str) -> int | None:
        key = self._key(key)
        try:
            meta = await self._store.head_async(key)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._failed("look up", key, exc) from exc
        return int(meta["size"])

    async def open(self, key: str) -> AsyncIterator[bytes]:
        key = self._key(key)
        try:
            result = await self._store.get_async(key)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        except Exception as exc:
            raise self._failed("read", key, exc) from exc
        stream = result.stream(min_chunk_size=READ_CHUNK)
        while True:
            try:
                chunk = await anext(stream)
            except StopAsyncIteration:
                return
            except Exception as exc:
                raise self._failed("read", key, exc) from exc
            yield chunk

    async def delete(self, key: str) -> None:
        key = self._key(key)
        try:
            await self._store.delete_async(key)
        except FileNotFoundError:  # Azure reports deleting nothing as "not found"
            return
        except Exception as exc:
            raise self._failed("delete", key, exc) from exc

    def uri(self, key: str) -> str:
        return f"{self.base_uri}/{clean_key(key)}"

    async def presign(self, key: str, expires_in: timedelta) -> str:
        """A GET URL for the object under ``key``, signed with the store's credentials, valid
        for ``expires_in`` (S3 allows at most 7 days). Signing is local: it does not check
        that the object exists.

        Raises:
            ValueError: ``expires_in`` is not positive.
            InvalidKey: the key is not a valid object path.
            StorageError: the credentials cannot sign (GCS without a service account key,
                Azure without an account key or a user delegation key), or, on Azure, the
                key holds a character outside ``A-Z a-z 0-9 - . _ ~ /`` (obstore signs such
                names wrongly).
        """
        from obstore import sign_async

        if expires_in <= timedelta(0):
            raise ValueError(f"a presigned URL must be valid for some time, not {expires_in}")
        key = self._key(key)
        if self.backend == "Azure" and quote(key, safe=_AZURE_SIGNABLE) != key:
            # object_store signs the percent-encoded path where Azure wants the blob's name:
            # such a link would be refused (403), so none is handed out.
            raise StorageError(
                f"Azure: cannot sign a link to {self.uri(key)}: obstore's Azure signatures are "
                "wrong for names outside A-Z a-z 0-9 - . _ ~ /"
            )
        try:
            # Relative to the store's prefix, like every other call (obstore >= 0.12 applies
            # it when signing; older releases did not: tests/storage/test_presign.py checks).
            return await sign_async(self._store, "GET", key, expires_in)
        except Exception as exc:
            raise self._failed("sign a link to", key, exc) from exc


def build_store(
    url: str, backend: str, schemes: frozenset[str], make: Callable[[str], CloudStore]
) -> tuple[CloudStore, str]:
    """The obstore store ``make(url)`` builds, and the base URI of its bucket and prefix.

    Raises:
        StorageError: the URL is not ``scheme://bucket[/prefix]`` or obstore refuses it (a
            missing account name, an unknown region, ...).
    """
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise StorageError(f"{backend} storage URLs start with {' or '.join(sorted(schemes))}://")
    if not parts.netloc:
        raise StorageError(
            f"{backend} storage URL {url!r} names no bucket: {parts.scheme}://BUCKET"
        )
    if parts.query or parts.fragment:
        # obstore would silently drop them; configuration comes from the environment.
        raise StorageError(
            f"{backend} storage URL {url!r}: query parameters are not supported, "
            "configure the backend with environment variables"
        )
    try:
        store = make(SplitResult(parts.scheme, parts.netloc, parts.path, "", "").geturl())
    except Exception as exc:
        raise StorageError(f"{backend}: cannot use {url!r}: {_first_line(exc)}") from exc
    prefix = (store.prefix or "").strip("/")
    base = f"{parts.scheme}://{parts.netloc}" + (f"/{prefix}" if prefix else "")
    return store, base


def _first_line(exc: Exception) -> str:
    # obstore's messages carry a debug dump after the first line; the exception chain keeps it.
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class _Tally:
    """Counts and hashes a stream as it passes; remembers whether it ended or failed."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._chunks = aiter(chunks)
        self.digest = hashlib.sha256()
        self.size = 0
        self.exhausted = False
        self.failure: BaseException | None = None

    def __aiter__(self) -> _Tally:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self.exhausted = True
            raise
        except BaseException as exc:
            self.failure = exc
            raise
        self.digest.update(chunk)
        self.size += len(chunk)
        return chunk

    async def take(self, size: int) -> list[bytes]:
        """The next chunks, up to ``size`` bytes or more (fewer only if the stream ends)."""
        taken: list[bytes] = []
        total = 0
        async for chunk in self:
            taken.append(chunk)
            total += len(chunk)
            if total >= size:
                break
        return taken

    def stored(self, key: str, uri: str, content_type: str | None) -> StoredObject:
        return StoredObject(key, uri, self.size, self.digest.hexdigest(), content_type)


async def _chain(head: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    while head:  # popped, so the upload's memory is not held twice
        yield head.pop(0)
    async for chunk in rest:
        yield chunk
