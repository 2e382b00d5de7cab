"""The built-in ``download`` handler: captures a completed job's assets into storage.

Only its subscription is declared so far; the capture itself (streaming, checks, exactly-once
storage, safe fetching) is the asset-capture work item and is not implemented yet. Until then
tasks queued for it wait in the queue, and a worker that runs one retries it later.
"""

from __future__ import annotations

from handlers._context import HandlerContext
from handlers._event import JobEvent
from handlers._signals import RetryLater

__all__ = ["DownloadHandler"]


class DownloadHandler:
    """Captures every image, video and audio file of a completed job."""

    name = "download"
    events = frozenset({"completed"})

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        raise RetryLater(3600, "asset capture is not implemented in this version")
