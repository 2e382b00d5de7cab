"""What a chaos run sends, and the truth it must end in.

A plan is hundreds of jobs, each with a fate decided up front (completed with files, failed, or
still processing), its signed-to-be events in the shapes Apiframe sends
(``receiver.dev.fakeapi.bodies``), and the source bytes of every file a completed job's result
points to, served by a loopback CDN. Events are shuffled across all jobs (a terminal event
often arrives before the job's progress events) and some are sent twice: byte for byte, or
re-serialised with another key order (the same event, different bytes).
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from handlers.download import find_assets
from receiver.dev.fakeapi.bodies import (
    MODALITIES,
    completed_body,
    credit_cost,
    failed_body,
    file_paths,
    output_for,
    progress_body,
    result_for,
)
from tests.support.cdn import FakeCdn, Route
from tests.support.media import media_bytes

__all__ = ["Event", "JobTruth", "Plan", "SourceFile", "make_plan", "video_job"]

_CONTENT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "mp3": "audio/mpeg",
}
# Small files: the run is about many jobs and faults, not bandwidth (bench/download.py is).
_SIZES = {"png": (2_000, 16_000), "jpeg": (2_000, 8_000), "webp": (2_000, 12_000)}
_SIZES |= {"mp4": (40_000, 120_000), "mp3": (20_000, 60_000)}
# Modalities and how often: Midjourney (four images and a grid), GPT Image (one image),
# Kling (one video), Suno (two tracks and a cover).
_MODALITIES = ("midjourney", "midjourney", "image", "image", "video", "music")
ERROR = "Provider returned an error: content policy violation"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file on the loopback CDN, as the download handler must store it."""

    path: str
    body: bytes
    content_type: str

    @property
    def sha256(self) -> str:
        """SHA-256 hex of the bytes."""
        return hashlib.sha256(self.body).hexdigest()


@dataclass(frozen=True, slots=True)
class JobTruth:
    """How a job must end once every event of it was delivered, in any order, any number of
    times: its row in ``jobs`` and its captured files by position."""

    job_id: str
    model: str
    status: str
    progress: int
    result: dict[str, Any] | None = None
    error: str | None = None
    credit_cost: float | None = None
    files: dict[int, SourceFile] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """One request the sender must get acknowledged.

    Attributes:
        key: unique per planned request (``<job>#<n>``); a duplicate has a key of its own.
        dedupe_key: the meaning the receiver's ledger keys it on.
    """

    key: str
    job_id: str
    name: str
    body: bytes
    dedupe_key: str


@dataclass
class Plan:
    """Jobs with their truth, and the events to send, in sending order."""

    jobs: dict[str, JobTruth]
    events: list[Event]

    def files(self) -> Iterator[SourceFile]:
        """Every source file of every job."""
        for job in self.jobs.values():
            yield from job.files.values()

    def serve(self, cdn: FakeCdn) -> None:
        """Route every source file on ``cdn``."""
        for source in self.files():
            cdn.route(source.path, Route(source.body, content_type=source.content_type))

    def add_first(self, job: JobTruth, events: list[Event]) -> None:
        """Add ``job`` with its events sent before all others."""
        self.jobs[job.job_id] = job
        self.events[:0] = events

    @property
    def completed(self) -> list[JobTruth]:
        """The jobs that end completed (each gets one download task)."""
        return [j for j in self.jobs.values() if j.status == "COMPLETED"]


def _job_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _dedupe_key(body: dict[str, Any]) -> str:
    # What the receiver's ledger keys an event on (README, "What happens to a webhook"),
    # computed here from the plan, not by the receiver's code under test.
    if body["event"] == "progress":
        return f"job:{body['jobId']}:progress:{body['progress']}"
    return f"job:{body['jobId']}:{body['event']}"


def _event(job_id: str, n: int, body: dict[str, Any]) -> Event:
    return Event(f"{job_id}#{n}", job_id, body["event"], orjson.dumps(body), _dedupe_key(body))


