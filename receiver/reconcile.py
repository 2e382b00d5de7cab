"""Reconciliation: asking Apiframe's job API about what the webhooks did not tell.

A laptop behind a tunnel sleeps, a deploy restarts, a webhook is lost: without this, a job
would stay ``PROCESSING`` forever and its files would expire on the CDN. Two sweeps:

* ``poll_stale``: jobs seen but not finished within their modality's wait (images minutes,
  videos and music longer) are looked up with ``GET /v2/jobs/:id``, each at most once per wait;
* ``discover``: ``GET /v2/jobs`` is walked back to a point in time, to find jobs whose webhooks
  never arrived at all (after downtime; ``framehook reconcile --since 2h``).

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
from typing import Any

import anyio
import orjson
from sqlalchemy import Engine, func, or_, select, update

from receiver.apiframe import ApiframeClient, ApiframeError
from receiver.database import writing
from receiver.events import parse_body
from receiver.intake import Arrival, Recorder
from receiver.logs import get_logger
from receiver.metrics import Metrics
from receiver.models import Delivery, Job, metadata

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
UNFINISHED = ("QUEUED", "PROCESSING")
_VIDEO_PREFIXES = ("kling", "wan-", "veo", "sora", "seedance", "runway", "hailuo", "luma", "pika")
_MUSIC_PREFIXES = ("suno", "udio", "producer", "mureka", "lyria", "elevenlabs-music")


def modality_of(model: str | None) -> str:
    """``image``, ``video`` or ``music`` for a model name (unknown models count as images)."""
    name = (model or "").lower()
    if name == "midjourney-video" or name.startswith(_VIDEO_PREFIXES) or "video" in name:
        return "video"
    if name.startswith(_MUSIC_PREFIXES):
        return "music"
    return "image"


@dataclass(frozen=True, slots=True)
class Waits:
    """How long after its last news an unfinished job is looked up, per modality."""

    image: timedelta = timedelta(minutes=3)
    video: timedelta = timedelta(minutes=10)
    music: timedelta = timedelta(minutes=5)

    def of(self, model: str | None) -> timedelta:
        """The wait for a job of ``model``."""
        return getattr(self, modality_of(model))  # type: ignore[no-any-return]


def event_body(job: dict[str, Any]) -> bytes | None:
    """The webhook Apiframe would have sent for a job resource in this state, or ``None``
    when the state has no webhook (``QUEUED``, ``CANCELLED``, unknown)."""
    job_id, status = job.get("id"), job.get("status")
    if not isinstance(job_id, str):
        return None
    body: dict[str, Any] = {"jobId": job_id, "status": status, "model": job.get("model")}
    if status == "COMPLETED":
        body |= {
            "event": "completed",
            "progress": 100,
            "result": job.get("result"),
            "creditCost": job.get("creditCost"),
            "completedAt": job.get("completedAt"),
            "expired": bool(job.get("expired")),
        }
    elif status == "FAILED":
        body |= {"event": "failed", "error": job.get("error")}
    elif status == "PROCESSING" and isinstance(job.get("progress"), int | float):
        body |= {"event": "progress", "progress": job["progress"]}
    else:
        return None
    return orjson.dumps(body)


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
        """Look up every unfinished job silent for longer than its wait."""
        now = now or datetime.now(UTC)
        report = Report()
        stale = await anyio.to_thread.run_sync(self._stale, now, limit)
        for job_id in stale:
            await self._poll(job_id, now, report)
        return report

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
            fresh = [j for j in page.jobs if (_created(j) or since) >= since]
            known = await anyio.to_thread.run_sync(self._known, [str(j.get("id")) for j in fresh])
            news = [j for j in fresh if _is_news(j, known.get(str(j.get("id"))))]
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

    async def _record(self, bodies: Sequence[bytes], report: Report) -> None:
        now = datetime.now(UTC)
        arrivals = [
            Arrival(parse_body(b), b, now, f"poll-{uuid.uuid4().hex[:16]}", source="poll")
            for b in bodies
        ]
        receipts = await anyio.to_thread.run_sync(self._write, arrivals)
        for receipt in receipts:
            outcome = "updated" if receipt.outcome == "accepted" else str(receipt.outcome)
            self._count(report, outcome)
        if any(r.tasks for r in receipts) and self.on_recorded is not None:
            self.on_recorded()

    def _count(self, report: Report, outcome: str, count: int = 1) -> None:
        report.add(outcome, count)
        if self.metrics is not None:
            self.metrics.reconcile_poll(outcome, count)

    def _write(self, arrivals: list[Arrival]) -> list[Any]:
        with writing(self.engine) as connection:
            return self.recorder.record_many(connection, arrivals)

    def _stale(self, now: datetime, limit: int) -> list[str]:
        j = _jobs
        shortest = min(self.waits.image, self.waits.video, self.waits.music)
        query = (
            select(j.c.id, j.c.model, j.c.updated_at, j.c.polled_at)
            .where(j.c.status.in_(UNFINISHED), j.c.updated_at < now - shortest)
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


def _created(job: dict[str, Any]) -> datetime | None:
    value = job.get("createdAt")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _is_news(job: dict[str, Any], known: tuple[str, int] | None) -> bool:
    status = job.get("status")
    if known is None:
        return status in ("COMPLETED", "FAILED", "PROCESSING")
    ours, progress = known
    if ours in ("COMPLETED", "FAILED"):
        return False
    if status in ("COMPLETED", "FAILED"):
        return True
    theirs = job.get("progress")
    return isinstance(theirs, int | float) and theirs > progress


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
