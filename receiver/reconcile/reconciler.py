"""Reconciliation: asking Apiframe's job API about what the webhooks did not tell.

A laptop behind a tunnel sleeps, a deploy restarts, a webhook is lost: without this, a job
would stay ``PROCESSING`` forever and its files would expire on the CDN. Two sweeps:

* ``poll_stale``: jobs seen but not finished within their modality's wait (images minutes,
  videos and music longer) are looked up with ``GET /v2/jobs/:id``, each at most once per wait;
* ``discover``: ``GET /v2/jobs`` is walked back to a point in time, to find jobs whose webhooks
  never arrived at all (after downtime; ``framehook reconcile --since 2h``).

``poll_stale`` also looks LoRA trainings up (``GET /v2/loras/:id``): those whose state came
from a webhook not confirmed yet, and unfinished ones silent longer than a training takes
(``receiver.reconcile.loras``); their outcomes are counted as ``lora_<outcome>``.

What the API says is turned into the webhook Apiframe would have sent and enters through the
same intake as a webhook, marked ``source = poll``: dedupe, the state machine and the handlers
all apply, so a webhook that arrives after the poll is a duplicate, never a second download.
A 404 is its own outcome (Apiframe does not know the job: another account's, or purged).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import anyio
from sqlalchemy import Engine, func, not_, or_, select, update

from receiver.apiframe.client import ApiframeClient, ApiframeError
from receiver.apiframe.events import parse_body
from receiver.db.engine import writing
from receiver.db.models import Delivery, Job, metadata
from receiver.intake.charges import count_charges
from receiver.intake.job_state import JobStatus
from receiver.intake.recorder import Arrival, Receipt, Recorder
from receiver.logs import get_logger
from receiver.metrics import Metrics
from receiver.reconcile.jobs import Waits, created_at, event_body, is_news, modality_of
from receiver.reconcile.loras import confirm, due_loras, lora_body

__all__ = [
    "Reconciler",
    "Report",
    "Waits",
    "event_body",
    "last_news",
    "modality_of",
    "reconcile_periodically",
]

_log = get_logger("framehook.reconcile")
_jobs = metadata.tables[Job.__tablename__]
_deliveries = metadata.tables[Delivery.__tablename__]
CATCH_UP_MARGIN = timedelta(minutes=10)
UNFINISHED = (JobStatus.QUEUED, JobStatus.PROCESSING)


@dataclass
class Report:
    """What a sweep did: jobs looked up, and what became of each."""

    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: str, count: int = 1) -> None:
        """Count ``count`` jobs as ``outcome``."""
        self.outcomes[outcome] += count


class Reconciler:
    """Looks jobs up in Apiframe's API and records what it says as ``poll`` deliveries.

    Args:
        engine: the database.
        recorder: the intake (same subscriptions as the receiver's).
        client: Apiframe's API.
        waits: per modality, how long an unfinished job may stay silent.
        on_recorded: called after a commit that queued tasks (wakes an embedded worker).
        metrics: counts what the sweeps' reports count (nothing when ``None``).
    """

    def __init__(
        self,
        engine: Engine,
        recorder: Recorder,
        client: ApiframeClient,
        waits: Waits | None = None,
        on_recorded: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.engine = engine
        self.recorder = recorder
        self.client = client
        self.waits = waits or Waits()
        self.on_recorded = on_recorded
        self.metrics = metrics

    async def poll_stale(self, now: datetime | None = None, limit: int = 200) -> Report:
        """Look up every unfinished job silent for longer than its wait, then the LoRAs due
        (``poll_loras``)."""
        now = now or datetime.now(UTC)
        report = Report()
        stale = await anyio.to_thread.run_sync(self._stale, now, limit)
        for job_id in stale:
            await self._poll(job_id, now, report)
        report.outcomes.update((await self.poll_loras(now, limit)).outcomes)
        return report

    async def poll_loras(self, now: datetime | None = None, limit: int = 200) -> Report:
        """Look up the LoRAs whose webhook-given state is unconfirmed, and the unfinished ones
        silent for longer than ``waits.lora``."""
        now = now or datetime.now(UTC)
        report = Report()
        due = await anyio.to_thread.run_sync(due_loras, self.engine, now, self.waits.lora, limit)
        for lora_id in due:
            await self._poll_lora(lora_id, report)
        return report

    async def _poll_lora(self, lora_id: str, report: Report) -> None:
        try:
            lora = await self.client.lora(lora_id)
        except ApiframeError as exc:
            refused = exc.status is not None and 400 <= exc.status < 500
            _log.warning("reconcile: looking the LoRA up failed", lora_id=lora_id, error=str(exc))
            if refused:
                # Asking again would get the same answer: wait as for a silent LoRA.
                await anyio.to_thread.run_sync(confirm, self.engine, lora_id, None, _now())
            self._count(report, "lora_refused" if refused else "lora_error")
            return
        if lora is None:
            await anyio.to_thread.run_sync(confirm, self.engine, lora_id, None, _now())
            self._count(report, "lora_not_found")
            _log.warning("reconcile: Apiframe does not know this LoRA (404)", lora_id=lora_id)
            return
        await self._record([lora_body(lora_id, lora)], report, prefix="lora_")
        await anyio.to_thread.run_sync(confirm, self.engine, lora_id, lora, _now())

    async def poll(self, job_ids: Sequence[str]) -> Report:
        """Look these jobs up now, whatever their waits."""
        report = Report()
        for job_id in job_ids:
            await self._poll(job_id, datetime.now(UTC), report)
        return report

    async def discover(self, since: datetime, page_size: int = 100) -> Report:
        """Walk ``GET /v2/jobs`` back to ``since``; record every job whose state is news."""
        report = Report()
        cursor: str | None = None
        while True:
            page = await self.client.jobs(cursor=cursor, limit=page_size)
            fresh = [j for j in page.jobs if (created_at(j) or since) >= since]
            # A job without a text id has no webhook to stand for (and str() of any value
            # recurses through a deeply nested one).
            ids = [job_id for j in fresh if isinstance(job_id := j.get("id"), str)]
            known = await anyio.to_thread.run_sync(self._known, ids)
            news = [j for j in fresh if j.get("id") in ids and is_news(j, known.get(j["id"]))]
            self._count(report, "listed", len(fresh))
            if news:
                await self._record([b for j in news if (b := event_body(j)) is not None], report)
            older = len(fresh) < len(page.jobs)
            if older or not page.has_more or page.next_cursor is None:
                return report
            cursor = page.next_cursor

    async def _poll(self, job_id: str, now: datetime, report: Report) -> None:
        try:
            job = await self.client.job(job_id)
        except ApiframeError as exc:
            self._count(report, "error")
            _log.warning("reconcile: looking the job up failed", job_id=job_id, error=str(exc))
            return
        await anyio.to_thread.run_sync(self._mark_polled, job_id, now)
        if job is None:
            self._count(report, "not_found")
            _log.warning("reconcile: Apiframe does not know this job (404)", job_id=job_id)
            return
        body = event_body(job)
        if body is None:
            self._count(report, "unchanged")
            return
        await self._record([body], report)

    async def _record(self, bodies: Sequence[bytes], report: Report, prefix: str = "") -> None:
        now = datetime.now(UTC)
        arrivals = [
            Arrival(parse_body(b), b, now, f"poll-{uuid.uuid4().hex[:16]}", source="poll")
            for b in bodies
        ]
        receipts = await anyio.to_thread.run_sync(self._write, arrivals)
        count_charges(self.metrics, zip(arrivals, receipts, strict=True))
        for receipt in receipts:
            outcome = "updated" if receipt.outcome == "accepted" else str(receipt.outcome)
            self._count(report, prefix + outcome)
        if any(r.tasks for r in receipts) and self.on_recorded is not None:
            self.on_recorded()

    def _count(self, report: Report, outcome: str, count: int = 1) -> None:
        report.add(outcome, count)
        if self.metrics is not None:
            self.metrics.reconcile_poll(outcome, count)

    def _write(self, arrivals: list[Arrival]) -> list[Receipt]:
        with writing(self.engine) as connection:
            return self.recorder.record_many(connection, arrivals)

    def _stale(self, now: datetime, limit: int) -> list[str]:
        j = _jobs
        shortest = min(self.waits.image, self.waits.video, self.waits.music)
        query = (
            select(j.c.id, j.c.model, j.c.updated_at, j.c.polled_at)
            .where(j.c.status.in_(UNFINISHED), j.c.updated_at < now - shortest)
            # A test job (framehook send-test) is unknown to Apiframe: asking would only 404.
            .where(not_(j.c.test))
            .where(or_(j.c.polled_at.is_(None), j.c.polled_at < now - shortest))
            .order_by(j.c.updated_at)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        due = []
        for row in rows:
            wait = self.waits.of(row.model)
            last = max(row.updated_at, row.polled_at or row.updated_at)
            if last < now - wait:
                due.append(row.id)
        return due

    def _mark_polled(self, job_id: str, now: datetime) -> None:
        with writing(self.engine) as connection:
            connection.execute(update(_jobs).where(_jobs.c.id == job_id).values(polled_at=now))

    def _known(self, ids: list[str]) -> dict[str, tuple[str, int]]:
        if not ids:
            return {}
        j = _jobs
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(j.c.id, j.c.status, j.c.progress).where(j.c.id.in_(ids))
            ).all()
        return {r.id: (r.status, r.progress) for r in rows}


def _now() -> datetime:
    return datetime.now(UTC)


def last_news(engine: Engine) -> datetime | None:
    """When the last delivery (webhook or poll) was received, if any."""
    with engine.connect() as connection:
        value = connection.execute(select(func.max(_deliveries.c.received_at))).scalar()
    if value is None:
        return None
    if isinstance(value, str):  # SQLite's aggregate loses the column type
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def reconcile_periodically(
    reconciler: Reconciler, interval_seconds: float, stop: asyncio.Event
) -> None:
    """Catch up after downtime, then every ``interval_seconds`` until ``stop``: poll silent
    jobs, and walk the newest page(s) of the job list for jobs never heard of at all (every
    one of their webhooks lost). Failures are logged and retried next round: never fatal."""
    # The walk looks back one job's longest wait past the previous walk: a video created
    # before then and silent since still finishes inside the window.
    window = CATCH_UP_MARGIN + max(
        reconciler.waits.image, reconciler.waits.video, reconciler.waits.music
    )
    walked: datetime | None = None
    try:
        since = await anyio.to_thread.run_sync(last_news, reconciler.engine)
        if since is not None:
            # Whatever happened while nobody listened (a sleeping laptop, a deploy).
            began = datetime.now(UTC)
            report = await reconciler.discover(since - CATCH_UP_MARGIN)
            walked = began
            _log.info("reconcile: caught up", since=since.isoformat(), **report.outcomes)
    except Exception as exc:
        _log.warning("reconcile: catching up failed", error=f"{type(exc).__name__}: {exc}")
    walked = walked or datetime.now(UTC)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval_seconds)
            return
        except TimeoutError:
            pass
        try:
            began = datetime.now(UTC)
            report = await reconciler.discover(walked - window)
            walked = began
            report.outcomes.update((await reconciler.poll_stale()).outcomes)
        except Exception as exc:
            _log.warning("reconcile: sweep failed", error=f"{type(exc).__name__}: {exc}")
            continue
        report.outcomes.pop("listed", None)
        if report.outcomes:
            _log.info("reconcile: sweep", **report.outcomes)
