"""Odd values in a signed body: each becomes null and is flagged, never an error; any depth
the parser accepts is classified without recursing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from receiver.apiframe.events import (
    CompletedEvent,
    FailedEvent,
    Kind,
    ProgressEvent,
    parse_body,
)

JOB = "0b5c6d7e-1f20-4a31-8b42-c5d6e7f80912"


def nested(levels: int, leaf: bytes = b"1") -> bytes:
    """JSON text of ``leaf`` inside ``levels`` arrays and objects, alternating."""
    opening = b"".join(b'{"k":' if n % 2 else b"[" for n in range(levels))
    closing = b"".join(b"}" if n % 2 else b"]" for n in reversed(range(levels)))
    return opening + leaf + closing


def parse_fields(event: str, **fields: Any) -> Any:
    # The standard library's writer: it writes integers past 64 bits, and 300 levels.
    return parse_body(json.dumps({"event": event, "jobId": JOB, **fields}).encode())


@pytest.mark.parametrize(
    ("event", "field", "value", "flag"),
    [
        ("completed", "completedAt", "9999-12-31T23:59:59-14:00", "completed_at_invalid"),
        ("completed", "completedAt", "0001-01-01T00:00:00+14:00", "completed_at_invalid"),
        ("completed", "completedAt", "2026-02-30T10:00:00Z", "completed_at_invalid"),
        ("completed", "completedAt", True, "completed_at_invalid"),
        ("completed", "completedAt", 1e300, "completed_at_invalid"),
        ("completed", "creditCost", 1e308, "credit_cost_invalid"),
        ("completed", "creditCost", -4, "credit_cost_invalid"),
        ("completed", "creditCost", "Infinity", "credit_cost_invalid"),
        ("completed", "creditCost", "NaN", "credit_cost_invalid"),
        ("completed", "creditCost", True, "credit_cost_invalid"),
        ("completed", "creditCost", {"credits": 4}, "credit_cost_invalid"),
        ("failed", "creditCost", "-1e999", "credit_cost_invalid"),
        ("progress", "progress", "1e999", "progress_invalid"),
        ("progress", "progress", "nan", "progress_invalid"),
        ("progress", "progress", True, "progress_invalid"),
        ("progress", "progress", [50], "progress_invalid"),
        ("progress", "model", "m" * 201, "model_invalid"),
        ("progress", "model", 12, "model_invalid"),
        ("progress", "status", {"s": 1}, "status_invalid"),
        ("completed", "result", orjson.loads(nested(65)), "result_invalid"),
        ("failed", "error", orjson.loads(nested(300)), "error_invalid"),
    ],
)
def test_an_odd_value_reads_as_null_and_is_flagged(
    event: str, field: str, value: Any, flag: str
) -> None:
    """The event is still its event; the odd field reads as None and names itself in flags."""
    parsed = parse_fields(event, **{field: value})
    assert parsed.kind is Kind(event)
    assert parsed.problem is None
    assert parsed.flags == (flag,)
    attribute = {"completedAt": "completed_at", "creditCost": "credit_cost"}.get(field, field)
    assert getattr(parsed.event, attribute) is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"creditCost": 0}, {"credit_cost": 0.0}),
        ({"creditCost": "16"}, {"credit_cost": 16.0}),
        ({"creditCost": 1e9}, {"credit_cost": 1e9}),
        (
            {"completedAt": "2026-03-15T10:00:32+02:00"},
            {"completed_at": datetime(2026, 3, 15, 8, 0, 32, tzinfo=UTC)},
        ),
        (
            {"completedAt": "2026-03-15T10:00:32"},
            {"completed_at": datetime(2026, 3, 15, 10, 0, 32, tzinfo=UTC)},
        ),
        ({"model": "m" * 200}, {"model": "m" * 200}),
        ({"result": orjson.loads(nested(64))}, {"result": orjson.loads(nested(64))}),
    ],
)
def test_usable_values_are_kept_and_times_read_in_utc(
    fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Zero, numeric text, the largest cost, any offset and 64 levels are all fine, unflagged;
    a time is read in UTC (one without an offset as UTC, as Apiframe's always are)."""
    parsed = parse_fields("completed", **fields)
    assert isinstance(parsed.event, CompletedEvent)
    assert parsed.flags == ()
    for name, value in expected.items():
        assert getattr(parsed.event, name) == value


