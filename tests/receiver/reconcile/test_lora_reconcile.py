"""LoRA trainings and reconciliation against the fake Apiframe, on SQLite and PostgreSQL: the
lookup confirms what a webhook claimed, finds what a silent training became, and the whole path
(POST /v2/loras → webhook → lookup → handler, then a flux-lora job) works end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from handlers import LoraEvent
from receiver import Settings, create_app
from receiver.apiframe.client import ApiframeClient
from receiver.apiframe.events import parse_body
from receiver.credits import credit_totals
from receiver.db.engine import writing
from receiver.dev.fakeapi import Behaviour, FakeApiframe, create_fake_apiframe, fake_of
from receiver.intake.recorder import Arrival, Recorder, Subscription
from receiver.reconcile.loras import confirm
from receiver.reconcile.reconciler import Reconciler
from receiver.retry import RetryPolicy
from receiver.services import reconcile_once
from tests.receiver.reconcile.test_reconcile import fake_server
from tests.support.database import rows
from tests.support.plugins import lora_watcher
from tests.support.waiting import wait_until
from tests.support.webhooks import API_KEY, signed_headers

HOOK = "http://receiver.test/webhooks/apiframe"
QUIET = Behaviour(step_seconds=0.005, lora_step_seconds=0.005, drop_probability=1.0)
TRAINING = {"name": "Alex", "subjectKind": "style", "images": ["x"] * 15, "webhookUrl": HOOK}


def recorder(db: Engine) -> Recorder:
    return Recorder(db.dialect.name, [Subscription("watch", frozenset({"lora.ready"}))])


def record(db: Engine, body: dict[str, Any]) -> None:
    """Record ``body`` as a webhook that arrived now."""
    raw = orjson.dumps(body)
    with writing(db) as connection:
        recorder(db).record(connection, Arrival(parse_body(raw), raw, datetime.now(UTC), "r"))


@asynccontextmanager
async def fake_api(
    behaviour: Behaviour, webhooks: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[tuple[ApiframeClient, httpx.AsyncClient, FakeApiframe]]:
    """The fake, framehook's API client on it, and a plain client sending the API key."""
    sink = webhooks or httpx.MockTransport(lambda _request: httpx.Response(202))
    app = create_fake_apiframe(API_KEY, behaviour=behaviour, webhook_transport=sink)
    transport = httpx.ASGITransport(app)
    api = ApiframeClient(
        API_KEY, "http://fake.test", policy=RetryPolicy(0.01, 0.05, 100), transport=transport
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport, base_url="http://fake.test", headers={"X-API-Key": API_KEY}
        ) as plain,
    ):
        try:
            yield api, plain, fake_of(app)
        finally:
            await api.aclose()


async def new_lora(plain: httpx.AsyncClient, **fields: Any) -> str:
    answer = await plain.post("/v2/loras", json={**TRAINING, **fields})
    assert answer.status_code == 202, answer.text
    lora_id: str = answer.json()["id"]
    return lora_id