def _sources(result: dict[str, Any], seed: int, rng: random.Random) -> dict[int, SourceFile]:
    refs, _ignored = find_assets(result)
    files = {}
    for ref in refs:
        path = urlsplit(ref.url).path
        ext = path.rsplit(".", 1)[1]
        low, high = _SIZES[ext]
        body = media_bytes(ext, rng.randint(low, high), seed=seed * 1000 + ref.position)
        files[ref.position] = SourceFile(path, body, _CONTENT_TYPES[ext])
    return files


def _job(
    index: int, rng: random.Random, cdn_base: str, fate: str, seed: int
) -> tuple[JobTruth, list[dict[str, Any]]]:
    job_id = _job_id(rng)
    modality = rng.choice(_MODALITIES)
    operation, model, request = MODALITIES[modality]
    steps = sorted(rng.sample(range(1, 100), rng.randint(3, 8)))
    bodies = [progress_body(job_id, model, step) for step in steps]
    if fate == "completed":
        output = output_for(operation, model, request)
        result = result_for(output, job_id, cdn_base)
        cost = credit_cost(model, output)
        bodies.append(completed_body(job_id, model, result, cost, datetime.now(UTC)))
        files = _sources(result, seed * 100_000 + index, rng)
        # The handler must see every file the result holds, or the truth would be short.
        assert len(files) == len(file_paths(output, job_id))
        truth = JobTruth(job_id, model, "COMPLETED", 100, result, None, float(cost), files)
    elif fate == "failed":
        bodies.append(failed_body(job_id, model, ERROR))
        truth = JobTruth(job_id, model, "FAILED", 100, None, ERROR)
    else:
        truth = JobTruth(job_id, model, "PROCESSING", steps[-1])
    return truth, bodies


def make_plan(
    jobs: int,
    cdn_base: str,
    *,
    seed: int = 0,
    completed: float = 0.6,
    failed: float = 0.2,
    duplicates: float = 0.15,
    resends: float = 0.05,
) -> Plan:
    """A plan of ``jobs`` jobs whose files live under ``cdn_base``.

    Args:
        completed / failed: shares of jobs that end so (the rest stay processing).
        duplicates: share of events sent a second time, byte for byte.
        resends: share of events sent a second time re-serialised (sorted keys): other bytes,
            the same meaning, so a duplicate too.
    """
    rng = random.Random(seed)
    truths: dict[str, JobTruth] = {}
    events: list[Event] = []
    for index in range(jobs):
        draw = rng.random()
        fate = "completed" if draw < completed else "failed"
        if draw >= completed + failed:
            fate = "processing"
        truth, bodies = _job(index, rng, cdn_base, fate, seed)
        truths[truth.job_id] = truth
        job_events = [_event(truth.job_id, n, body) for n, body in enumerate(bodies)]
        extra: list[Event] = []
        for event in job_events:
            draw = rng.random()
            if draw < duplicates:
                extra.append(_copy(event, len(job_events) + len(extra), event.body))
            elif draw < duplicates + resends:
                again = orjson.dumps(orjson.loads(event.body), option=orjson.OPT_SORT_KEYS)
                extra.append(_copy(event, len(job_events) + len(extra), again))
        events.extend(job_events + extra)
    rng.shuffle(events)
    return Plan(truths, events)


def _copy(event: Event, n: int, body: bytes) -> Event:
    return Event(f"{event.job_id}#{n}", event.job_id, event.name, body, event.dedupe_key)


def video_job(cdn_base: str, size: int, *, seed: int = 7) -> tuple[JobTruth, list[Event]]:
    """A completed Kling job whose one video is ``size`` bytes, and its ``completed`` event
    (for the tests that stall or kill a download half-way)."""
    rng = random.Random(seed)
    job_id = _job_id(rng)
    operation, model, request = MODALITIES["video"]
    output = output_for(operation, model, request)
    result = result_for(output, job_id, cdn_base)
    cost = credit_cost(model, output)
    (ref,), _ignored = find_assets(result)
    source = SourceFile(urlsplit(ref.url).path, media_bytes("mp4", size, seed=seed), "video/mp4")
    truth = JobTruth(job_id, model, "COMPLETED", 100, result, None, float(cost), {1: source})
    body = completed_body(job_id, model, result, cost, datetime.now(UTC))
    return truth, [_event(job_id, 0, body)]
