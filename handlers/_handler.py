"""The extension point: what a handler is."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from handlers._context import HandlerContext
    from handlers._event import JobEvent

__all__ = ["Handler"]


@runtime_checkable
class Handler(Protocol):
    """A customer's reaction to Apiframe events, run by framehook's workers at least once.

    framehook calls the handler once per accepted event whose name is in ``events`` (and, if the
    handler has a ``models`` attribute, whose job's model is in it), in a worker, after the
    event is committed. It may be called again for the same event (a retry, a replay, a worker
    that died mid-run): make it idempotent. It may raise ``RetryLater`` to be called again after
    a delay, ``PermanentFailure`` to stop trying; any other exception is retried with backoff.

    Attributes:
        name: unique among the loaded handlers; stored with every task.
        events: the event names it wants (``progress``, ``completed``, ``failed``, and the
            LoRA training events ``lora.ready``, ``lora.failed``, ``lora.archived``, ...,
            which come as a ``LoraEvent``). A ``models`` filter applies to job events only.
    """

    name: str
    events: frozenset[str]

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        """Handle one event."""