async def until(check: Callable[[], bool]) -> None:
    """Poll ``check`` every 10 ms until it holds; fail after 15 seconds."""
    for _ in range(1500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def lora_row(db: Engine, lora_id: str) -> Any:
    (row,) = rows(db, "SELECT * FROM loras WHERE id = :i", i=lora_id)
    return row


@pytest.mark.anyio
async def test_a_lora_known_only_from_a_webhook_is_looked_up_and_confirmed(db: Engine) -> None:
    """A READY webhook without a trigger word: the next sweep asks GET /v2/loras/:id, the
    answer is a duplicate of the webhook (no second lora.ready), and its details (trigger word)
    are stored with the lookup's time; a later sweep asks nothing."""
    async with fake_api(QUIET) as (api, plain, fake):
        lora_id = await new_lora(plain)
        await fake.settle()
        record(db, {"event": "completed", "loraId": lora_id})
        sweeps = Reconciler(db, recorder(db), api)
        first, second = await sweeps.poll_stale(), await sweeps.poll_stale()
    assert first.outcomes == {"lora_duplicate": 1}
    assert sum(second.outcomes.values()) == 0
    row = lora_row(db, lora_id)
    assert (row.status, row.name, len(row.trigger_word)) == ("READY", "Alex", 5)
    assert row.polled_at is not None
    assert row.completed_at is not None
    sources = [r.source for r in rows(db, "SELECT source FROM deliveries ORDER BY id")]
    assert sources == ["webhook", "poll"]
    assert len(rows(db, "SELECT id FROM tasks WHERE event = 'lora.ready'")) == 1


@pytest.mark.anyio
async def test_an_unfinished_training_is_looked_up_once_its_expected_time_is_over(
    db: Engine,
) -> None:
    """Last heard of TRAINING, and confirmed so by a lookup: not asked again while a training
    may still be running; past the LoRA wait it is looked up, becomes READY and queues
    lora.ready."""
    async with fake_api(QUIET) as (api, plain, fake):
        lora_id = await new_lora(plain)
        await fake.settle()  # READY at Apiframe; framehook heard only of TRAINING
        record(db, {"loraId": lora_id, "status": "TRAINING"})
        confirm(db, lora_id, None, datetime.now(UTC))  # as a lookup back then would have
        sweeps = Reconciler(db, recorder(db), api)  # default waits: 25 minutes for a LoRA
        early = await sweeps.poll_loras()
        late = await sweeps.poll_loras(datetime.now(UTC) + timedelta(minutes=26))
    assert sum(early.outcomes.values()) == 0
    assert late.outcomes == {"lora_updated": 1}
    assert lora_row(db, lora_id).status == "READY"
    (task,) = rows(db, "SELECT event, job_id FROM tasks")
    assert (task.event, task.job_id) == ("lora.ready", None)


@pytest.mark.anyio
async def test_a_lora_apiframe_does_not_know_or_refuses_is_not_asked_again_at_once(
    db: Engine,
) -> None:
    """404 and 400 (an id Apiframe refuses) are outcomes of their own; the lookup time is kept
    so the next sweep does not ask again; nothing is recorded."""
    record(db, {"event": "completed", "loraId": "9e2b6c4a-1f3d-4b8e-a7c5-0d9f8e7a6b5c"})
    record(db, {"event": "lora.failed", "id": "not a lora id"})
    async with fake_api(QUIET) as (api, _plain, _fake):
        sweeps = Reconciler(db, recorder(db), api)
        first, second = await sweeps.poll_stale(), await sweeps.poll_stale()
    assert first.outcomes == {"lora_not_found": 1, "lora_refused": 1}
    assert sum(second.outcomes.values()) == 0
    assert all(r.polled_at is not None for r in rows(db, "SELECT polled_at FROM loras"))
    assert len(rows(db, "SELECT id FROM deliveries")) == 2


@pytest.mark.anyio
async def test_end_to_end_train_webhook_lookup_handler_then_generate(
    make_settings: Callable[..., Settings], db: Engine
) -> None:
    """POST /v2/loras → the fake's terminal webhook → framehook (202) → lora.ready handler;
    the lookup confirms it; then a flux-lora generation is an ordinary image job whose
    completion reaches the handler and whose credits are counted."""
    watcher = lora_watcher()
    receiver = create_app(
        make_settings(handlers=[], run_worker=True, poll_seconds=0.05), handlers=[watcher]
    )
    fast = Behaviour(step_seconds=0.005, lora_step_seconds=0.005, webhook_backoff_seconds=0.01)
    async with (
        receiver.router.lifespan_context(receiver),
        fake_api(fast, httpx.ASGITransport(receiver)) as (api, plain, fake),
    ):
        lora_id = await new_lora(plain)
        await fake.settle()
        await until(lambda: len(watcher.seen) == 1)
        lookup = Recorder(db.dialect.name, [Subscription(watcher.name, watcher.events)])
        confirmed = await Reconciler(db, lookup, api).poll_loras()
        job = await plain.post(
            "/v2/images/generate",
            json={
                "model": "flux-lora",
                "prompt": "a portrait",
                "fluxLoraParams": {"loraId": lora_id, "num_outputs": 3},
                "webhookUrl": HOOK,
            },
        )
        await fake.settle()
        await until(lambda: len(watcher.seen) == 2)
        codes = [d.status_code for d in fake.deliveries]
    job_id = job.json()["jobId"]
    assert set(codes) == {202}
    trained, generated = watcher.seen
    assert isinstance(trained, LoraEvent)
    assert (trained.event, trained.job_id, trained.lora.status) == ("lora.ready", lora_id, "READY")
    assert trained.lora.trigger_word is not None
    assert confirmed.outcomes == {"lora_duplicate": 1}
    assert lora_row(db, lora_id).polled_at is not None
    assert not isinstance(generated, LoraEvent)
    assert (generated.event, generated.job_id, generated.model) == (
        "completed",
        job_id,
        "flux-lora",
    )
    assert len(generated.job.result["images"]) == 3
    with db.connect() as connection:
        (line,) = credit_totals(connection).rows
    assert (line.key, line.completed, line.credits) == ("flux-lora", 1, 6)


def test_serve_looks_lora_webhooks_up_in_its_reconciliation_sweeps(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """With reconciliation on, a LoRA webhook posted to the running receiver is confirmed by
    the background sweep: the lookup's trigger word lands on the row."""
    with (
        fake_server(QUIET) as url,
        httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}) as plain,
    ):
        lora_id = plain.post("/v2/loras", json=TRAINING).json()["id"]
        wait_until(lambda: plain.get(f"/v2/loras/{lora_id}").json()["status"] == "READY")
        client = make_client(reconcile=True, apiframe_url=url, reconcile_interval_seconds=0.2)
        body = orjson.dumps({"event": "completed", "loraId": lora_id, "status": "READY"})
        answer = client.post("/webhooks/apiframe", content=body, headers=signed_headers(body))
        assert (answer.status_code, answer.json()["loraId"]) == (202, lora_id)
        wait_until(lambda: lora_row(db, lora_id).trigger_word is not None, timeout=20)
    assert lora_row(db, lora_id).polled_at is not None


def test_framehook_reconcile_looks_every_unfinished_training_up_now(
    db: Engine, database_url: str
) -> None:
    """``framehook reconcile`` (``reconcile_once``) does not wait out a training's expected
    time: a LoRA last heard of TRAINING a moment ago is looked up, and found READY."""
    with fake_server(QUIET) as url:
        created = httpx.post(
            f"{url}/v2/loras", json=TRAINING, headers={"X-API-Key": API_KEY}, timeout=10
        )
        assert created.status_code == 202, created.text
        lora_id = created.json()["id"]
        wait_until(
            lambda: (
                httpx.get(f"{url}/v2/loras/{lora_id}", headers={"X-API-Key": API_KEY})
                .json()
                .get("status")
                == "READY"
            )
        )
        record(db, {"loraId": lora_id, "status": "TRAINING"})
        confirm(db, lora_id, None, datetime.now(UTC))
        settings = Settings(
            api_key=API_KEY, database_url=database_url, apiframe_url=url, handlers=[]
        )
        report = asyncio.run(reconcile_once(settings, since=None))
    assert report.outcomes.get("lora_updated") == 1
    assert lora_row(db, lora_id).status == "READY"
