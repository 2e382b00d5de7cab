"""The values the intake takes and gives: an arrival, a handler's subscription, a receipt.

``receiver.intake.recorder`` records arrivals; these are what the webhook route, reconciliation
and the committer pass to it and get back (re-exported there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from handlers import wants
from receiver.apiframe.events import ParsedBody
from receiver.apiframe.signatures import SignatureMatch

__all__ = ["Arrival", "DeliveryOutcome", "Receipt", "Subscription"]


class DeliveryOutcome(StrEnum):
    """What became of a delivery; stored on it and answered to the sender."""

    ACCEPTED = "accepted"
    STALE = "stale"
    CONFLICT = "conflict"
    DUPLICATE = "duplicate"
    UNRECOGNIZED = "unrecognized"
    MALFORMED = "malformed"

    @property
    def is_new(self) -> bool:
        """Whether the sender is told it was new (202) rather than already had (200)."""
        return self not in (DeliveryOutcome.DUPLICATE, DeliveryOutcome.CONFLICT)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A handler's interest: the events it wants and, optionally, only some models.

    ``after``: the loaded handlers whose tasks for the same delivery it runs after (its
    handler's ``after``; ``receiver.queue.order``).
    """

    name: str
    events: frozenset[str]
    models: frozenset[str] | None = None
    after: frozenset[str] = frozenset()

    def wants(self, event: str, model: str | None) -> bool:
        """Whether a task for this handler is created for ``event`` on a job of ``model``, by
        ``handlers.wants``: the rule ``handlers.testing.would_run`` applies too."""
        return wants(self.events, event, models=self.models, model=model)


@dataclass(frozen=True, slots=True)
class Arrival:
    """Everything known about one verified request, ready to be recorded."""

    parsed: ParsedBody
    body: bytes
    received_at: datetime
    request_id: str
    header_event: str | None = None
    match: SignatureMatch | None = None
    remote_addr: str | None = None
    source: str = "webhook"

    @property
    def event_mismatch(self) -> bool:
        """``X-Webhook-Event`` names another event than the body (the body, signed, wins)."""
        return self.header_event is not None and self.header_event != self.parsed.event_name


@dataclass(frozen=True, slots=True)
class Receipt:
    """What recording an arrival did.

    ``model`` is the job's model after the event (for counting credits by model); ``lora_id``
    the LoRA of a LoRA event.
    """

    outcome: DeliveryOutcome
    delivery_id: int
    job_id: str | None
    tasks: int = 0
    model: str | None = None
    lora_id: str | None = None
