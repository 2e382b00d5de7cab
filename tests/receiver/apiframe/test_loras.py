"""Recognising LoRA training webhooks, whose payload Apiframe does not document: every shape
framehook accepts, what stays a job or unrecognised, and the dedupe identity."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.apiframe.events import Kind, parse_body
from receiver.apiframe.loras import LoraStatus, lora_event_name
from receiver.reconcile.loras import lora_body

PREFIXED = "lora_8a4d2c1e9b7f4a3d"
UUID = "9e2b6c4a-1f3d-4b8e-a7c5-0d9f8e7a6b5c"

ACCEPTED: list[tuple[str, dict[str, Any], str, LoraStatus]] = [
    (
        "fake's shape (job convention on the LoRA resource)",
        {"event": "completed", "loraId": PREFIXED, "status": "READY", "triggerWord": "TOKPN"},
        PREFIXED,
        LoraStatus.READY,
    ),
    (
        "snake_case id, status from the event",
        {"event": "failed", "lora_id": UUID, "error": "boom"},
        UUID,
        LoraStatus.FAILED,
    ),
    ("the LoRA resource itself", {"id": PREFIXED, "status": "READY"}, PREFIXED, LoraStatus.READY),
    (
        "a UUID with a LoRA-only status",
        {"id": UUID, "status": "TRAINING", "name": "Alex"},
        UUID,
        LoraStatus.TRAINING,
    ),
    (
        "a UUID with a trigger word and a shared status",
        {"id": UUID, "status": "FAILED", "triggerWord": None},
        UUID,
        LoraStatus.FAILED,
    ),
    ("lora.* event name", {"event": "lora.completed", "id": UUID}, UUID, LoraStatus.READY),
    ("lora_* event name", {"event": "lora_failed", "id": UUID}, UUID, LoraStatus.FAILED),
    (
        "type: lora with a generic event",
        {"event": "completed", "type": "lora", "id": UUID},
        UUID,
        LoraStatus.READY,
    ),
    (
        "a lora object",
        {"event": "completed", "lora": {"id": UUID, "status": "ready"}},
        UUID,
        LoraStatus.READY,
    ),
    (
        "a data envelope with a typed event",
        {"id": "evt_1", "type": "lora.failed", "data": {"id": UUID}},
        UUID,
        LoraStatus.FAILED,
    ),
    (
        "a data envelope with loraId",
        {"event": "completed", "data": {"loraId": PREFIXED, "status": "SUCCEEDED"}},
        PREFIXED,
        LoraStatus.READY,
    ),
    ("isReady and no status", {"loraId": UUID, "isReady": True}, UUID, LoraStatus.READY),
    (
        "a terminal event naming only an id",
        {"event": "completed", "id": UUID, "status": "COMPLETED"},
        UUID,
        LoraStatus.READY,
    ),
    ("a failure naming only an id", {"event": "failed", "id": UUID}, UUID, LoraStatus.FAILED),
    ("an id alone, prefixed", {"id": PREFIXED}, PREFIXED, LoraStatus.UNKNOWN),
    ("archived", {"loraId": UUID, "status": "archived"}, UUID, LoraStatus.ARCHIVED),
]


@pytest.mark.parametrize(
    ("body", "lora_id", "status"),
    [case[1:] for case in ACCEPTED],
    ids=[case[0] for case in ACCEPTED],
)
def test_every_accepted_shape_is_recognised_as_a_lora_event(
    body: dict[str, Any], lora_id: str, status: LoraStatus
) -> None:
    """Each documented shape is a LoRA event with its id and status, never malformed."""
    parsed = parse_body(orjson.dumps(body))
    assert parsed.kind is Kind.LORA
    assert parsed.lora is not None
    assert (parsed.lora.id, parsed.lora.status) == (lora_id, status)
    assert parsed.job_id is None
    assert parsed.problem is None


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        # A flux-lora generation names its LoRA but is a job.
        ({"event": "completed", "jobId": UUID, "loraId": PREFIXED, "result": "u"}, Kind.COMPLETED),
        # A job resource (id, a job status) is no LoRA.
        ({"id": UUID, "status": "COMPLETED", "model": "flux-pro"}, Kind.UNRECOGNIZED),
        # FAILED is shared: an id with it alone is ambiguous.
        ({"id": UUID, "status": "FAILED"}, Kind.UNRECOGNIZED),
        ({"event": "lora.completed"}, Kind.UNRECOGNIZED),
        ({"loraId": "", "status": "READY"}, Kind.UNRECOGNIZED),
        ({"loraId": "x" * 201, "status": "READY"}, Kind.UNRECOGNIZED),
        ({"loraId": 42, "status": "READY"}, Kind.UNRECOGNIZED),
        ({"event": "completed", "status": "READY"}, Kind.MALFORMED),
        # A job's webhook that named its id "id" is a visible 400, not a LoRA.
        ({"event": "completed", "id": UUID, "result": {"images": ["u"]}}, Kind.MALFORMED),
        ({"event": "failed", "id": UUID, "model": "kling-v2", "error": "x"}, Kind.MALFORMED),
    ],
)
def test_bodies_that_are_not_lora_events_stay_what_they_were(
    body: dict[str, Any], kind: Kind
) -> None:
    """jobId wins, ambiguous or id-less bodies are not LoRAs, and unusable ids are refused."""
    parsed = parse_body(orjson.dumps(body))
    assert parsed.kind is kind
    assert parsed.lora is None


def test_configured_id_fields_recognise_a_shape_nobody_foresaw() -> None:
    """FRAMEHOOK_LORA_ID_FIELDS: a key named there holds the LoRA id; without it, the body is
    unrecognised (still stored)."""
    body = orjson.dumps({"event": "training.done", "trainingId": UUID, "status": "READY"})
    assert parse_body(body).kind is Kind.UNRECOGNIZED
    parsed = parse_body(body, ["trainingId"])
    assert parsed.kind is Kind.LORA
    assert parsed.lora is not None
    assert (parsed.lora.id, parsed.lora.status) == (UUID, LoraStatus.READY)


def test_details_are_read_and_an_error_only_from_a_failure() -> None:
    """Name, trigger word and completion time are read; error only when FAILED; odd types
    never reject the body."""
    ready = parse_body(
        orjson.dumps(
            {
                "event": "completed",
                "loraId": UUID,
                "status": "READY",
                "name": "Alex",
                "trigger_word": "TOKPN",
                "error": "ignored",
                "completedAt": "2026-04-25T10:42:01.000Z",
            }
        )
    ).lora
    assert ready is not None
    assert (ready.name, ready.trigger_word, ready.error) == ("Alex", "TOKPN", None)
    assert ready.completed_at is not None
    assert ready.completed_at.isoformat() == "2026-04-25T10:42:01+00:00"
    failed = parse_body(
        orjson.dumps({"loraId": UUID, "status": "FAILED", "error": {"code": 7}, "name": 3})
    ).lora
    assert failed is not None
    assert (failed.error, failed.name) == ('{"code":7}', "3")


def test_dedupe_key_is_the_lora_and_its_status() -> None:
    """One key per (LoRA, status): a retry with other incidental fields, and the lookup that
    confirms it, are duplicates of the webhook, not conflicts."""
    webhook = parse_body(orjson.dumps({"event": "completed", "loraId": UUID, "status": "READY"}))
    retried = parse_body(
        orjson.dumps({"event": "completed", "loraId": UUID, "status": "READY", "x": 1})
    )
    lookup = parse_body(
        lora_body(UUID, {"id": UUID, "status": "READY", "triggerWord": "TOKPN", "steps": 1000})
    )
    assert webhook.dedupe_key == f"lora:{UUID}:READY"
    assert webhook.dedupe_key == retried.dedupe_key == lookup.dedupe_key
    assert webhook.fingerprint == retried.fingerprint == lookup.fingerprint
    failed = parse_body(orjson.dumps({"event": "failed", "loraId": UUID}))
    assert failed.dedupe_key == f"lora:{UUID}:FAILED"


def test_a_notice_of_unknown_status_keys_on_its_content() -> None:
    """Without a status, the key is the body's content: a different body is a new notice."""
    one = parse_body(orjson.dumps({"loraId": UUID, "note": "a"}))
    two = parse_body(orjson.dumps({"loraId": UUID, "note": "b"}))
    assert one.dedupe_key is not None
    assert one.dedupe_key.startswith(f"lora:{UUID}:body:")
    assert one.dedupe_key != two.dedupe_key


