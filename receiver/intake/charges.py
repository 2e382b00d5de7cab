"""Credits charged as events are accepted: the ``framehook_credits_total{model}`` counter.

The ledger itself is the ``jobs`` table (``receiver.credits``); this counts the same charges at
the moment they happen, for the intake and for reconciliation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from receiver.apiframe.events import CompletedEvent
from receiver.intake.arrivals import Arrival, DeliveryOutcome, Receipt

if TYPE_CHECKING:
    from receiver.metrics import Metrics

__all__ = ["charge_of", "count_charges"]


def charge_of(arrival: Arrival, receipt: Receipt) -> tuple[str | None, float] | None:
    """``(model, credits)`` if recording ``arrival`` charged its job, else ``None``.

    Only an accepted ``completed`` event charges: it is the job's first terminal event, which
    happens once per job whatever arrives after it. A framehook test event charges nothing.
    """
    event = arrival.parsed.event
    if receipt.outcome is not DeliveryOutcome.ACCEPTED or not isinstance(event, CompletedEvent):
        return None
    if arrival.parsed.test:
        return None
    if event.credit_cost is None or event.credit_cost <= 0:
        return None
    return receipt.model or event.model, event.credit_cost


def count_charges(metrics: Metrics | None, recorded: Iterable[tuple[Arrival, Receipt]]) -> None:
    """Count the credits charged by these recorded arrivals in ``framehook_credits_total``."""
    if metrics is None:
        return
    for arrival, receipt in recorded:
        charge = charge_of(arrival, receipt)
        if charge is not None:
            metrics.credit(*charge)
