"""The admin API reads the dashboard relies on, on SQLite and PostgreSQL: jobs found by the
start of their id, each job's open tasks (capturing or not), and one delivery with its body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.receiver.admin.scenario import AUTH, TOKEN, completed, post, progress

UUID = "6f1c2a9e-3b7d-4e21-9a55-0c8d2f4b7a10"


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    """The app with the download handler subscribed and no worker: tasks stay queued."""
    return make_client(admin_token=TOKEN, handlers=["download"], run_worker=False)


def ids(client: TestClient, **params: Any) -> list[str]:
    answer = client.get("/api/jobs", params=params, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return [job["id"] for job in answer.json()["items"]]


def test_jobs_are_found_by_the_start_of_their_id(api: TestClient) -> None:
    """``jobId`` keeps the jobs whose id starts with it: a whole id, its first characters
    (spaces around ignored), never a job it only contains; case-sensitive; the LIKE
    wildcards are plain characters."""
    for job_id in (UUID, "6f1c-other", "job-6f1c", "JOB_%", "job-a"):
        assert post(api, progress(job_id, 10)).status_code == 202
    assert ids(api, jobId=UUID) == [UUID]
    assert ids(api, jobId=f"  {UUID[:8]} ") == [UUID]
    assert sorted(ids(api, jobId="6f1c")) == ["6f1c-other", UUID]
    assert ids(api, jobId="6F1C") == []
    assert ids(api, jobId="JOB_") == ["JOB_%"]
    assert ids(api, jobId="job_") == []
    assert ids(api, jobId="%") == []
    assert len(ids(api, jobId="")) == 5
    assert ids(api, jobId="job-", status="PROCESSING", limit=1) == ["job-a"]


def test_a_job_counts_its_open_tasks(api: TestClient) -> None:
    """A completed job whose download is still queued has one open task (a shortfall of files
    is a capture in progress); a job with no task has none."""
    post(api, completed(UUID, {"images": ["https://cdn.test/a.png"]}))
    post(api, progress("job-b", 10))
    jobs = {j["id"]: j for j in api.get("/api/jobs", headers=AUTH).json()["items"]}
    assert jobs[UUID]["openTasks"] == 1
    assert jobs[UUID]["files"] == {"expected": 1, "stored": 0}
    assert jobs["job-b"]["openTasks"] == 0
    assert api.get(f"/api/jobs/{UUID}", headers=AUTH).json()["openTasks"] == 1


def test_one_delivery_is_answered_with_its_body(api: TestClient) -> None:
    """``GET /api/deliveries/{id}`` answers the listed delivery plus its raw body: JSON as
    JSON, anything else as text; an unknown id is a 404."""
    body = {"event": "account.ping", "deep": {"list": [1, 2]}}
    post(api, body)
    post(api, b"not json at all")
    listed = api.get("/api/deliveries", headers=AUTH).json()["items"]
    text, ping = (api.get(f"/api/deliveries/{d['id']}", headers=AUTH) for d in listed)
    assert ping.json() == {**listed[1], "body": body, "bodyFormat": "json"}
    assert ping.json()["outcome"] == "unrecognized"
    assert text.json()["body"] == "not json at all"
    assert text.json()["bodyFormat"] == "text"
    missing = api.get("/api/deliveries/9999", headers=AUTH)
    assert (missing.status_code, missing.json()["reason"]) == (404, "not_found")
