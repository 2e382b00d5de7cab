"""Classifying verified bodies: tolerant parsing, both result shapes, dedupe identity."""

from __future__ import annotations

import orjson
import pytest

from receiver.apiframe.events import CompletedEvent, FailedEvent, Kind, ProgressEvent, parse_body
from tests.support.webhooks import sample, sample_names


@pytest.mark.parametrize("name", sample_names())
def test_every_sample_parses_without_being_malformed(name: str) -> None:
    """Every shipped Apiframe body is classified, never rejected as malformed."""
    parsed = parse_body(sample(name))
    assert parsed.kind is not Kind.MALFORMED
    assert parsed.dedupe_key is not None


def test_result_string_and_object_shapes_are_both_kept() -> None:
    """The legacy string result and the modality object are both carried as received."""
    legacy = parse_body(sample("completed-legacy-string-result")).event
    current = parse_body(sample("completed-midjourney")).event
    assert isinstance(legacy, CompletedEvent)
    assert isinstance(current, CompletedEvent)
    assert legacy.result == "https://cdn.apiframe.ai/results/a1b2c3d4.png"
    assert len(current.result["images"]) == 4
    assert current.result["gridUrl"].endswith("-grid.png")
    assert current.credit_cost == 16


def test_unknown_fields_are_kept_at_every_level() -> None:
    """Extra top-level and nested fields survive parsing."""
    event = parse_body(sample("completed-extra-fields")).event
    assert isinstance(event, CompletedEvent)
    assert event.model_extra == {
        "input": {"prompt": "a lighthouse"},
        "teamId": "c0ffee00-0000-4000-8000-000000000000",
    }
    assert event.result["seed"] == 1234


# A future event type: an ``event`` framehook does not know, on a job.
UNKNOWN_EVENT = {"event": "expired", "jobId": "7c8d9eaf-0112-4d23-e4f5-a6b7c8d9e0f1"}


def test_dedupe_keys_follow_meaning() -> None:
    """Terminal events key on (job, event), progress on (job, value), others on content."""
    progress = parse_body(sample("progress-midjourney-45"))
    completed = parse_body(sample("completed-midjourney"))
    failed = parse_body(sample("failed-content-policy"))
    cancelled = parse_body(sample("unknown-event-future"))
    unknown = parse_body(orjson.dumps(UNKNOWN_EVENT))
    assert progress.dedupe_key == "job:6f1c2a9e-3b7d-4e21-9a55-0c8d2f4b7a10:progress:45"
    assert completed.dedupe_key == "job:6f1c2a9e-3b7d-4e21-9a55-0c8d2f4b7a10:completed"
    assert failed.dedupe_key == "job:6b7c8d9e-af01-4c12-d3e4-f5a6b7c8d9e0:failed"
    assert cancelled.dedupe_key == "job:7c8d9eaf-0112-4d23-e4f5-a6b7c8d9e0f1:cancelled"
    assert unknown.kind is Kind.UNRECOGNIZED
    assert unknown.dedupe_key == f"body:{unknown.fingerprint}"
    assert unknown.job_id == "7c8d9eaf-0112-4d23-e4f5-a6b7c8d9e0f1"


def test_fingerprint_ignores_serialisation_but_not_content() -> None:
    """Key order and whitespace do not change the fingerprint; a changed result does."""
    body = orjson.loads(sample("completed-suno"))
    compact = orjson.dumps(body)
    spaced = orjson.dumps(dict(reversed(list(body.items()))), option=orjson.OPT_INDENT_2)
    changed = orjson.dumps({**body, "result": {"tracks": []}})
    assert parse_body(compact).fingerprint == parse_body(spaced).fingerprint
    assert parse_body(changed).fingerprint != parse_body(compact).fingerprint