def test_event_names_for_handlers() -> None:
    """Each known status has a lora.<status> event; an unknown one has none."""
    assert lora_event_name(LoraStatus.READY) == "lora.ready"
    assert lora_event_name(LoraStatus.FAILED) == "lora.failed"
    assert lora_event_name(LoraStatus.ARCHIVED) == "lora.archived"
    assert lora_event_name(LoraStatus.UNKNOWN) is None
    assert lora_event_name("NONSENSE") is None


_KEYS = st.sampled_from(
    [
        "loraId",
        "lora_id",
        "id",
        "event",
        "type",
        "status",
        "lora",
        "data",
        "triggerWord",
        "error",
        "name",
        "completedAt",
        "isReady",
        "jobId",
    ]
)
_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from(
        ["READY", "lora.completed", "completed", "failed", "lora_x", "0001-01-01T00:00:00+01:00"]
    ),
    lambda inner: st.dictionaries(_KEYS, inner, max_size=4) | st.lists(inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_recognition_never_fails_on_odd_bodies(body: dict[str, Any]) -> None:
    """Whatever a signed JSON object holds, parsing classifies it without raising, and a LoRA
    notice always has a usable id and a dedupe key."""
    parsed = parse_body(orjson.dumps(body))
    if parsed.lora is not None:
        assert 0 < len(parsed.lora.id) <= 200
        assert parsed.dedupe_key is not None
        assert parsed.dedupe_key.startswith(f"lora:{parsed.lora.id}:")
