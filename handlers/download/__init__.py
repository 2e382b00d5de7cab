"""The built-in ``download`` handler: captures a completed job's files into storage.

For each file the result names (``find_assets``: every http(s) URL, whatever the shape): skip
it if the asset log records it and its key still holds the recorded size and SHA-256;
otherwise fetch it through the context's safe HTTP client, check its type, stream it into
storage under a deterministic key, and record it (replacing a stale record). Files are fetched
concurrently, a bounded number at a time per worker. A replay or a duplicate event finds its
files recorded and stores nothing twice; two workers racing on one job write the same keys,
and the asset log keeps one record per position.

Failures: the task never succeeds unless every file is stored, and its error names each file
that is not, with why. If any failed for a reason retrying can help (5xx, 429, timeouts, a
connection cut or a body shorter than declared, a 404 before the CDN could have purged it, a
full store), the task is retried and only the files still missing are fetched again. If every
failure is permanent (expired, a refused URL or one httpx cannot use, too large, a 200 that is
not the file: an error page, a compressed body; a store refusing writes), the task is parked
as dead at once: the job's files show it as not stored, and a replay tries again.

A framehook test event (``framehook send-test``: ``event.test``) names made-up URLs: nothing
is fetched, and the task succeeds at once with :data:`NOTHING_TO_CAPTURE` in its log.
"""

from __future__ import annotations

import asyncio
from typing import Any

from handlers._assets import Asset, AssetRepair
from handlers._context import HandlerContext
from handlers._event import JobEvent
from handlers._signals import PermanentFailure, RetryLater
from handlers.download._capture import AssetFailure, capture
from handlers.download._options import DownloadOptions
from handlers.download._result import AssetRef, count_files, find_assets, public_url
from handlers.download._stored import holds
from storage import StorageError

__all__ = [
    "NOTHING_TO_CAPTURE",
    "CaptureIncomplete",
    "DownloadHandler",
    "DownloadOptions",
    "count_files",
    "find_assets",
]

NOTHING_TO_CAPTURE = "test event: nothing to capture"
"""What the handler logs (``info``) when it skips a test event's made-up files."""


class CaptureIncomplete(RetryLater):
    """Some files failed for reasons a retry can fix; the task runs again with backoff.

    A :class:`RetryLater` with the usual backoff: an expected outcome (a CDN's 5xx, a
    timeout), logged as the attempt's one line rather than with a traceback.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(None, reason)


class DownloadHandler:
    """Captures every file of a completed job: images, videos, audio, whatever the result's
    shape.

    Args:
        options: capture settings; by default read from ``FRAMEHOOK_ASSET_*``.
    """

    name = "download"
    events = frozenset({"completed"})

    def __init__(self, options: DownloadOptions | None = None) -> None:
        self.options = options if options is not None else DownloadOptions()
        # The worker cuts a run off after ``timeout``: a job's files may be big.
        self.timeout = self.options.job_timeout_seconds
        self._slots = asyncio.Semaphore(self.options.concurrency)

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        result = event.payload.get("result")
        if result is None:  # a body without one: the job's, as a poll or an earlier event left it
            result = event.job.result
        if event.test:
            # send-test's URLs point nowhere: fetching them could only end in a dead task.
            ctx.log.info(NOTHING_TO_CAPTURE, named=count_files(result))
            return
        refs, other_schemes = find_assets(result)
        if other_schemes:
            ctx.log.warning("result holds URLs that are not fetched", schemes=other_schemes)
        if not refs:
            ctx.log.warning("no files to capture in the result")
            return
        todo = await self._missing(refs, event, ctx)
        outcomes = await asyncio.gather(
            *(self._capture_one(ref, stale, event, ctx) for ref, stale in todo),
            return_exceptions=True,
        )
        failures: list[AssetFailure] = []
        for (ref, _), outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, AssetFailure):
                failures.append(outcome)
            elif isinstance(outcome, Exception):
                # A bug or an error nobody foresaw: still this file's failure, with the others'.
                ctx.log.error("capturing a file failed", position=ref.position, exc_info=outcome)
                reason = f"{type(outcome).__name__}: {outcome}"
                failures.append(AssetFailure(ref, reason, permanent=False))
            elif isinstance(outcome, BaseException):
                raise outcome
        if failures:
            self._raise_for(failures, len(refs))

    async def _missing(
        self, refs: list[AssetRef], event: JobEvent, ctx: HandlerContext
    ) -> list[tuple[AssetRef, Asset | None]]:
        """The files to fetch, each with its record if it had a stale one."""
        recorded = {a.position: a for a in await ctx.assets.assets(event.job_id)}

        async def to_fetch(ref: AssetRef) -> tuple[AssetRef, Asset | None] | None:
            asset = recorded.get(ref.position)
            if asset is None:
                return ref, None
            try:
                async with self._slots:
                    if await holds(ctx.storage, asset):
                        return None
            except StorageError as exc:
                # Fetching it again tells: if the store is down, its put fails with a reason.
                ctx.log.warning("could not check a stored file", key=asset.key, error=str(exc))
                return ref, asset
            ctx.log.warning(
                "a stored file is missing or altered: fetching it again",
                position=asset.position,
                key=asset.key,
            )
            return ref, asset

        found = await asyncio.gather(*(to_fetch(ref) for ref in refs))
        missing = [entry for entry in found if entry is not None]
        if len(missing) < len(refs):
            ctx.log.info("files already stored", skipped=len(refs) - len(missing))
        return missing

    async def _capture_one(
        self, ref: AssetRef, stale: Asset | None, event: JobEvent, ctx: HandlerContext
    ) -> Asset:
        async with self._slots:
            asset = await capture(ref, event, ctx, self.options, self.name)
        if stale is None:
            kept = await ctx.assets.record(asset)
        elif isinstance(ctx.assets, AssetRepair):
            kept = await ctx.assets.replace(stale, asset)
        else:
            kept = await ctx.assets.record(asset)
            if _facts(kept) != _facts(asset):
                ctx.log.warning("the asset log cannot replace a stale record", key=kept.key)
        ctx.log.info(
            "asset stored",
            position=kept.position,
            kind=kept.kind,
            key=kept.key,
            size=kept.size,
            content_type=kept.content_type,
            source=public_url(ref.url),
        )
        return kept

    @staticmethod
    def _raise_for(failures: list[AssetFailure], files: int) -> None:
        summary = f"{len(failures)} of {files} files not stored: " + "; ".join(
            str(f) for f in sorted(failures, key=lambda f: f.ref.position)
        )
        retryable = [f for f in failures if not f.permanent]
        if not retryable:
            raise PermanentFailure(summary)
        waits = [f.retry_after for f in retryable if f.retry_after is not None]
        if waits:
            raise RetryLater(max(waits), summary)
        raise CaptureIncomplete(summary)


def _facts(asset: Asset) -> tuple[Any, ...]:
    return (asset.key, asset.size, asset.sha256)
