"""LoRA training webhooks through POST /webhooks/apiframe, on SQLite and PostgreSQL: stored raw,
recognised, deduped by (LoRA, status), moved forward only, and handed to subscribed handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from handlers import LoraEvent
from tests.support.database import rows
from tests.support.plugins import lora_watcher
from tests.support.waiting import wait_until
from tests.support.webhooks import signed_headers

URL = "/webhooks/apiframe"
PREFIXED = "lora_8a4d2c1e9b7f4a3d"
UUID = "9e2b6c4a-1f3d-4b8e-a7c5-0d9f8e7a6b5c"


def post(client: TestClient, body: dict[str, Any], event: str | None = None) -> tuple[int, Any]:
    raw = orjson.dumps(body)
    response = client.post(URL, content=raw, headers=signed_headers(raw, event=event))
    return response.status_code, response.json()


def ready(lora_id: str = PREFIXED, **extra: Any) -> dict[str, Any]:
    """The webhook in the shape the fake Apiframe sends."""
    return {
        "event": "completed",
        "loraId": lora_id,
        "status": "READY",
        "name": "Alex",
        "triggerWord": "TOKPN",
        "error": None,
        **extra,
    }


SHAPES = [
    ready(),
    {"id": PREFIXED, "status": "READY", "name": "Alex", "triggerWord": "TOKPN"},
    {"event": "lora.completed", "id": UUID},
    {"event": "completed", "lora": {"id": UUID, "status": "READY"}},
    {"id": "evt_1", "type": "lora.completed", "data": {"id": UUID, "status": "READY"}},
    {"id": UUID, "status": "READY"},
]


@pytest.mark.parametrize("body", SHAPES, ids=[str(i) for i in range(len(SHAPES))])
def test_each_accepted_shape_is_stored_raw_and_recognised(
    client: TestClient, db: Engine, body: dict[str, Any]
) -> None:
    """202 accepted with the LoRA's id; the raw body is kept on a delivery naming the LoRA;
    the LoRA row is READY; no job row appears."""
    status, answer = post(client, body, event="completed")
    assert status == 202
    lora_id = answer["loraId"]
    assert lora_id in (PREFIXED, UUID)
    assert (answer["outcome"], answer["jobId"]) == ("accepted", None)
    (delivery,) = rows(db, "SELECT job_id, lora_id, outcome, body, dedupe_key FROM deliveries")
    assert (delivery.job_id, delivery.lora_id, delivery.outcome) == (None, lora_id, "accepted")
    assert bytes(delivery.body) == orjson.dumps(body)
    assert delivery.dedupe_key == f"lora:{lora_id}:READY"
    (lora,) = rows(db, "SELECT id, status, polled_at FROM loras")
    assert (lora.id, lora.status, lora.polled_at) == (lora_id, "READY", None)
    assert rows(db, "SELECT id FROM jobs") == []


def test_a_repeated_lora_webhook_is_a_duplicate(client: TestClient, db: Engine) -> None:
    """The same event again, or with other incidental fields: 200 duplicate, one ledger key."""
    assert post(client, ready())[0] == 202
    status, answer = post(client, ready())
    assert (status, answer["outcome"]) == (200, "duplicate")
    status, answer = post(client, ready(extra="field"))
    assert (status, answer["outcome"]) == (200, "duplicate")
    assert len(rows(db, "SELECT key FROM ledger")) == 1
    assert len(rows(db, "SELECT id FROM deliveries")) == 3


def test_lora_state_moves_forward_only_and_the_first_ending_stands(
    client: TestClient, db: Engine
) -> None:
    """PENDING after READY is stale; FAILED after READY is a conflict (200); READY stays."""
    post(client, {"loraId": UUID, "status": "TRAINING"})
    assert post(client, ready(UUID))[1]["outcome"] == "accepted"
    assert post(client, {"loraId": UUID, "status": "PENDING"})[1]["outcome"] == "stale"
    status, answer = post(client, {"event": "failed", "loraId": UUID, "error": "boom"})
    assert (status, answer["outcome"]) == (200, "conflict")
    (lora,) = rows(db, "SELECT status, trigger_word, error FROM loras")
    assert (lora.status, lora.trigger_word, lora.error) == ("READY", "TOKPN", None)


def test_a_notice_of_unknown_status_is_kept_and_queues_nothing(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """A LoRA webhook that says nothing about its status: stored, the LoRA known as UNKNOWN
    (reconciliation will look it up), no handler task."""
    client = make_client(registered=(lora_watcher(),))
    status, answer = post(client, {"loraId": PREFIXED})
    assert (status, answer["outcome"]) == (202, "accepted")
    (lora,) = rows(db, "SELECT status FROM loras")
    assert lora.status == "UNKNOWN"
    assert rows(db, "SELECT id FROM tasks") == []


def test_only_handlers_that_subscribe_get_lora_tasks(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """lora.ready queues a task for the subscribed handler (its models filter does not apply
    to LoRA events), none for the built-in download handler; the task names no job."""
    client = make_client(registered=(lora_watcher(),))
    _, answer = post(client, ready())
    assert answer["outcome"] == "accepted"
    (task,) = rows(db, "SELECT handler, event, job_id, delivery_id, status FROM tasks")
    assert (task.handler, task.event, task.job_id, task.status) == (
        "lora-watch",
        "lora.ready",
        None,
        "queued",
    )
    assert task.delivery_id == answer["deliveryId"]


def test_a_handler_receives_the_lora_event_with_the_lora_as_it_stands(
    make_client: Callable[..., TestClient],
) -> None:
    """The worker hands the handler a LoraEvent: lora.ready, the LoRA's id, the raw payload,
    and the LoRA's recorded state (trigger word included)."""
    handler = lora_watcher()
    client = make_client(registered=(handler,), handlers=[], run_worker=True, poll_seconds=0.1)
    post(client, ready())
    post(client, {"event": "failed", "loraId": UUID, "error": "not enough faces"})
    wait_until(lambda: len(handler.seen) == 2)
    by_id = {e.job_id: e for e in handler.seen}
    done = by_id[PREFIXED]
    assert isinstance(done, LoraEvent)
    assert (done.event, done.source, done.payload) == ("lora.ready", "webhook", ready())
    assert (done.lora.status, done.lora.trigger_word, done.lora.name) == ("READY", "TOKPN", "Alex")
    assert done.lora.is_ready
    assert (done.job.status, done.job.progress, done.model) == ("READY", 100, None)
    failed = by_id[UUID]
    assert isinstance(failed, LoraEvent)
    assert (failed.event, failed.lora.status, failed.lora.error) == (
        "lora.failed",
        "FAILED",
        "not enough faces",
    )


def test_configured_lora_id_fields_are_recognised_by_the_receiver(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """With FRAMEHOOK_LORA_ID_FIELDS=trainingId, a body holding its LoRA id there is a LoRA
    event; the tasks' event name comes from the notice."""
    client = make_client(registered=(lora_watcher(),), lora_id_fields="trainingId")
    status, answer = post(client, {"event": "done", "trainingId": UUID, "status": "FAILED"})
    assert (status, answer["loraId"], answer["outcome"]) == (202, UUID, "accepted")
    (task,) = rows(db, "SELECT event FROM tasks")
    assert task.event == "lora.failed"
