"""``framehook simulate``: many jobs through a misbehaving fake Apiframe, then a reckoning.

The fake sends each job's webhooks with the chosen rates of duplicates, reordering, delays and
drops (and fails some jobs), and, on request, results and bodies in the shapes Apiframe's
reference allows but does not show (music results as an array, unseen result shapes, bodies
that name their event by ``type`` or only by ``status``); the receiver, as ``serve`` runs it
(embedded worker, download handler, reconciliation with short waits unless switched off), must
still end every job in the state the fake's job API gives, with every file the fake serves for
a completed result captured. The run ends with a table of expected against actual, and a
non-zero exit on any mismatch.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from receiver.apiframe.client import ApiframeClient
from receiver.app import create_app
from receiver.db.engine import create_db_engine
from receiver.db.models import TaskStatus
from receiver.dev.fakeapi import Behaviour, FakeApiframe, create_fake_apiframe, fake_of
from receiver.dev.fakeapi.shapes import EventField
from receiver.dev.live import JobView, read_jobs
from receiver.dev.loopback import Loopback, loopback_settings
from receiver.logs import configure_logging

__all__ = ["Chaos", "JobReckoning", "run_simulation"]

# Round-robin over the modalities: route and model.
MIX = (
    ("images/generate", "midjourney"),
    ("images/generate", "gpt-image-2"),
    ("videos/generate", "kling-2.6"),
    ("videos/generate", "midjourney-video"),
    ("music/generate", "suno"),
    ("images/upscale", "topaz-image-upscale"),
)
# What Apiframe requires beside the model: a prompt, or the model's params object.
_FIELDS: dict[str, dict[str, Any]] = {
    "midjourney-video": {"midjourneyVideoParams": {"start_image": "https://example.com/a.png"}},
    "topaz-image-upscale": {"topazUpscaleParams": {"image": "https://example.com/a.png"}},
}


@dataclass(frozen=True, slots=True)
class Chaos:
    """The misbehaviour rates (0..1), the pace, the shapes the fake sends (its ``Behaviour``'s
    ``music_results``, ``unseen_result_probability`` as ``unseen_shapes``, ``event_field``),
    and whether the receiver reconciles (without it, only webhooks can bring a job home)."""

    duplicates: float = 0.2
    reorder: float = 0.2
    drops: float = 0.1
    delays: float = 0.1
    failures: float = 0.1
    step_seconds: float = 0.05
    seed: int = 0
    music_results: Literal["tracks", "array"] = "tracks"
    unseen_shapes: float = 0.0
    event_field: EventField | Literal["mixed"] = "event"
    reconcile: bool = True


@dataclass(frozen=True, slots=True)
class JobReckoning:
    """One job: what the fake's API says, and what the receiver has."""

    job_id: str
    model: str
    expected_status: str
    expected_files: int
    actual_status: str
    actual_files: int

    @property
    def ok(self) -> bool:
        """The receiver agrees with the API, files included."""
        return (self.expected_status, self.expected_files) == (
            self.actual_status,
            self.actual_files,
        )


def _expected(fake: FakeApiframe, ids: list[str]) -> dict[str, tuple[str, str, int]]:
    jobs = {job.id: job for job in fake.jobs}
    expected = {}
    for job_id in ids:
        job = jobs[job_id]
        # The files the fake serves for the job, not what a reading of its result finds: a
        # result in a shape the receiver cannot read must show as files missing.
        files = len(job.files) if job.status == "COMPLETED" else 0
        expected[job_id] = (job.model, job.status, files)
    return expected


def _settled(views: dict[str, JobView], expected: dict[str, tuple[str, str, int]]) -> bool:
    for job_id, (_model, status, files) in expected.items():
        view = views.get(job_id)
        if view is None or view.status != status or not view.settled:
            return False
        if len(view.files) < files and view.capture not in (TaskStatus.DEAD, None):
            return False
    return True


