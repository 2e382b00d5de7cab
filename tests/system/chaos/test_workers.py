"""Workers failing mid-download under load: killed, or frozen past their lease."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from tests.support.cdn import Route
from tests.support.database import rows
from tests.support.waiting import wait_until
from tests.system.chaos.cluster import Member
from tests.system.chaos.conftest import Harness
from tests.system.chaos.plan import JobTruth, Plan, SourceFile, video_job
from tests.system.chaos.sender import Sender

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

VIDEO_BYTES = 3_000_000
STALL_AFTER = 2_500_000  # several chunks (512 KiB each) are in the temporary file by then
# A lease this short lets a run see the reclaim; workers renew theirs every second.
SHORT_LEASE = {"FRAMEHOOK_LEASE_SECONDS": "3"}


def load_with_a_stalled_video(
    harness: Harness, stall_seconds: float
) -> tuple[Plan, JobTruth, SourceFile, Sender]:
    """A plan whose first event completes a job with one big video that the CDN sends
    ``STALL_AFTER`` bytes of and then holds for ``stall_seconds``; its sender, started."""
    plan = harness.plan(jobs=150, seed=5)
    video, events = video_job(harness.cdn_base, VIDEO_BYTES)
    plan.add_first(video, events)
    source = video.files[1]
    harness.cdn.route(
        source.path,
        Route(
            source.body,
            content_type=source.content_type,
            stall_after=STALL_AFTER,
            stall_seconds=stall_seconds,
        ),
    )
    sender = harness.sender(plan, rate=len(plan.events) / 10)
    sender.start()
    return plan, video, source, sender


def video_task(harness: Harness, job_id: str) -> Any:
    """The download task of ``job_id`` (None until the receiver recorded it)."""
    found = rows(
        harness.engine,
        "SELECT id, status, attempts, claimed_by FROM tasks WHERE job_id = :job",
        job=job_id,
    )
    return found[0] if found else None


def downloading(harness: Harness, video: JobTruth) -> Member:
    """Wait until a worker is streaming the video into a temporary file; return that worker."""

    def mid_download() -> bool:
        task = video_task(harness, video.job_id)
        parts = list((harness.storage_root / video.job_id).glob(".*.part"))
        return (
            task is not None
            and task.status == "running"
            and any(p.stat().st_size >= 2 * 1024 * 1024 for p in parts)
        )

    wait_until(mid_download, timeout=30)
    claimed_by = video_task(harness, video.job_id).claimed_by
    member = harness.cluster.member_by_pid(int(claimed_by.rsplit(":", 1)[1]))
    assert member is not None, f"no worker of ours is {claimed_by}"
    return member


def test_a_worker_killed_mid_download_is_reclaimed_and_stores_one_intact_copy(
    make_harness: Callable[..., Harness],
) -> None:
    """SIGKILL the worker streaming a video (two of its three megabytes in a temporary file)
    while the load goes on: after its lease expires another worker captures the video, once,
    intact, and the dead writer's temporary file is gone."""
    harness = make_harness(SHORT_LEASE)
    plan, video, source, sender = load_with_a_stalled_video(harness, stall_seconds=60)
    try:
        victim = downloading(harness, video)
        assert harness.cluster.kill(victim.name) == -9
        # The CDN answers whole from now on; the restarted worker joins the others.
        harness.cdn.route(source.path, Route(source.body, content_type=source.content_type))
        harness.cluster.restart(victim.name)
    finally:
        sender.join()
    report = harness.finish(plan, sender)
    report.assert_ok()
    task = video_task(harness, video.job_id)
    assert task.status == "succeeded"
    assert task.attempts >= 2  # the killed attempt, then the one that stored it
    assert harness.cdn.hits[source.path] >= 2
    (attempt,) = rows(
        harness.engine, "SELECT worker, outcome FROM task_attempts WHERE task_id = :id", id=task.id
    )
    assert attempt.outcome == "succeeded"  # the killed attempt left no record: it never ended
    assert not attempt.worker.endswith(f":{victim.pid}")


def test_a_worker_frozen_past_its_lease_cannot_overwrite_the_newer_attempt(
    make_harness: Callable[..., Harness],
) -> None:
    """SIGSTOP the worker streaming a video until its lease expires and another worker has
    captured the video, then SIGCONT: the late worker finishes its download, but its outcome
    is fenced off (the task stays succeeded by the newer attempt, which alone has an attempt
    record), and the video is stored once, the newer copy intact."""
    harness = make_harness(SHORT_LEASE)
    # The stall outlasts the freeze and the reclaim, then lets the late worker finish.
    plan, video, source, sender = load_with_a_stalled_video(harness, stall_seconds=10)
    try:
        frozen = downloading(harness, video)
        harness.cluster.pause(frozen.name)
        harness.cdn.route(source.path, Route(source.body, content_type=source.content_type))

        def captured_by_another() -> bool:
            task = video_task(harness, video.job_id)
            return bool(task.status == "succeeded" and task.attempts >= 2)

        wait_until(captured_by_another, timeout=30)
        before = rows(harness.engine, "SELECT * FROM assets WHERE job_id = :j", j=video.job_id)
        harness.cluster.resume(frozen.name)

        def fenced_off() -> bool:
            return any(
                e["event"].startswith("task outcome discarded") and e.get("task_id") == task_id
                for e in harness.cluster.log_events(frozen.name)
            )

        task_id = video_task(harness, video.job_id).id
        wait_until(fenced_off, timeout=30)
    finally:
        sender.join()
    report = harness.finish(plan, sender)
    report.assert_ok()
    task = video_task(harness, video.job_id)
    assert task.status == "succeeded"
    attempts = rows(
        harness.engine, "SELECT attempt, worker FROM task_attempts WHERE task_id = :id", id=task.id
    )
    assert [a.attempt for a in attempts] == [task.attempts]
    assert not any(a.worker.endswith(f":{frozen.pid}") for a in attempts)
    after = rows(harness.engine, "SELECT * FROM assets WHERE job_id = :j", j=video.job_id)
    assert after == before  # the late worker's copy did not replace the record
    assert frozen.process.poll() is None  # and it carries on working
    with harness.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM assets")).scalar_one() == sum(
            len(job.files) for job in plan.jobs.values()
        )
