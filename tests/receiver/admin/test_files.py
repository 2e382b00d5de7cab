"""A job's files, named by its result and stored, on SQLite and PostgreSQL: in ``/api/jobs``,
``/api/jobs/{id}`` and the live feed, counted by the statement that reads the jobs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from starlette.testclient import TestClient

from receiver.admin.feed import Feed
from receiver.admin.queries import JobFilter, list_jobs
from receiver.db.engine import writing
from tests.receiver.admin.scenario import AUTH, TOKEN, build_timeline, completed, post, progress

# Hosts outside FRAMEHOOK_ASSET_HOSTS: the download handler refuses them without a request.
NOWHERE = ["https://x.test/1.png", "https://x.test/2.png"]


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    """The app with the test admin token, no worker."""
    return make_client(admin_token=TOKEN)


def get(client: TestClient, path: str) -> Any:
    response = client.get(path, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def failed(job_id: str) -> dict[str, Any]:
    return {"event": "failed", "jobId": job_id, "status": "FAILED", "error": "policy"}


def store(db: Engine, asset_id: int, job_id: str, position: int) -> None:
    """Record a stored file as the download handler's asset log does, with a chosen id."""
    with writing(db) as connection:
        connection.execute(
            text(
                "INSERT INTO assets (id, job_id, handler, position, kind, source_url, key, "
                "storage_uri, size, content_type, sha256, stored_at) VALUES (:id, :job, "
                "'download', :position, 'image', 'https://x.test/a.png', :key, :uri, 10, "
                "'image/png', :sha, :at)"
            ),
            {
                "id": asset_id,
                "job": job_id,
                "position": position,
                "key": f"{job_id}/image-{position}.png",
                "uri": f"memory://{job_id}/image-{position}.png",
                "sha": "a" * 64,
                "at": datetime.now(UTC),
            },
        )


def files_of(changes: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {data["id"]: data["files"] for name, data in changes if name == "job"}


def test_each_job_says_how_many_files_its_result_names_and_how_many_are_stored(
    make_client: Callable[..., TestClient],
) -> None:
    """All stored, none stored, none named (a failed job) and not known yet (still running):
    the list and each job's page agree, and ``stored`` is the job's assets."""
    timeline = build_timeline(make_client)  # two images, stored by the download handler
    client = timeline.client
    assert post(client, completed("job-missing", {"images": NOWHERE})).status_code == 202
    assert post(client, failed("job-failed")).status_code == 202
    assert post(client, progress("job-running", 40)).status_code == 202

    listed = {job["id"]: job["files"] for job in get(client, "/api/jobs")["items"]}
    assert listed == {
        timeline.job_id: {"expected": 2, "stored": 2},
        "job-missing": {"expected": 2, "stored": 0},
        "job-failed": {"expected": 0, "stored": 0},
        "job-running": {"expected": None, "stored": 0},
    }
    for job_id, files in listed.items():
        job = get(client, f"/api/jobs/{job_id}")
        assert job["files"] == files
        assert len(job["assets"]) == files["stored"]


def test_a_page_of_jobs_counts_their_files_in_the_one_statement_that_reads_it(
    api: TestClient, db: Engine
) -> None:
    """Listing 30 jobs runs one SQL statement, however many jobs have files: no query per job."""
    for n in range(30):
        post(api, completed(f"job-{n:02}", {"images": NOWHERE}))
    store(db, 1, "job-03", 1)
    store(db, 2, "job-03", 2)
    store(db, 3, "job-07", 1)
    statements: list[str] = []

    def record(_connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's transactions start this way too
            statements.append(statement)

    with db.connect() as connection:
        event.listen(connection, "before_cursor_execute", record)
        page = list_jobs(connection, JobFilter(), 50)
    assert [s.split()[0] for s in statements] == ["SELECT"]
    stored = {job["id"]: job["files"]["stored"] for job in page.items}
    assert (stored["job-03"], stored["job-07"], stored["job-00"]) == (2, 1, 0)
    assert {job["files"]["expected"] for job in page.items} == {2}


def test_a_stored_file_sends_its_jobs_new_count_on_the_feed_once(
    api: TestClient, db: Engine
) -> None:
    """A stored file changes no job row, yet the feed sends the job again with its new count,
    once; a file whose transaction commits after one with a higher id is not missed."""
    post(api, completed("job-a", {"images": NOWHERE}))
    post(api, completed("job-b", {"images": NOWHERE}))
    feed = Feed()

    def poll() -> dict[str, Any]:
        with db.connect() as connection, connection.begin():
            return files_of(feed.poll(connection))

    assert poll() == {
        "job-a": {"expected": 2, "stored": 0},
        "job-b": {"expected": 2, "stored": 0},
    }
    store(db, 10, "job-a", 1)
    assert poll() == {"job-a": {"expected": 2, "stored": 1}}
    assert poll() == {}
    # Id 5 was handed out before id 10 but committed after it was seen.
    store(db, 5, "job-b", 1)
    assert poll() == {"job-b": {"expected": 2, "stored": 1}}
    assert poll() == {}
