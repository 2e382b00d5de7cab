"""The extension point: what a handler is, and which events it is called for."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from handlers._context import HandlerContext
    from handlers._event import JobEvent

__all__ = ["Handler", "wants"]


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

    Optional attributes, read when present:
        models: a set of model names: only those models' jobs (job events only).
        timeout: seconds one run may take (default: the worker's, 300).
        after: a set of handler names it runs after, for the same delivery: its task waits
            (status ``waiting``) until their tasks for that delivery have finished,
            succeeded or dead, then runs whatever their outcome. A name that is not loaded
            is ignored (with a warning at start), as is one that got no task for the
            delivery; handlers that run after each other in a cycle are refused at start.
            The built-in ``forward`` runs ``after = frozenset({"download"})``.
    """

    name: str
    events: frozenset[str]

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        """Handle one event."""


def wants(
    events: Collection[str],
    event: str,
    *,
    models: Collection[str] | None = None,
    model: str | None = None,
) -> bool:
    """Whether a handler subscribed to ``events`` (and, unless ``models`` is ``None``, to jobs
    of those models) is called for ``event`` on a job of ``model``.

    The one statement of the rule: framehook's intake creates tasks by it, and
    ``handlers.testing.would_run`` answers by it. LoRA training events (``lora.*``) have no
    model, so a ``models`` filter does not apply to them.
    """
    if event not in events:
        return False
    if event.startswith("lora."):
        return True
    return models is None or (model is not None and model in models)