async def _simulate(
    directory: Path, jobs: int, chaos: Chaos, seconds: float, console: Console
) -> tuple[list[JobReckoning], Counter[str]]:
    api_key = f"afk_sim_{secrets.token_hex(16)}"
    behaviour = Behaviour(
        step_seconds=chaos.step_seconds,
        progress_steps=3,
        fail_probability=chaos.failures,
        duplicate_probability=chaos.duplicates,
        reorder_probability=chaos.reorder,
        delay_probability=chaos.delays,
        delay_seconds=chaos.step_seconds * 10,
        drop_probability=chaos.drops,
        webhook_backoff_seconds=0.1,
        music_results=chaos.music_results,
        unseen_result_probability=chaos.unseen_shapes,
        event_field=chaos.event_field,
    )
    fake_app = create_fake_apiframe(api_key, behaviour=behaviour, seed=chaos.seed)
    async with Loopback() as loopback:
        api_url = await loopback.serve(fake_app)
        settings = loopback_settings(
            directory,
            api_key,
            api_url,
            # Dropped webhooks are what reconciliation is for: short waits, frequent sweeps.
            reconcile=chaos.reconcile,
            reconcile_interval_seconds=0.5,
            reconcile_image_seconds=1.0,
            reconcile_video_seconds=1.0,
            reconcile_music_seconds=1.0,
            retry_base_seconds=0.2,
            retry_max_seconds=2,
        )
        receiver_url = await loopback.serve(create_app(settings))
        client = loopback.close_later(ApiframeClient(api_key, api_url))
        hook = f"{receiver_url}/webhooks/apiframe"
        ids = []
        for n in range(jobs):
            route, model = MIX[n % len(MIX)]
            payload = {
                "model": model,
                "webhookUrl": hook,
                "webhookEvents": ["progress", "completed", "failed"],
                **_FIELDS.get(model, {}),
            }
            if route.endswith("/generate"):
                payload["prompt"] = f"simulated job {n}"
            ids.append(await client.create(route, payload))
        console.print(f"{jobs} jobs submitted; waiting for the fake to finish them")
        fake = fake_of(fake_app)
        await fake.settle()
        expected = _expected(fake, ids)
        engine = loopback.dispose_later(create_db_engine(settings.database_url, pool_size=1))
        deadline = time.monotonic() + seconds
        views: dict[str, JobView] = {}
        while time.monotonic() < deadline:
            views = await asyncio.to_thread(read_jobs, engine, ids)
            if _settled(views, expected):
                break
            await asyncio.sleep(0.25)
        reckonings = []
        for job_id, (model, status, files) in expected.items():
            view = views.get(job_id)
            actual = view.status if view else "(unknown)"
            got = len(view.files) if view else 0
            reckonings.append(JobReckoning(job_id, model, status, files, actual, got))
        sent: Counter[str] = Counter()
        for delivery in fake.deliveries:
            sent["webhooks"] += 1
            for flag in ("duplicate", "dropped", "delayed", "reordered"):
                if getattr(delivery, flag):
                    sent[flag] += 1
        return reckonings, sent


def _report(console: Console, reckonings: list[JobReckoning], sent: Counter[str]) -> None:
    console.print(
        f"webhooks: {sent['webhooks']} deliveries, {sent['duplicate']} duplicated, "
        f"{sent['reordered']} reordered, {sent['delayed']} delayed, {sent['dropped']} dropped"
    )
    table = Table("job", "model", "expected", "actual", "files expected", "files", "")
    for o in sorted(reckonings, key=lambda o: (o.ok, o.job_id)):
        mark = "[green]ok[/]" if o.ok else "[bold red]MISMATCH[/]"
        table.add_row(
            o.job_id[:8],
            o.model,
            o.expected_status,
            o.actual_status,
            str(o.expected_files),
            str(o.actual_files),
            mark,
        )
    console.print(table)
    bad = sum(not o.ok for o in reckonings)
    files = sum(o.actual_files for o in reckonings)
    verdict = "[green]all jobs agree[/]" if not bad else f"[bold red]{bad} mismatched[/]"
    console.print(f"{len(reckonings)} jobs, {files} files captured: {verdict}")


def run_simulation(
    jobs: int,
    chaos: Chaos,
    *,
    directory: Path | None = None,
    timeout: float = 120.0,
    console: Console | None = None,
) -> int:
    """Run the simulation; return the exit code (0: every job agrees, 1: a mismatch).

    Args:
        jobs: how many jobs to run.
        chaos: misbehaviour rates, pace and seed.
        directory: where the database and files go (a temporary directory by default).
        timeout: seconds to wait, after the fake has finished, for the receiver to agree.
        console: where to print.
    """
    console = console or Console(highlight=False)
    configure_logging("console", "error")
    with tempfile.TemporaryDirectory(prefix="framehook-simulate-") as scratch:
        where = (directory or Path(scratch)).resolve()
        where.mkdir(parents=True, exist_ok=True)
        reckonings, sent = asyncio.run(_simulate(where, jobs, chaos, timeout, console))
    _report(console, reckonings, sent)
    return 0 if all(o.ok for o in reckonings) else 1
