"""Reconciliation against the fake Apiframe, on SQLite and PostgreSQL: lost webhooks are
found through the job API and enter the intake as ``poll`` deliveries."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from sqlalchemy import Engine
from starlette.testclient import TestClient

from receiver.apiframe.client import ApiframeClient
from receiver.apiframe.events import parse_body
from receiver.db.engine import create_db_engine, writing
from receiver.dev.fakeapi import Behaviour, FakeApiframe, create_fake_apiframe, fake_of
from receiver.intake.recorder import Arrival, DeliveryOutcome, Recorder, Subscription
from receiver.reconcile.reconciler import Reconciler, Waits, event_body, modality_of
from receiver.retry import RetryPolicy
from receiver.services import reconcile_once
from tests.support.database import rows
from tests.support.processes import framehook_env, free_port, run_cli
from tests.support.waiting import wait_until
from tests.support.webhooks import API_KEY, signed_headers, webhook_body

HOOK = "http://receiver.test/webhooks/apiframe"
NOW_WAITS = Waits(timedelta(0), timedelta(0), timedelta(0))


def recorder(db: Engine) -> Recorder:
    return Recorder(db.dialect.name, [Subscription("download", frozenset({"completed"}))])


@asynccontextmanager
async def fake_api(behaviour: Behaviour) -> AsyncIterator[tuple[ApiframeClient, FakeApiframe]]:
    """The fake (webhooks to nowhere that answers 202) and a client on it."""
    sink = httpx.MockTransport(lambda _request: httpx.Response(202))
    app = create_fake_apiframe(API_KEY, behaviour=behaviour, webhook_transport=sink)
    client = ApiframeClient(
        API_KEY,
        "http://fake.test",
        policy=RetryPolicy(0.01, 0.05, 100),
        transport=httpx.ASGITransport(app),
    )
    async with app.router.lifespan_context(app):
        try:
            yield client, fake_of(app)
        finally:
            await client.aclose()


async def new_job(client: ApiframeClient, route: str, model: str, prompt: str = "x") -> str:
    return await client.create(route, {"model": model, "prompt": prompt, "webhookUrl": HOOK})


DROP_ALL = Behaviour(step_seconds=0.005, drop_probability=1.0)


@pytest.mark.anyio
async def test_jobs_whose_webhooks_never_came_are_discovered_from_the_job_list(
    db: Engine,
) -> None:
    """Every webhook dropped: walking GET /v2/jobs finds the finished jobs, records them as
    poll deliveries, queues their downloads, and a second walk finds nothing new."""
    async with fake_api(DROP_ALL) as (client, fake):
        ids = [
            await new_job(client, "images/generate", "midjourney"),
            await new_job(client, "videos/generate", "kling-2.6"),
            await new_job(client, "images/generate", "flux-2-pro", prompt="please fail"),
        ]
        await fake.settle()
        reconciler = Reconciler(db, recorder(db), client)
        first = await reconciler.discover(datetime.now(UTC) - timedelta(hours=1))
        second = await reconciler.discover(datetime.now(UTC) - timedelta(hours=1))
    assert first.outcomes["updated"] == 3
    assert second.outcomes["updated"] == 0
    assert second.outcomes["listed"] == 3
    statuses = {r.id: r.status for r in rows(db, "SELECT id, status FROM jobs")}
    assert statuses == {ids[0]: "COMPLETED", ids[1]: "COMPLETED", ids[2]: "FAILED"}
    assert {r.source for r in rows(db, "SELECT source FROM deliveries")} == {"poll"}
    tasks = rows(db, "SELECT job_id, handler FROM tasks ORDER BY id")
    assert sorted(t.job_id for t in tasks) == sorted(ids[:2])


@pytest.mark.anyio
async def test_a_silent_unfinished_job_is_looked_up_once_its_wait_is_over(db: Engine) -> None:
    """A job last heard of at 40 % is polled after its wait, moves to COMPLETED, and is not
    polled again while its wait has not passed."""
    async with fake_api(DROP_ALL) as (client, fake):
        job_id = await new_job(client, "images/generate", "midjourney")
        progress = orjson.dumps({"event": "progress", "jobId": job_id, "progress": 40})
        with writing(db) as connection:
            recorder(db).record(
                connection,
                Arrival(parse_body(progress), progress, datetime.now(UTC), "r"),
            )
        await fake.settle()
        waiting = Reconciler(db, recorder(db), client)  # default waits: minutes
        early = await waiting.poll_stale()
        due = await Reconciler(db, recorder(db), client, NOW_WAITS).poll_stale()
        again = await Reconciler(db, recorder(db), client, NOW_WAITS).poll_stale()
    assert sum(early.outcomes.values()) == 0
    assert due.outcomes["updated"] == 1
    assert sum(again.outcomes.values()) == 0  # finished: nothing left to ask
    (job,) = rows(db, "SELECT * FROM jobs")
    assert (job.id, job.status, job.progress, job.polled_at is not None) == (
        job_id,
        "COMPLETED",
        100,
        True,
    )


@pytest.mark.anyio
async def test_a_job_apiframe_does_not_know_is_its_own_outcome_and_not_asked_again_at_once(
    db: Engine,
) -> None:
    """404: counted as not found, the poll time kept, no error, no delivery."""
    unknown = "00000000-0000-4000-8000-000000000000"
    progress = orjson.dumps({"event": "progress", "jobId": unknown, "progress": 10})
    with writing(db) as connection:
        recorder(db).record(
            connection, Arrival(parse_body(progress), progress, datetime.now(UTC), "r")
        )
    async with fake_api(DROP_ALL) as (client, _fake):
        polls = Reconciler(db, recorder(db), client, Waits(*(timedelta(seconds=0.2),) * 3))
        await asyncio.sleep(0.3)
        first = await polls.poll_stale()
        second = await polls.poll_stale()
    assert first.outcomes == {"not_found": 1}
    assert sum(second.outcomes.values()) == 0
    assert len(rows(db, "SELECT id FROM deliveries")) == 1  # only the original progress


@pytest.mark.anyio
async def test_rate_limits_and_outages_of_the_api_are_waited_out(db: Engine) -> None:
    """A 429 with Retry-After and a 503 on the job API delay the lookup; it still lands."""
    behaviour = Behaviour(
        step_seconds=0.005,
        drop_probability=1.0,
        rate_limit_count=1,
        retry_after_seconds=1,
        unavailable_count=1,
    )
    async with fake_api(behaviour) as (client, fake):
        job_id = await new_job(client, "music/generate", "suno")
        await fake.settle()
        report = await Reconciler(db, recorder(db), client).poll([job_id])
        polls = client.polls
    assert report.outcomes["updated"] == 1
    assert polls.get("rate_limited", 0) + polls.get("unavailable", 0) >= 1


@pytest.mark.anyio
async def test_a_webhook_arriving_after_the_poll_is_a_duplicate_not_a_conflict(
    db: Engine,
) -> None:
    """The poll's rebuilt event and Apiframe's own webhook mean the same: one download."""
    async with fake_api(DROP_ALL) as (client, fake):
        job_id = await new_job(client, "images/generate", "gpt-image-2")
        await fake.settle()
        await Reconciler(db, recorder(db), client).poll([job_id])
        resource = await client.job(job_id)
        assert resource is not None
    webhook = orjson.dumps(
        webhook_body(
            "completed",
            jobId=job_id,
            progress=100,
            result=resource["result"],
            model="gpt-image-2",
            creditCost=resource["creditCost"],
            completedAt="2026-11-22T00:00:00.000Z",
        )
    )
    with writing(db) as connection:
        receipt = recorder(db).record(
            connection, Arrival(parse_body(webhook), webhook, datetime.now(UTC), "r")
        )
    assert receipt.outcome is DeliveryOutcome.DUPLICATE
    assert len(rows(db, "SELECT id FROM tasks WHERE job_id = :j", j=job_id)) == 1


def test_job_resources_become_the_webhooks_apiframe_would_send() -> None:
    """COMPLETED, FAILED, CANCELLED and PROCESSING map to their events; QUEUED to none."""
    base = {"id": "j", "model": "m", "createdAt": "2026-11-22T00:00:00Z"}
    done = orjson.loads(
        event_body({**base, "status": "COMPLETED", "result": {"images": []}}) or b""
    )
    assert (done["event"], done["progress"], done["expired"]) == ("completed", 100, False)
    failed = orjson.loads(event_body({**base, "status": "FAILED", "error": "nope"}) or b"")
    assert (failed["event"], failed["error"]) == ("failed", "nope")
    moving = orjson.loads(event_body({**base, "status": "PROCESSING", "progress": 30}) or b"")
    assert (moving["event"], moving["progress"]) == ("progress", 30)
    assert event_body({**base, "status": "QUEUED"}) is None
    cancelled = orjson.loads(event_body({**base, "status": "CANCELLED"}) or b"")
    assert (cancelled["event"], cancelled["jobId"]) == ("cancelled", "j")


def test_models_are_sorted_into_modalities_for_their_waits() -> None:
    """Videos and music wait longer than images; unknown models count as images."""
    assert [modality_of(m) for m in ("kling-2.6", "midjourney-video", "wan-2.2", "veo-3")] == [
        "video"
    ] * 4
    assert [modality_of(m) for m in ("suno", "udio", "lyria-3-pro")] == ["music"] * 3
    assert [modality_of(m) for m in ("midjourney", "gpt-image-2", None, "new-thing")] == [
        "image"
    ] * 4


@contextmanager
def fake_server(behaviour: Behaviour) -> Iterator[str]:
    """The fake under uvicorn in a thread (webhooks dropped by ``behaviour``); its URL."""
    app = create_fake_apiframe(API_KEY, behaviour=behaviour)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_serve_catches_up_at_start_and_sweeps_silent_jobs(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """With webhooks lost: at start the receiver finds the jobs finished while it was away;
    later a job it heard of once is looked up when it goes silent; both reach COMPLETED and
    queue their downloads."""
    with (
        fake_server(DROP_ALL) as api,
        httpx.Client(base_url=api, headers={"X-API-Key": API_KEY}) as fake,
    ):
        body = {"model": "midjourney", "prompt": "x", "webhookUrl": HOOK}
        missed = fake.post("/v2/images/generate", json=body).json()["jobId"]
        # The receiver was up once before: a delivery from then marks where to catch up from.
        earlier = orjson.dumps({"event": "progress", "jobId": "older-job", "progress": 5})
        with writing(db) as connection:
            recorder(db).record(
                connection, Arrival(parse_body(earlier), earlier, datetime.now(UTC), "r")
            )
        wait_until(
            lambda: fake.get(f"/v2/jobs/{missed}").json()["status"] == "COMPLETED", timeout=20
        )
        client = make_client(
            reconcile=True,
            apiframe_url=api,
            reconcile_interval_seconds=0.2,
            reconcile_image_seconds=0.5,
        )
        wait_until(lambda: status(db, missed) == "COMPLETED", timeout=20)

        heard = fake.post("/v2/images/generate", json=body).json()["jobId"]
        news = orjson.dumps({"event": "progress", "jobId": heard, "progress": 20})
        answer = client.post("/webhooks/apiframe", content=news, headers=signed_headers(news))
        assert answer.status_code == 202
        wait_until(lambda: status(db, heard) == "COMPLETED", timeout=20)
    sources = {r.job_id: r.source for r in rows(db, "SELECT job_id, source FROM deliveries")}
    assert sources[missed] == "poll"
    tasks = {r.job_id for r in rows(db, "SELECT job_id FROM tasks WHERE handler = 'download'")}
    assert {missed, heard} <= tasks


def status(db: Engine, job_id: str) -> str | None:
    found = rows(db, "SELECT status FROM jobs WHERE id = :j", j=job_id)
    return found[0].status if found else None


def test_reconcile_once_walks_the_list_and_polls_every_unfinished_job(
    make_settings: Callable[..., Any], db: Engine
) -> None:
    """``framehook reconcile --since``: jobs never heard of and jobs left half-way both end
    in their final state, whatever their waits."""
    with (
        fake_server(DROP_ALL) as api,
        httpx.Client(base_url=api, headers={"X-API-Key": API_KEY}) as fake,
    ):
        body = {"model": "suno", "prompt": "x", "webhookUrl": HOOK}
        never = fake.post("/v2/music/generate", json=body).json()["jobId"]
        halfway = fake.post("/v2/music/generate", json=body | {"prompt": "fail"}).json()["jobId"]
        news = orjson.dumps({"event": "progress", "jobId": halfway, "progress": 50})
        with writing(db) as connection:
            recorder(db).record(connection, Arrival(parse_body(news), news, datetime.now(UTC), "r"))
        wait_until(
            lambda: all(
                fake.get(f"/v2/jobs/{j}").json()["status"] in ("COMPLETED", "FAILED")
                for j in (never, halfway)
            ),
            timeout=20,
        )
        settings = make_settings(apiframe_url=api)
        report = asyncio.run(reconcile_once(settings, timedelta(hours=1)))
    assert (status(db, never), status(db, halfway)) == ("COMPLETED", "FAILED")
    assert report.outcomes["updated"] == 2


def test_the_reconcile_command_prints_what_it_found(tmp_path: Path) -> None:
    """``framehook reconcile --since 1h`` records a job whose webhooks were all lost and
    prints a table; a bad duration and an unreachable API are clear errors."""
    url = f"sqlite:///{tmp_path / 'framehook.db'}"
    env = framehook_env(FRAMEHOOK_DATABASE_URL=url)
    with (
        fake_server(DROP_ALL) as api,
        httpx.Client(base_url=api, headers={"X-API-Key": API_KEY}) as fake,
    ):
        body = {"model": "kling-2.6", "prompt": "x", "webhookUrl": HOOK}
        job_id = fake.post("/v2/videos/generate", json=body).json()["jobId"]
        wait_until(
            lambda: fake.get(f"/v2/jobs/{job_id}").json()["status"] == "COMPLETED", timeout=20
        )
        done = run_cli(["reconcile", "--since", "1h", "--api-url", api], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "updated" in done.stdout
    engine = create_db_engine(url)
    assert status(engine, job_id) == "COMPLETED"
    engine.dispose()
    bad = run_cli(["reconcile", "--since", "soon"], env, tmp_path)
    assert (bad.returncode, "expected a duration" in bad.stderr) == (2, True)
    away = run_cli(["reconcile", "--since", "1h", "--api-url", "http://127.0.0.1:9"], env, tmp_path)
    assert away.returncode == 1
    assert "Apiframe's API" in away.stderr
    assert "Traceback" not in away.stderr