@pytest.mark.parametrize(("given", "value"), [(1e308, 100), (-1e308, 0), (2**64, 100)])
def test_huge_and_tiny_progress_is_clamped_not_flagged(given: float, value: int) -> None:
    """A finite progress of any size is a percentage clamped to 0..100."""
    parsed = parse_fields("progress", progress=given)
    assert isinstance(parsed.event, ProgressEvent)
    assert (parsed.event.progress_value, parsed.flags) == (value, ())


@pytest.mark.parametrize("levels", [254, 255, 600, 1023])
@pytest.mark.parametrize("event", ["completed", "progress", "expired", None])
def test_any_depth_the_parser_accepts_is_classified(levels: int, event: str | None) -> None:
    """A value nested 254..1,023 levels deep (orjson reads it, but writes only ~254) is
    classified, fingerprinted and keyed like any other body."""
    head = b'{"jobId":"' + JOB.encode() + b'"'
    if event is not None:
        head += b',"event":"' + event.encode() + b'"'
    body = head + b',"input":' + nested(levels) + b"}"
    other = head + b',"input":' + nested(levels, b"2") + b"}"
    parsed = parse_body(body)
    assert parsed.problem is None
    assert parsed.kind is (Kind(event) if event in ("completed", "progress") else Kind.UNRECOGNIZED)
    assert parsed.fingerprint == parse_body(body).fingerprint
    if parsed.kind is Kind.UNRECOGNIZED:  # the whole body is its meaning
        assert parsed.fingerprint != parse_body(other).fingerprint


def test_a_deep_result_and_error_are_set_aside_at_any_depth() -> None:
    """1,000 levels of result or error: the event stands, the field is null and flagged."""
    deep = nested(1000, b'"\\u0000"')
    completed = parse_body(b'{"event":"completed","jobId":"j","result":' + deep + b"}")
    failed = parse_body(b'{"event":"failed","jobId":"j","error":' + deep + b"}")
    assert isinstance(completed.event, CompletedEvent)
    assert (completed.event.result, completed.flags) == (None, ("result_invalid",))
    assert isinstance(failed.event, FailedEvent)
    assert (failed.event.error, failed.flags) == (None, ("error_invalid",))


def test_a_deep_lora_body_is_recognised_without_recursing() -> None:
    """A LoRA body whose name and event are nested 1,000 levels deep is still a LoRA event."""
    deep = nested(1000)
    body = b'{"id":"lora_7","status":"READY","name":' + deep + b',"event":' + deep + b"}"
    parsed = parse_body(body)
    assert parsed.kind is Kind.LORA
    assert parsed.lora is not None
    assert (parsed.lora.id, parsed.lora.name) == ("lora_7", None)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event":"completed","jobId":"j","creditCost":1e400}',
        b'{"event":"completed","jobId":"j","model":"\\ud800"}',
        b'{"event":"completed","jobId":"j","creditCost":NaN}',
        b'{"event":"completed","jobId":"j","x":' + b"[" * 1100 + b"]" * 1100 + b"}",
    ],
    ids=["beyond-double", "lone-surrogate", "nan-literal", "deeper-than-the-parser"],
)
def test_what_the_parser_refuses_is_malformed_with_the_parsers_reason(raw: bytes) -> None:
    """A number past a double's range, a lone surrogate, NaN or 1,100 levels: a 400 saying
    what the parser refused (the worker decodes bodies with the same parser)."""
    parsed = parse_body(raw)
    assert parsed.kind is Kind.MALFORMED
    assert parsed.problem is not None
    assert parsed.problem.reason == "not_json"
    assert parsed.problem.detail.startswith("body is not valid JSON: ")
    assert len(parsed.problem.detail) > len("body is not valid JSON: ")


def test_a_nul_anywhere_in_a_deep_body_is_replaced_in_what_is_read() -> None:
    """NULs in keys and values at any depth read as U+FFFD (the raw body keeps them)."""
    raw = b'{"event":"progress","jobId":"j\\u0000","x\\u0000":' + nested(900, b'"\\u0000"') + b"}"
    parsed = parse_body(raw)
    assert parsed.job_id == "j\ufffd"
    assert parsed.event is not None
    extra = parsed.event.model_extra
    assert extra is not None
    assert list(extra) == ["x\ufffd"]
