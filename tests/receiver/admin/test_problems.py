"""A task's errors grouped once (``receiver.admin.problems``), as GET /api/jobs/{id} answers
them in each task's ``errorGroups``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema_rs
from starlette.testclient import TestClient

from receiver.admin.openapi import OPENAPI
from receiver.admin.problems import Problem, error_groups, file_positions, problems, task_errors
from receiver.admin.views import AttemptView
from tests.receiver.admin.scenario import AUTH, UNRESOLVABLE, dead_download

T0 = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
RESULT = {
    "images": ["https://cdn.test/1.png", "https://cdn.test/2.png"],
    "gridUrl": "https://cdn.test/g.png",
}
# As the download handler and the worker write them (handlers.download, receiver.queue.worker).
FULL_DISK = (
    "storage failed: local storage /srv/assets: writing {key}: no space left on the device "
    "(ENOSPC): free space there, or set FRAMEHOOK_STORAGE_URL to another place"
)
MIXED = (
    "retry requested: 3 of 3 files not stored: "
    f"image 1 (https://cdn.test/1.png): {FULL_DISK.format(key='job-1/image-1.png')}; "
    f"image 2 (https://cdn.test/2.png): {FULL_DISK.format(key='job-1/image-2.png')}; "
    "grid 1 (https://cdn.test/g.png): HTTP 503 (the CDN may not have it yet)"
)


def attempt(n: int, error: str | None, outcome: str = "retry") -> AttemptView:
    """Attempt ``n`` of a task, ended ``n`` minutes after T0."""
    when = T0 + timedelta(minutes=n)
    return {
        "attempt": n,
        "worker": "w",
        "startedAt": when,
        "finishedAt": when,
        "outcome": outcome,
        "error": error,
    }


def test_a_multi_file_summary_is_one_problem_per_file_at_its_position() -> None:
    """Each file's reason, its URL and storage key as <url> and <file>; a grid's position
    follows the images' (3), as the handler numbers the result's files."""
    found = problems(MIXED + " (attempt 8, giving up)", file_positions(RESULT))
    disk = FULL_DISK.format(key="<file>")
    assert found == [
        Problem(disk, 1),
        Problem(disk, 2),
        Problem("HTTP 503 (the CDN may not have it yet)", 3),
    ]


def test_other_errors_stay_whole_but_for_the_attempt_number() -> None:
    """A handler's own message (URLs included) is kept as written; the worker's "giving up"
    note is dropped, so the last attempt groups with the others. Text that only looks like a
    summary stays one problem."""
    message = "retry requested: https://hooks.test/x answered 502"
    assert problems(message) == [Problem(message)]
    assert problems(message + " (attempt 3, giving up)") == [Problem(message)]
    odd = "retry requested: 2 of 3 files not stored: nothing parsable"
    assert problems(odd) == [Problem(odd)]


def test_groups_count_attempts_and_collect_files_most_recent_first() -> None:
    """An attempt counts once per distinct error however many files it hit; files are the
    union, sorted; the most recently seen group comes first."""
    retried = (  # the next attempt fetches only what is still missing
        "retry requested: 2 of 3 files not stored: "
        f"image 2 (https://cdn.test/2.png): {FULL_DISK.format(key='job-1/image-2.png')}; "
        "grid 1 (https://cdn.test/g.png): HTTP 503 (the CDN may not have it yet)"
    )
    errors = [
        (MIXED, T0 + timedelta(minutes=1)),
        (retried, T0 + timedelta(minutes=2)),
        ("timed out after 300 s", T0 + timedelta(minutes=3)),
    ]
    groups = error_groups(errors, file_positions(RESULT))
    assert [(g["error"][:14], g["count"], g["files"], g["lastSeen"].minute) for g in groups] == [
        ("timed out afte", 1, [], 3),
        ("storage failed", 2, [1, 2], 2),
        ("HTTP 503 (the ", 2, [3], 2),
    ]


def test_a_last_error_no_attempt_holds_is_counted_too() -> None:
    """An expired lease is written on the task alone: it joins the attempts' errors, at the
    task's update time; a last error equal to the newest attempt's is not counted twice."""
    history = [attempt(1, "boom"), attempt(2, "boom")]
    ends = [a["finishedAt"] for a in history]
    assert task_errors(history, "boom", T0) == [("boom", ends[0]), ("boom", ends[1])]
    lease = "lease expired: the worker running it stopped renewing (killed or frozen)"
    assert task_errors(history, lease, T0)[-1] == (lease, T0)
    assert task_errors([attempt(1, None, "succeeded")], None, T0) == []


def _timeline_schema() -> jsonschema_rs.Draft202012Validator:
    """The published JobTimeline schema (formats checked too)."""
    schema = {"$ref": "#/components/schemas/JobTimeline", "components": OPENAPI["components"]}
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)


def test_a_dns_error_on_every_file_and_attempt_is_one_group(
    make_client: Callable[..., TestClient],
) -> None:
    """Five files failing DNS on each of six attempts: thirty recorded errors, one group
    (six attempts, files 1-5), last seen at the last attempt; the answer matches the
    published schema."""
    client = dead_download(make_client, "job-dns", files=5, attempts=6)
    job: dict[str, Any] = client.get("/api/jobs/job-dns", headers=AUTH).json()
    (task,) = job["tasks"]
    assert len(task["history"]) == 6
    assert all(a["error"].count(f"cannot resolve {UNRESOLVABLE}") == 5 for a in task["history"])
    (group,) = task["errorGroups"]
    assert group["error"].startswith(f"ConnectError: cannot resolve {UNRESOLVABLE}")
    assert "https://" not in group["error"]
    assert (group["count"], group["files"]) == (6, [1, 2, 3, 4, 5])
    assert group["lastSeen"] == task["history"][-1]["finishedAt"]
    _timeline_schema().validate(job)
