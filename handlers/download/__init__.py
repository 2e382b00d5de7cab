"""The built-in ``download`` handler: captures a completed job's files into storage.

For each file of the result (``find_assets``): skip it if the asset log says it is stored and
the store still has it; otherwise fetch it through the context's safe HTTP client, check its
type, stream it into storage under a deterministic key, and record it. Files are fetched
concurrently, a bounded number at a time per worker. A replay or a duplicate event finds its
files recorded and stores nothing twice; two workers racing on one job write the same keys, and
the asset log keeps one record per position.

Failures: if any file failed for a reason retrying can help (5xx, 429, timeouts, truncated or
wrong content, a 404 before the CDN could have purged it), the task is retried and only the
files still missing are fetched again. If every failure is permanent (expired, refused URL, too
large), the task is parked as dead with each file's reason.
"""

from __future__ import annotations

import asyncio

from handlers._assets import Asset
from handlers._context import HandlerContext
from handlers._event import JobEvent
from handlers._signals import PermanentFailure, RetryLater
from handlers.download._capture import AssetFailure, capture
from handlers.download._options import DownloadOptions
from handlers.download._result import AssetRef, find_assets, public_url

__all__ = ["CaptureIncomplete", "DownloadHandler", "DownloadOptions", "find_assets"]


class CaptureIncomplete(RetryLater):
    """Some files failed for reasons a retry can fix; the task runs again with backoff.

    A :class:`RetryLater` with the usual backoff: an expected outcome (a CDN's 5xx, a
    timeout), logged as the attempt's one line rather than with a traceback.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(None, reason)


class DownloadHandler:
    """Captures every image, video and audio file of a completed job.

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
        result = event.payload.get("result", event.job.result)
        refs, ignored = find_assets(result)
        if ignored:
            ctx.log.warning("result holds URLs the download handler does not know", keys=ignored)
        if not refs:
            ctx.log.warning("no files to capture in the result")
            return
        todo = await self._missing(refs, event, ctx)
        outcomes = await asyncio.gather(
            *(self._capture_one(ref, event, ctx) for ref in todo), return_exceptions=True
        )
        failures: list[AssetFailure] = []
        for outcome in outcomes:
            if isinstance(outcome, AssetFailure):
                failures.append(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
        if failures:
            self._raise_for(failures)

    async def _missing(
        self, refs: list[AssetRef], event: JobEvent, ctx: HandlerContext
    ) -> list[AssetRef]:
        recorded = {a.position: a for a in await ctx.assets.assets(event.job_id)}
        missing = []
        for ref in refs:
            asset = recorded.get(ref.position)
            if asset is not None and await ctx.storage.exists(asset.key):
                continue
            missing.append(ref)
        if len(missing) < len(refs):
            ctx.log.info("files already stored", skipped=len(refs) - len(missing))
        return missing

    async def _capture_one(self, ref: AssetRef, event: JobEvent, ctx: HandlerContext) -> Asset:
        async with self._slots:
            asset = await capture(ref, event, ctx, self.options, self.name)
        kept = await ctx.assets.record(asset)
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
    def _raise_for(failures: list[AssetFailure]) -> None:
        summary = "; ".join(str(f) for f in failures)
        retryable = [f for f in failures if not f.permanent]
        if not retryable:
            raise PermanentFailure(summary)
        waits = [f.retry_after for f in retryable if f.retry_after is not None]
        if waits:
            raise RetryLater(max(waits), summary)
        raise CaptureIncomplete(summary)
