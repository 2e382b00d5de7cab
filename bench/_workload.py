"""Signed Apiframe deliveries for the benchmarks, built from the bodies the tests use.

Bodies come from ``receiver.dev.fakeapi.bodies``: what the fake Apiframe and the chaos tests
send, held to the shapes of the shipped samples (``handlers/samples/*.json``) by
``tests/receiver/dev/fakeapi/test_bodies.py``.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receiver import sign
from receiver.dev.fakeapi.bodies import CDN_BASE_URL, sample_webhook

__all__ = [
    "Signed",
    "Workload",
    "completed",
    "encode",
    "generate_workload",
    "payload",
    "prepare_workload",
    "read_deliveries",
    "signed",
    "write_deliveries",
]

# Every completed event's completedAt: a fixed time, so the same seed gives the same bytes.
COMPLETED_AT = "2026-11-20T10:00:32.000Z"


@dataclass(frozen=True, slots=True)
class Signed:
    """One delivery as Apiframe would send it: event header, signature header, raw body."""

    event: str
    signature: str
    body: bytes

    def headers(self) -> dict[str, str]:
        """The HTTP headers Apiframe sends with it."""
        return {
            "Content-Type": "application/json",
            "X-Webhook-Signature": self.signature,
            "X-Webhook-Event": self.event,
        }


def payload(
    event: str,
    job_id: str,
    modality: str,
    *,
    progress: int | None = None,
    asset_base_url: str = CDN_BASE_URL,
) -> dict[str, Any]:
    """A ``progress``, ``completed`` or ``failed`` body of a job of ``modality`` (``midjourney``,
    ``image``, ``video``, ...: ``receiver.dev.fakeapi.MODALITIES``)."""
    body = sample_webhook(
        event, modality, job_id=job_id, progress=progress, asset_base_url=asset_base_url
    )
    if "completedAt" in body:
        body["completedAt"] = COMPLETED_AT
    return body


def encode(body: dict[str, Any]) -> bytes:
    """``body`` as compact, ASCII-only JSON, as Apiframe sends it."""
    # ASCII: the deliveries file is ASCII, and compact JSON never holds a raw tab or newline,
    # so that file needs no escaping.
    return json.dumps(body, separators=(",", ":")).encode()


def signed(body: dict[str, Any], api_key: str) -> Signed:
    """``body`` encoded and signed with ``api_key``."""
    raw = encode(body)
    return Signed(str(body["event"]), sign(raw, api_key), raw)


def completed(
    job_id: str, api_key: str, modality: str, *, asset_base_url: str = CDN_BASE_URL
) -> Signed:
    """A signed ``completed`` event of a job of ``modality``."""
    return signed(payload("completed", job_id, modality, asset_base_url=asset_base_url), api_key)


@dataclass(slots=True)
class Workload:
    """The pre-signed deliveries, replayed in order against every server."""

    deliveries: list[Signed]
    jobs: int
    duplicates: int
    events: Counter[str]


@dataclass(slots=True)
class _Job:
    id: str
    progress: int = 0


def _job_id(rng: random.Random) -> str:
    # From the seeded generator, not uuid4(): the same seed gives the same workload.
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def generate_workload(
    count: int,
    api_key: str,
    *,
    seed: int = 1,
    in_flight: int = 50,
    duplicate_rate: float = 0.05,
    failure_rate: float = 0.10,
    retry_window: int = 500,
    modality: str = "midjourney",
) -> Workload:
    """``count`` signed deliveries from ``in_flight`` interleaved, rolling jobs.

    Each job sends progress events rising by 5-15 points, then one ``completed`` (or, for
    ``failure_rate`` of jobs, ``failed``) event, and is replaced by a new job. About
    ``duplicate_rate`` of the deliveries are exact resends of a recent one (within
    ``retry_window``), as Apiframe retries look.
    """
    rng = random.Random(seed)
    jobs = [_Job(_job_id(rng)) for _ in range(in_flight)]
    started = in_flight
    duplicates = 0
    events: Counter[str] = Counter()
    out: list[Signed] = []
    while len(out) < count:
        if out and rng.random() < duplicate_rate:
            out.append(out[rng.randrange(max(0, len(out) - retry_window), len(out))])
            duplicates += 1
            events["duplicate"] += 1
            continue
        slot = rng.randrange(in_flight)
        job = jobs[slot]
        step = rng.randint(5, 15)
        if job.progress + step < 100:
            job.progress += step
            body = payload("progress", job.id, modality, progress=job.progress)
        else:
            failed = rng.random() < failure_rate
            body = payload("failed" if failed else "completed", job.id, modality)
            jobs[slot] = _Job(_job_id(rng))
            started += 1
        delivery = signed(body, api_key)
        out.append(delivery)
        events[delivery.event] += 1
    return Workload(out, started, duplicates, events)


def write_deliveries(path: Path, deliveries: Sequence[Signed]) -> None:
    """One delivery per line, ``event<TAB>signature<TAB>body``: what every generator reads."""
    with path.open("w", encoding="ascii") as out:
        for d in deliveries:
            out.write(f"{d.event}\t{d.signature}\t{d.body.decode('ascii')}\n")


def read_deliveries(path: Path) -> list[Signed]:
    """The inverse of ``write_deliveries``."""
    result: list[Signed] = []
    with path.open(encoding="ascii") as lines:
        for line in lines:
            event, signature, body = line.rstrip("\n").split("\t", 2)
            result.append(Signed(event, signature, body.encode("ascii")))
    return result


def prepare_workload(
    count: int, api_key: str, path: Path, *, seed: int, in_flight: int = 50
) -> Workload:
    """Generate the workload, write it to ``path`` for the generators, and say so."""
    began = time.perf_counter()
    workload = generate_workload(count, api_key, seed=seed, in_flight=in_flight)
    write_deliveries(path, workload.deliveries)
    print(
        f"workload: {count} signed deliveries ({dict(workload.events)}), {workload.jobs} jobs, "
        f"{in_flight} in flight; generated in {time.perf_counter() - began:.1f} s"
    )
    return workload
