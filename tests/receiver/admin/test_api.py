"""The admin API on SQLite and PostgreSQL: auth, lists and their pages, a job's timeline,
retry and replay, and the 4xx answers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from handlers import PermanentFailure
from receiver.apiframe.events import parse_body
from receiver.db.engine import writing
from receiver.db.models import TaskStatus
from receiver.intake.arrivals import DeliveryOutcome
from receiver.intake.job_state import JobStatus
from receiver.intake.recorder import Arrival, Recorder
from tests.receiver.admin.scenario import (
    AUTH,
    QUICK_WORKER,
    TOKEN,
    build_timeline,
    completed,
    post,
    progress,
    sha256,
    wait_until,
)
from tests.support.database import rows
from tests.support.plugins import Recording
from tests.support.processes import Server, framehook_env

GUARDED = [
    ("GET", "/api/jobs"),
    ("GET", "/api/jobs/some-job"),
    ("GET", "/api/deliveries"),
    ("GET", "/api/tasks"),
    ("POST", "/api/tasks/1/retry"),
    ("POST", "/api/jobs/some-job/replay"),
]


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    """The app with the test admin token, no worker, the download handler subscribed."""
    return make_client(admin_token=TOKEN)


def get(client: TestClient, path: str, **params: Any) -> Any:
    """GET an admin route with the token; assert 200 and return the JSON."""
    response = client.get(path, params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def walk(
    client: TestClient,
    path: str,
    limit: int,
    between: Callable[[], object] = lambda: None,
    **params: Any,
) -> list[dict[str, Any]]:
    """Every item of a list, page by page; ``between`` runs after the first page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = get(client, path, limit=limit, **params, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= limit
        if not items:
            between()
        items += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            return items


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        f"Bearer {TOKEN}x",
        "Bearer",
        f"Basic {TOKEN}",
        f"Token {TOKEN}",
        "Bearer é".encode("latin-1"),
    ],
)
def test_requests_without_the_right_token_get_401(
    api: TestClient, authorization: str | bytes | None
) -> None:
    """No token, a wrong one or another scheme: every admin route answers 401 JSON with a
    Bearer challenge."""
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in GUARDED:
        response = api.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.json()["reason"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_configured_token_is_accepted_with_any_scheme_case(api: TestClient) -> None:
    """FRAMEHOOK_ADMIN_TOKEN as a bearer token opens the API; "bearer" is case-insensitive."""
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = api.get("/api/jobs", headers={"Authorization": f"{scheme} {TOKEN}"})
        assert response.status_code == 200
        assert response.json() == {"items": [], "nextCursor": None}


def test_a_generated_token_is_logged_once_at_start_and_opens_the_api(tmp_path: Path) -> None:
    """Without FRAMEHOOK_ADMIN_TOKEN, `serve` logs one "admin token generated" line with a
    token; that token opens /api, another does not."""
    env = framehook_env(FRAMEHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'fh.db'}")
    server = Server(env, tmp_path, ["--no-worker"])
    try:
        server.wait_ready()
        log = server.log.read_text().splitlines()
        lines = [json.loads(line) for line in log if line.startswith("{")]
        generated = [line for line in lines if line["event"] == "admin token generated"]
        assert len(generated) == 1
        token = generated[0]["bearer"]
        assert len(token) >= 32
        ok = httpx.get(f"{server.url}/api/jobs", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        bad = httpx.get(f"{server.url}/api/jobs", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
    finally:
        server.stop()


def test_a_configured_token_is_the_only_one_accepted(
    make_client: Callable[..., TestClient],
) -> None:
    """With FRAMEHOOK_ADMIN_TOKEN set (spaces trimmed), only that token opens the API."""
    client = make_client(admin_token="  configured-token  ")
    good = {"Authorization": "Bearer configured-token"}
    assert client.get("/api/tasks", headers=good).status_code == 200
    assert client.get("/api/tasks", headers=AUTH).status_code == 401


def test_jobs_are_listed_newest_first_and_filtered(api: TestClient) -> None:
    """status, model, since and until (on createdAt) narrow the list; items mirror Apiframe."""
    assert post(api, progress("job-a", 10, model="midjourney")).status_code == 202
    time.sleep(0.01)
    boundary = datetime.now(UTC)
    time.sleep(0.01)
    assert post(api, completed("job-b", "https://x.test/b.png", model="flux")).status_code == 202
    assert post(api, progress("job-c", 5, model="flux")).status_code == 202

    everything = get(api, "/api/jobs")
    assert [j["id"] for j in everything["items"]] == ["job-c", "job-b", "job-a"]
    assert everything["nextCursor"] is None
    b = everything["items"][1]
    assert set(b) == {
        "id",
        "status",
        "progress",
        "model",
        "result",
        "error",
        "creditCost",
        "test",
        "createdAt",
        "completedAt",
        "updatedAt",
        "files",
        "openTasks",
    }
    assert (b["status"], b["progress"], b["model"], b["creditCost"]) == (
        "COMPLETED",
        100,
        "flux",
        8,
    )
    assert b["result"] == "https://x.test/b.png"

    def ids(**params: Any) -> list[str]:
        return [j["id"] for j in get(api, "/api/jobs", **params)["items"]]

    assert ids(status="COMPLETED") == ["job-b"]
    assert ids(status="PROCESSING") == ["job-c", "job-a"]
    assert ids(model="flux") == ["job-c", "job-b"]
    assert ids(model="flux", status="PROCESSING") == ["job-c"]
    assert ids(since=boundary.isoformat()) == ["job-c", "job-b"]
    assert ids(until=boundary.isoformat()) == ["job-a"]
    naive_utc = boundary.replace(tzinfo=None).isoformat()  # no offset: taken as UTC
    assert ids(until=naive_utc) == ["job-a"]
    assert ids(since="2000-01-01", until="2000-01-02") == []


def test_walking_job_pages_sees_every_job_once_despite_writes_between_pages(
    api: TestClient,
) -> None:
    """limit=3 over 7 jobs: 3 pages, newest first, no duplicate or gap, although a new job
    arrives and an old one moves on between the pages."""
    for n in range(7):
        assert post(api, progress(f"job-{n}", 10)).status_code == 202

    def meanwhile() -> None:
        assert post(api, progress("job-new", 10)).status_code == 202
        assert post(api, progress("job-0", 60)).status_code == 202  # updatedAt moves

    walked = walk(api, "/api/jobs", 3, meanwhile)
    assert [j["id"] for j in walked] == [f"job-{n}" for n in reversed(range(7))]
    assert get(api, "/api/jobs", limit=1)["items"][0]["id"] == "job-new"
    assert [j["id"] for j in walk(api, "/api/jobs", 2)][-1] == "job-0"


def test_jobs_created_in_the_same_instant_page_by_id(api: TestClient, db: Engine) -> None:
    """Jobs committed in one batch share createdAt: the id breaks the tie, nothing is lost."""
    now = datetime.now(UTC)
    bodies = [orjson.dumps(progress(f"tie-{n}", 10)) for n in range(5)]
    arrivals = [Arrival(parse_body(b), b, now, f"r{n}") for n, b in enumerate(bodies)]
    with writing(db) as connection:
        Recorder(db.dialect.name, []).record_many(connection, arrivals)
    walked = walk(api, "/api/jobs", 2)
    assert [j["id"] for j in walked] == [f"tie-{n}" for n in reversed(range(5))]
    assert len({j["createdAt"] for j in walked}) == 1


def test_deliveries_are_filtered_and_paged_by_id(api: TestClient) -> None:
    """outcome, event and jobId filters; pages by id, newest first, stable under inserts."""
    body = orjson.dumps(progress("job-d", 20))
    for payload in (body, body, progress("job-d", 40), completed("job-e", "https://x.test/e")):
        post(api, payload)

    def ids(**params: Any) -> list[int]:
        return [d["id"] for d in get(api, "/api/deliveries", **params)["items"]]

    assert ids() == [4, 3, 2, 1]
    assert ids(outcome="duplicate") == [2]
    assert ids(event="completed") == [4]
    assert ids(jobId="job-d") == [3, 2, 1]
    assert ids(jobId="job-d", outcome="accepted") == [3, 1]
    first = get(api, "/api/deliveries", limit=1)["items"][0]
    assert first["outcome"] == "accepted"
    assert (first["event"], first["jobId"], first["source"]) == ("completed", "job-e", "webhook")
    assert "body" not in first

    walked = walk(api, "/api/deliveries", 3, lambda: post(api, progress("job-f", 1)))
    assert [d["id"] for d in walked] == [4, 3, 2, 1]


def test_tasks_list_dead_ones_by_default(api: TestClient, db: Engine) -> None:
    """/api/tasks shows dead tasks unless status says otherwise; pages by id."""
    client = api
    for n in range(4):
        post(client, completed(f"job-t{n}", "https://x.test/t.png"))
    assert get(client, "/api/tasks") == {"items": [], "nextCursor": None}
    with db.begin() as connection:
        connection.execute(text("UPDATE tasks SET status = 'dead', last_error = 'gone'"))
        connection.execute(text("UPDATE tasks SET status = 'succeeded' WHERE job_id = 'job-t0'"))
    dead = get(client, "/api/tasks")["items"]
    assert [(t["jobId"], t["status"], t["lastError"]) for t in dead] == [
        (f"job-t{n}", "dead", "gone") for n in (3, 2, 1)
    ]
    assert [t["jobId"] for t in get(client, "/api/tasks", status="succeeded")["items"]] == [
        "job-t0"
    ]
    assert len(get(client, "/api/tasks", status="all")["items"]) == 4
    assert [t["jobId"] for t in get(client, "/api/tasks", jobId="job-t2")["items"]] == ["job-t2"]
    assert get(client, "/api/tasks", handler="nobody")["items"] == []
    assert len(walk(client, "/api/tasks", 1, status="all")) == 4


def test_a_job_timeline_shows_every_delivery_task_attempt_and_file(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """A duplicate, a stale and a conflicting delivery, a download that failed once then
    succeeded, and its two files: all in GET /api/jobs/{id}, in order."""
    timeline = build_timeline(make_client)
    job = get(timeline.client, f"/api/jobs/{timeline.job_id}")
    assert (job["status"], job["progress"], job["model"]) == ("COMPLETED", 100, "midjourney")
    assert job["result"] == timeline.sent[2]["result"]

    outcomes = [(d["event"], d["outcome"]) for d in job["deliveries"]]
    assert outcomes == [
        ("progress", "accepted"),
        ("progress", "duplicate"),
        ("completed", "accepted"),
        ("progress", "stale"),
        ("completed", "conflict"),
    ]
    assert [d["body"] for d in job["deliveries"]] == timeline.sent
    assert {d["bodyFormat"] for d in job["deliveries"]} == {"json"}

    (task,) = job["tasks"]
    assert (task["handler"], task["event"], task["status"], task["attempts"]) == (
        "download",
        "completed",
        "succeeded",
        2,
    )
    assert task["deliveryId"] == job["deliveries"][2]["id"]
    first, second = task["history"]
    assert (first["attempt"], first["outcome"]) == (1, "retry")
    assert "503" in first["error"]
    assert (second["attempt"], second["outcome"], second["error"]) == (2, "succeeded", None)
    assert first["startedAt"] <= first["finishedAt"] <= second["startedAt"]

    assert [(a["position"], a["kind"]) for a in job["assets"]] == [(1, "image"), (2, "image")]
    for asset, (url, data) in zip(job["assets"], timeline.files, strict=True):
        assert asset["sourceUrl"] == url
        assert (asset["size"], asset["sha256"]) == (len(data), sha256(data))
        assert asset["contentType"] == "image/png"
        assert asset["storageUri"].startswith("memory://")

    with db.begin() as connection:  # the raw bodies are pruned; the timeline stays
        connection.execute(text("UPDATE deliveries SET body = NULL"))
    pruned = get(timeline.client, f"/api/jobs/{timeline.job_id}")["deliveries"]
    assert {(d["body"], d["bodyFormat"]) for d in pruned} == {(None, None)}


def test_retry_requeues_a_dead_task_and_wakes_the_worker(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """POST /api/tasks/{id}/retry: the dead task is queued with a fresh budget and runs at
    once (the worker polls only every 30 s)."""
    handler = Recording(script={1: PermanentFailure("asset expired")})
    client = make_client(registered=(handler,), admin_token=TOKEN, handlers=[], **QUICK_WORKER)
    post(client, completed("job-r", "https://x.test/r.png"))
    wait_until(lambda: [r.status for r in rows(db, "SELECT status FROM tasks")] == ["dead"])
    (dead,) = get(client, "/api/tasks")["items"]
    assert dead["lastError"] == "permanent failure: asset expired"

    answer = client.post(f"/api/tasks/{dead['id']}/retry", headers=AUTH)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["ok"], body["requeued"], body["task"]["status"]) == (True, 1, "queued")
    # Well under the 30 s poll, with room for a loaded CI machine.
    wait_until(lambda: len(handler.calls) == 2, timeout=15)
    wait_until(lambda: get(client, "/api/tasks", status="succeeded")["items"] != [])
    (task,) = get(client, "/api/jobs/job-r")["tasks"]
    assert [(h["attempt"], h["outcome"]) for h in task["history"]] == [
        (1, "dead"),
        (2, "succeeded"),
    ]


def test_replay_requeues_a_jobs_finished_tasks(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """POST /api/jobs/{id}/replay runs the job's finished tasks again; ?handler= narrows it."""
    handler = Recording()
    client = make_client(registered=(handler,), admin_token=TOKEN, handlers=[], **QUICK_WORKER)
    post(client, completed("job-p", "https://x.test/p.png"))
    wait_until(lambda: len(handler.calls) == 1)
    wait_until(lambda: get(client, "/api/tasks", status="succeeded")["items"] != [])

    other = client.post("/api/jobs/job-p/replay", params={"handler": "other"}, headers=AUTH)
    assert other.status_code == 200
    assert (other.json()["requeued"], other.json()["tasks"]) == (0, [])
    answer = client.post("/api/jobs/job-p/replay", headers=AUTH)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["ok"], body["jobId"], body["handler"], body["requeued"]) == (
        True,
        "job-p",
        None,
        1,
    )
    assert [t["handler"] for t in body["tasks"]] == ["recording"]
    wait_until(lambda: len(handler.calls) == 2, timeout=5)


def test_retrying_a_running_task_is_a_conflict(api: TestClient, db: Engine) -> None:
    """A running task is not touched: 409 task_running."""
    post(api, completed("job-run", "https://x.test/r.png"))
    with db.begin() as connection:
        connection.execute(text("UPDATE tasks SET status = 'running'"))
    (task,) = get(api, "/api/tasks", status="running")["items"]
    answer = api.post(f"/api/tasks/{task['id']}/retry", headers=AUTH)
    assert answer.status_code == 409
    assert answer.json()["reason"] == "task_running"
    assert rows(db, "SELECT status FROM tasks")[0].status == "running"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/jobs/no-such-job"),
        ("POST", "/api/jobs/no-such-job/replay"),
        ("POST", "/api/tasks/999999/retry"),
        ("POST", "/api/tasks/0/retry"),
        ("POST", f"/api/tasks/{2**70}/retry"),
    ],
)
def test_unknown_jobs_and_tasks_are_404(api: TestClient, method: str, path: str) -> None:
    """A job or task that does not exist: 404 JSON, reason not_found."""
    answer = api.request(method, path, headers=AUTH)
    assert answer.status_code == 404
    assert answer.json()["reason"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "params", "reason"),
    [
        ("GET", "/api/jobs", {"limit": "0"}, "bad_limit"),
        ("GET", "/api/jobs", {"limit": "201"}, "bad_limit"),
        ("GET", "/api/jobs", {"limit": "ten"}, "bad_limit"),
        ("GET", "/api/jobs", {"cursor": "not a cursor"}, "bad_cursor"),
        ("GET", "/api/jobs", {"cursor": "WyJqb2JzIl0"}, "bad_cursor"),  # ["jobs"]: no position
        ("GET", "/api/jobs", {"cursor": "WyJkZWxpdmVyaWVzIiwxXQ"}, "bad_cursor"),  # another list
        ("GET", "/api/jobs", {"since": "yesterday"}, "bad_since"),
        ("GET", "/api/jobs", {"until": "2026-13-01"}, "bad_until"),
        ("GET", "/api/jobs", {"since": "9999-12-31T23:59:59-05:00"}, "bad_since"),
        ("GET", "/api/jobs", {"status": "DONE"}, "bad_status"),
        ("GET", "/api/jobs", {"model": "a\x00b"}, "bad_model"),
        ("GET", "/api/deliveries", {"outcome": "lost"}, "bad_outcome"),
        ("GET", "/api/deliveries", {"cursor": "WyJkZWxpdmVyaWVzIiwiMSJd"}, "bad_cursor"),
        ("GET", "/api/deliveries", {"jobId": "\x00"}, "bad_jobId"),
        ("GET", "/api/tasks", {"status": "zombie"}, "bad_status"),
        ("GET", "/api/tasks", {"limit": "-1"}, "bad_limit"),
        ("POST", "/api/tasks/abc/retry", {}, "bad_task_id"),
        ("POST", "/api/jobs/some-job/replay", {"handler": "\x00"}, "bad_handler"),
    ],
)
def test_bad_input_is_a_400_with_a_reason(
    api: TestClient, method: str, path: str, params: dict[str, str], reason: str
) -> None:
    """Unusable parameters and cursors: 400 JSON naming what was wrong, never a 500."""
    answer = api.request(method, path, params=params, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["reason"] == reason


def test_the_openapi_description_covers_every_admin_route(api: TestClient) -> None:
    """GET /api/openapi.json (no token needed): OpenAPI 3.1, every /api route, bearer auth."""
    answer = api.get("/api/openapi.json")
    assert answer.status_code == 200
    spec = answer.json()
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert spec["security"] == [{"bearer": []}]
    described = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    mounted = {
        (method, route.path)
        for route in api.app.routes  # type: ignore[attr-defined]
        if route.path.startswith("/api/") and route.path != "/api/openapi.json"
        for method in route.methods - {"HEAD"}
    }
    assert described == mounted


def test_the_description_names_its_objects_and_vocabularies(api: TestClient) -> None:
    """The generated components keep the API's names, and the status and outcome vocabularies
    are the domain's enums (the dashboard reads JobStatus from here)."""
    schemas = api.get("/api/openapi.json").json()["components"]["schemas"]
    assert {"Job", "JobPage", "JobTimeline", "DeliveryPage", "TaskPage", "Error"} <= set(schemas)
    assert schemas["JobStatus"]["enum"] == [s.value for s in JobStatus]
    assert schemas["TaskStatus"]["enum"] == [s.value for s in TaskStatus]
    assert schemas["DeliveryOutcome"]["enum"] == [o.value for o in DeliveryOutcome]
    job = schemas["Job"]
    assert job["additionalProperties"] is False
    assert set(job["required"]) == set(job["properties"])
    assert job["properties"]["completedAt"] == {
        "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]
    }


def test_an_age_longer_than_the_calendar_reaches_back_to_its_start(api: TestClient) -> None:
    """since=999999999d is in the age grammar the description shows: every finished job, not
    a 400 (schemathesis found the contradiction)."""
    assert post(api, completed("job-old", "https://x.test/o.png")).status_code == 202
    ledger = get(api, "/api/credits", since="999999999d")
    assert ledger["since"].startswith("0001-01-01T00:00:00")
    assert ledger["total"]["completed"] == 1
