"""The counters and histograms, counted where things happen, and the registry they live in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from sqlalchemy import Engine

from receiver.db.models import AttemptOutcome
from receiver.metrics.gauges import ApiCollector, TaskCollector
from receiver.metrics.labels import ModelLabels

if TYPE_CHECKING:
    # Types only: a standalone worker counts into Metrics but never polls Apiframe; every
    # module it loads stays resident.
    from receiver.apiframe.client import ApiframeClient

__all__ = ["HandlerMeter", "Metrics"]

SIGNATURE_REASONS = ("signature_missing", "signature_malformed", "signature_mismatch")
HANDLER_OUTCOMES = tuple(o.value for o in AttemptOutcome)
WEBHOOK_EVENTS = frozenset({"progress", "completed", "failed", "cancelled"})
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
HANDLER_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


class HandlerMeter:
    """One handler's run counter and duration histogram, bound per outcome."""

    __slots__ = ("_runs", "_seconds")

    def __init__(self, metrics: Metrics, handler: str) -> None:
        self._runs = {o: metrics.handler_runs.labels(handler, o) for o in HANDLER_OUTCOMES}
        self._seconds = {o: metrics.handler_seconds.labels(handler, o) for o in HANDLER_OUTCOMES}

    def attempt(self, outcome: AttemptOutcome, seconds: float | None) -> None:
        """Count one attempt ending in ``outcome``; ``seconds`` is ``None`` when the handler
        never ran (the delivery's body was pruned)."""
        self._runs[outcome].inc()
        if seconds is not None:
            self._seconds[outcome].observe(seconds)


class Metrics:
    """framehook's metrics, in a registry of their own (``self.registry``).

    Components take an optional ``Metrics`` and count nothing without one.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.deliveries = Counter(
            "framehook_deliveries",
            "Webhook deliveries recorded, by the body's event and what became of them.",
            ["event", "outcome"],
            registry=r,
        )
        self.signature_failures = Counter(
            "framehook_signature_failures",
            "Webhooks answered 401, by reason.",
            ["reason"],
            registry=r,
        )
        self.ack_seconds = Histogram(
            "framehook_ack_seconds",
            "Webhook handling time, from the request to the answer.",
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self.handler_seconds = Histogram(
            "framehook_handler_seconds",
            "Handler run time per task attempt, by handler and outcome.",
            ["handler", "outcome"],
            buckets=HANDLER_BUCKETS,
            registry=r,
        )
        self.handler_runs = Counter(
            "framehook_handler_runs",
            "Task attempts, by handler and outcome (succeeded, retry, dead).",
            ["handler", "outcome"],
            registry=r,
        )
        self.downloaded_bytes = Counter(
            "framehook_downloaded_bytes",
            "Bytes of captured assets newly recorded.",
            registry=r,
        )
        self.reconcile_polls = Counter(
            "framehook_reconcile_polls",
            "Jobs looked up (or listed) by reconciliation, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.credits = Counter(
            "framehook_credits",
            "Credits charged by completed jobs, by model, counted once per job when its "
            "completed event (webhook or poll) is accepted.",
            ["model"],
            registry=r,
        )
        self._signature = {
            reason: self.signature_failures.labels(reason) for reason in SIGNATURE_REASONS
        }
        # outcome -> event -> child; filled on first use (most pairs never happen).
        self._deliveries: dict[str, dict[str, Any]] = {}
        self._models = ModelLabels()
        self._tasks = TaskCollector()
        self._api = ApiCollector()
        r.register(self._tasks)
        r.register(self._api)

    def delivery(self, event: str | None, outcome: str) -> None:
        """Count a recorded webhook delivery; ``event`` is the body's (any other name counts
        as ``other``, none as ``none``)."""
        label = event if event in WEBHOOK_EVENTS else "none" if event is None else "other"
        by_event = self._deliveries.get(outcome)
        if by_event is None:
            by_event = self._deliveries[outcome] = {}
        child = by_event.get(label)
        if child is None:
            child = by_event[label] = self.deliveries.labels(label, outcome)
        child.inc()

    def signature_failure(self, reason: str) -> None:
        """Count a 401."""
        child = self._signature.get(reason)
        if child is None:
            child = self._signature[reason] = self.signature_failures.labels(reason)
        child.inc()

    def handler(self, name: str) -> HandlerMeter:
        """The meter of handler ``name`` (bind once, use per attempt)."""
        return HandlerMeter(self, name)

    def downloaded(self, size: int) -> None:
        """Count ``size`` bytes of a newly recorded asset."""
        self.downloaded_bytes.inc(size)

    def reconcile_poll(self, outcome: str, count: int = 1) -> None:
        """Count ``count`` reconciliation lookups ending in ``outcome``."""
        self.reconcile_polls.labels(outcome).inc(count)

    def credit(self, model: str | None, amount: float) -> None:
        """Count ``amount`` credits charged by an accepted ``completed`` event of ``model``
        (under a bounded label: see :class:`ModelLabels`)."""
        if amount > 0:
            self.credits.labels(self._models(model)).inc(amount)

    def watch_tasks(self, engine: Engine) -> None:
        """Report the task and capture gauges from ``engine``'s tables at each scrape."""
        self._tasks.engine = engine

    def watch_api(self, client: ApiframeClient) -> None:
        """Report ``client``'s requests to Apiframe's job API by outcome at each scrape."""
        self._api.client = client

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition (text format, or OpenMetrics if ``accept`` asks) and its type.

        Runs the database queries: call it off the event loop.
        """
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
