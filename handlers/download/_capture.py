"""Capturing one file: fetch it through the safe client, check it, stream it into storage.

Memory stays bounded by the chunk size whatever the file's size: the body goes from the socket
to the store a chunk at a time, and the store makes it visible under its key only once it is
complete (a failure anywhere, here or in the store, leaves nothing under the key).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx

from handlers._assets import Asset
from handlers._context import HandlerContext
from handlers._event import JobEvent
from handlers._safety import UnsafeURL, parse_url
from handlers._signals import retry_after
from handlers.download._content import HEAD_BYTES, ContentMismatch, check_content
from handlers.download._keys import render_key
from handlers.download._options import DownloadOptions
from handlers.download._result import AssetRef, public_url
from storage import InvalidKey, StorageError, StorageRefused

__all__ = ["AssetFailure", "capture"]

_TRANSIENT_STATUS = frozenset({408, 425, 429})
READ_AHEAD = 1
"""Chunks read from the network ahead of the store (memory: this many chunks). One is enough to
keep the network and the store busy at once (measured on 1 GiB: 2 was no faster into local
storage or S3), and each more costs a chunk of the worker's 100 MiB (bench/download.py)."""


class AssetFailure(Exception):
    """One file could not be captured.

    Attributes:
        ref: which file.
        reason: why, for the task's last error.
        permanent: retrying cannot help (expired, refused or invalid URL, too large, wrong
            content, a store refusing writes).
        retry_after: the server asked to wait this long (429/503 ``Retry-After``).
    """

    def __init__(
        self, ref: AssetRef, reason: str, *, permanent: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{ref.kind} {ref.n} ({public_url(ref.url)}): {reason}")
        self.ref = ref
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


class _TooLarge(Exception):
    pass


class _Truncated(Exception):
    pass


async def capture(
    ref: AssetRef,
    event: JobEvent,
    ctx: HandlerContext,
    options: DownloadOptions,
    handler: str,
) -> Asset:
    """Fetch, check and store ``ref``; return its record (not yet in the asset log).

    Raises:
        AssetFailure: with whether retrying can help.
    """

    def fail(reason: str, permanent: bool = False) -> AssetFailure:
        return AssetFailure(ref, reason, permanent=permanent)

    try:
        async with asyncio.timeout(options.timeout_seconds):
            return await _fetch_and_store(ref, event, ctx, options, handler)
    except UnsafeURL as exc:
        raise fail(f"refused: {exc.reason}", permanent=True) from exc
    except httpx.InvalidURL as exc:
        raise fail(f"invalid URL: {exc}", permanent=True) from exc
    except TimeoutError as exc:
        raise fail(f"took longer than {options.timeout_seconds:g} s") from exc
    except httpx.TimeoutException as exc:
        raise fail(f"timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise fail(f"{type(exc).__name__}: {exc}") from exc
    except ContentMismatch as exc:
        # The server answered 200 with something else (an error page, a compressed body): it
        # will answer the same again, so the file is lost now, visibly, not eight times later.
        raise fail(f"not a valid file: {exc}", permanent=True) from exc
    except _TooLarge as exc:
        raise fail(str(exc), permanent=True) from exc
    except _Truncated as exc:
        raise fail(str(exc)) from exc
    except InvalidKey as exc:
        raise fail(f"unusable storage key: {exc}", permanent=True) from exc
    except StorageRefused as exc:
        # A read-only or forbidden store needs an operator; a full one (StorageFull) may have
        # room by the next attempt.
        raise fail(f"storage refused: {exc}", permanent=True) from exc
    except StorageError as exc:
        raise fail(f"storage failed: {exc}") from exc


async def _fetch_and_store(
    ref: AssetRef, event: JobEvent, ctx: HandlerContext, options: DownloadOptions, handler: str
) -> Asset:
    # Parsed first: for some URLs httpx raises a bare ValueError while building the request,
    # which would read as a bug here, and be retried.
    async with ctx.http.stream("GET", parse_url(ref.url)) as response:
        _check_status(ref, response, event, options)
        # The safe client never decodes: it moves the server's Content-Encoding here.
        encoding = str(response.extensions.get("content_encoding") or "identity").strip().lower()
        if encoding not in ("", "identity"):
            # Asked for identity: a compressed body would be stored compressed (or, if it were
            # decoded, could be a bomb). Neither is the file.
            raise ContentMismatch(f"the server sent Content-Encoding {encoding}")
        declared = _content_length(response)
        if declared is not None and declared > options.max_bytes:
            raise _TooLarge(
                f"declared {declared} bytes, over FRAMEHOOK_ASSET_MAX_BYTES ({options.max_bytes})"
            )
        raw = _read_ahead(_coalesced(response.aiter_raw(), options.chunk_bytes), READ_AHEAD)
        head = await _read_head(raw)
        media = check_content(head, ref.kind)
        kind = media.family if ref.kind == "file" else ref.kind
        key = render_key(
            options.key_template,
            job_id=event.job_id,
            kind=kind,
            n=ref.n,
            position=ref.position,
            ext=media.extension,
            model=event.job.model,
            day=event.job.completed_at or event.received_at,
        )
        body = _body(head, raw, declared, options.max_bytes)
        stored = await ctx.storage.put(key, body, media.content_type)
    return Asset(
        job_id=event.job_id,
        position=ref.position,
        kind=kind,
        source_url=public_url(ref.url),
        key=stored.key,
        storage_uri=stored.uri,
        size=stored.size,
        content_type=media.content_type,
        sha256=stored.sha256,
        stored_at=datetime.now(UTC),
        handler=handler,
    )


def _check_status(
    ref: AssetRef, response: httpx.Response, event: JobEvent, options: DownloadOptions
) -> None:
    status = response.status_code
    if status == 200:
        return
    if status in (404, 410):
        if _expired(event, options):
            raise AssetFailure(
                ref,
                f"expired: the CDN no longer has it (HTTP {status}; Apiframe keeps results "
                "for a limited time)",
                permanent=True,
            )
        raise AssetFailure(ref, f"HTTP {status} (the CDN may not have it yet)", permanent=False)
    if status in _TRANSIENT_STATUS or status >= 500:
        raise AssetFailure(
            ref,
            f"HTTP {status}",
            permanent=False,
            retry_after=retry_after(response.headers.get("retry-after")),
        )
    raise AssetFailure(ref, f"HTTP {status}", permanent=True)


def _expired(event: JobEvent, options: DownloadOptions) -> bool:
    if event.payload.get("expired") is True:
        return True
    completed = event.job.completed_at
    if completed is None:
        return False
    return datetime.now(UTC) - completed > timedelta(hours=options.expiry_hours)


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


async def _coalesced(pieces: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """The body in chunks of about ``size`` bytes, joined from what the socket delivers.

    One join per chunk: httpx's own ``aiter_raw(chunk_size)`` re-buffers through a BytesIO and
    cost a second per GiB (measured), more than reading the socket itself.
    """
    parts: list[bytes] = []
    held = 0
    async for piece in pieces:
        parts.append(piece)
        held += len(piece)
        if held >= size:
            yield b"".join(parts)
            parts, held = [], 0
    if parts:
        yield b"".join(parts)


async def _read_ahead(chunks: AsyncIterator[bytes], depth: int) -> AsyncIterator[bytes]:
    """``chunks``, read up to ``depth`` chunks ahead by a task of its own, so the network is
    read while the store writes (otherwise each waits for the other: about a quarter slower).
    """
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(depth)

    async def pump() -> None:
        try:
            async for chunk in chunks:
                await queue.put(chunk)
            await queue.put(None)
        except Exception as exc:
            await queue.put(exc)

    reader = asyncio.create_task(pump())
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _read_head(raw: AsyncIterator[bytes]) -> bytes:
    """At least ``HEAD_BYTES`` of the body (fewer only if the body is shorter)."""
    parts: list[bytes] = []
    size = 0
    while size < HEAD_BYTES:
        try:
            chunk = await anext(raw)
        except StopAsyncIteration:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


async def _body(
    head: bytes, raw: AsyncIterator[bytes], declared: int | None, limit: int
) -> AsyncIterator[bytes]:
    """The whole body, counted: raising here makes the store discard the partial object."""
    size = len(head)
    if size > limit:
        raise _TooLarge(f"over FRAMEHOOK_ASSET_MAX_BYTES ({limit})")
    yield head
    async for chunk in raw:
        size += len(chunk)
        if size > limit:
            raise _TooLarge(f"over FRAMEHOOK_ASSET_MAX_BYTES ({limit}) while streaming")
        yield chunk
    if declared is not None and size != declared:
        raise _Truncated(f"got {size} bytes of the {declared} declared")