def test_a_job_event_is_fingerprinted_by_what_it_says_not_its_incidental_fields() -> None:
    """The completed event rebuilt from the job API (other timestamp, extra fields, no
    status) is the same event; the unknown event's whole body still counts."""
    body = orjson.loads(sample("completed-suno"))
    polled = {k: body[k] for k in ("event", "jobId", "result", "model")}
    polled |= {"completedAt": "2026-11-20T10:07:01Z", "expired": False}
    assert (
        parse_body(orjson.dumps(polled)).fingerprint
        == parse_body(sample("completed-suno")).fingerprint
    )
    assert parse_body(orjson.dumps({**UNKNOWN_EVENT, "x": 1})).fingerprint != (
        parse_body(orjson.dumps(UNKNOWN_EVENT)).fingerprint
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not_json"),
        (b"", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"completed"', "not_an_object"),
        (b'{"event": "completed"}', "invalid_event"),
        (b'{"event": "progress", "jobId": ""}', "invalid_event"),
        (b'{"event": "failed", "jobId": 42}', "invalid_event"),
        (b'{"event": "completed", "jobId": "' + b"x" * 201 + b'"}', "invalid_event"),
        (b'{"event": "completed", "jobId": "a", "jobId": "b"}', "duplicate_key"),
        (
            b'{"event": "completed", "jobId": "a", "result": {"images": [], "images": []}}',
            "duplicate_key",
        ),
        (b'{"whatever": 1, "whatever": 2}', "duplicate_key"),
    ],
)
def test_unusable_bodies_are_malformed_with_a_reason(raw: bytes, reason: str) -> None:
    """What framehook cannot act on is MALFORMED, with a 400 problem naming why."""
    parsed = parse_body(raw)
    assert parsed.kind is Kind.MALFORMED
    assert parsed.problem is not None
    assert parsed.problem.reason == reason
    assert parsed.problem.status_code == 400
    assert parsed.dedupe_key is None


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (
            b'{"event":"progress","jobId":"j","status":"PROCESSING","status":"COMPLETED"}',
            '"status"',
        ),
        (b'{"jobId":"j","status":"FAILED","status":"COMPLETED"}', '"status"'),
        (b'{"event":"completed","event":"failed","jobId":"j"}', '"event"'),
        (b'{"event":"completed","loraId":"x","status":"READY","loraId":"y"}', '"loraId"'),
    ],
    ids=["progress", "inferred", "event", "lora"],
)
def test_a_body_naming_a_key_twice_is_malformed_and_names_it(raw: bytes, named: str) -> None:
    """Two statuses, two events or two LoRA ids: never read as the last one says, but
    malformed, the 400's detail naming the key and where it is."""
    parsed = parse_body(raw)
    assert (parsed.kind, parsed.event, parsed.dedupe_key) == (Kind.MALFORMED, None, None)
    assert parsed.problem is not None
    assert parsed.problem.reason == "duplicate_key"
    assert f"{named} twice in one object at the top level" in parsed.problem.detail


def test_odd_optional_fields_read_as_none_instead_of_rejecting() -> None:
    """A completed event with a strange creditCost or completedAt is still a completed event."""
    raw = orjson.dumps(
        {
            "event": "completed",
            "jobId": "j1",
            "creditCost": {"x": 1},
            "completedAt": "soon",
            "result": None,
        }
    )
    event = parse_body(raw).event
    assert isinstance(event, CompletedEvent)
    assert event.credit_cost is None
    assert event.completed_at is None


def test_failed_error_object_is_kept_as_text() -> None:
    """An error given as an object is stored as its JSON text."""
    event = parse_body(b'{"event":"failed","jobId":"j","error":{"code":"nsfw"}}').event
    assert isinstance(event, FailedEvent)
    assert event.error == '{"code":"nsfw"}'


@pytest.mark.parametrize(
    ("given", "value"), [(45, 45), (45.9, 45), (-3, 0), (250, 100), ("12", 12)]
)
def test_progress_is_a_whole_percentage(given: object, value: int) -> None:
    """Progress is clamped to 0..100 and rounded down (99.9 is not done)."""
    event = parse_body(orjson.dumps({"event": "progress", "jobId": "j", "progress": given})).event
    assert isinstance(event, ProgressEvent)
    assert event.progress_value == value


@pytest.mark.parametrize("name", ["malformed", "unrecognized", None, 7])
def test_reserved_or_odd_event_names_are_unrecognized(name: object) -> None:
    """Only progress/completed/failed are acted on; anything else is stored as unrecognized."""
    parsed = parse_body(orjson.dumps({"event": name, "jobId": "j"}))
    assert parsed.kind is Kind.UNRECOGNIZED
