"""Which event is it: a body's ``event``, else its ``type``, else its ``status``."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from receiver.apiframe.events import CancelledEvent, Kind, parse_body
from tests.support.webhooks import sample

JOB = "4d1e7a52-8c3b-4f60-9e21-5a7b0c9d1e2f"
RESULT = {"images": ["https://cdn2.apiframe.ai/a.png"]}


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"jobId": JOB, "status": "COMPLETED", "result": RESULT}, Kind.COMPLETED),
        ({"jobId": JOB, "status": "FAILED", "error": "nope"}, Kind.FAILED),
        ({"jobId": JOB, "status": "QUEUED"}, Kind.PROGRESS),
        ({"jobId": JOB, "status": "PROCESSING", "progress": 30}, Kind.PROGRESS),
        ({"jobId": JOB, "status": "CANCELLED"}, Kind.CANCELLED),
        ({"jobId": JOB, "status": " completed "}, Kind.COMPLETED),
        ({"jobId": JOB, "type": "completed", "result": RESULT}, Kind.COMPLETED),
        ({"jobId": JOB, "type": "job.failed"}, Kind.FAILED),
        ({"jobId": JOB, "type": "Progress", "progress": 5}, Kind.PROGRESS),
        ({"jobId": JOB, "type": "completed", "status": "FAILED"}, Kind.COMPLETED),
        ({"jobId": JOB, "event": None, "status": "COMPLETED"}, Kind.COMPLETED),
        # An event or a type naming something unknown (a future event) is not overridden by
        # the status; a status naming no job event, or no jobId, infers nothing.
        ({"jobId": JOB, "event": "expired", "status": "COMPLETED"}, Kind.UNRECOGNIZED),
        ({"jobId": JOB, "event": "Completed", "status": "COMPLETED"}, Kind.UNRECOGNIZED),
        ({"jobId": JOB, "type": "image", "status": "COMPLETED"}, Kind.UNRECOGNIZED),
        ({"jobId": JOB, "status": "DONE"}, Kind.UNRECOGNIZED),
        ({"jobId": JOB, "status": 7}, Kind.UNRECOGNIZED),
        ({"status": "COMPLETED"}, Kind.UNRECOGNIZED),
        ({"id": "lora_1", "status": "READY"}, Kind.LORA),
    ],
)
def test_a_job_body_without_event_has_it_read_from_its_type_else_its_status(
    body: dict[str, Any], kind: Kind
) -> None:
    """With a jobId and no event, the type (else the status) names the event, and the body is
    flagged event_inferred instead of being stored as unrecognized."""
    parsed = parse_body(orjson.dumps(body))
    assert parsed.kind is kind
    inferred = kind not in (Kind.UNRECOGNIZED, Kind.LORA)
    assert parsed.flags == (("event_inferred",) if inferred else ())
    if inferred:
        assert parsed.event_name == kind.value
        assert parsed.event is not None
        assert parsed.event.event == kind.value
        assert parsed.problem is None


def test_an_event_in_the_body_wins_and_is_not_flagged() -> None:
    """A body that names its event is read as sent, whatever its type and status say."""
    parsed = parse_body(orjson.dumps({"jobId": JOB, "event": "completed", "status": "FAILED"}))
    assert (parsed.kind, parsed.flags) == (Kind.COMPLETED, ())


def test_an_inferred_event_is_the_same_event_as_the_one_that_names_itself() -> None:
    """The SDK's {jobId, status} shape and Apiframe's documented body of one completion share
    a dedupe key and a fingerprint: one is a duplicate of the other, not a conflict."""
    inferred = parse_body(orjson.dumps({"jobId": JOB, "status": "COMPLETED", "result": RESULT}))
    typed = parse_body(orjson.dumps({"jobId": JOB, "type": "completed", "result": RESULT}))
    named = parse_body(
        orjson.dumps({"event": "completed", "jobId": JOB, "status": "COMPLETED", "result": RESULT})
    )
    assert inferred.dedupe_key == typed.dedupe_key == named.dedupe_key
    assert inferred.fingerprint == typed.fingerprint == named.fingerprint


def test_a_cancelled_event_is_a_terminal_job_event() -> None:
    """The cancelled event keys once per job and carries no cost."""
    parsed = parse_body(sample("unknown-event-future"))
    assert parsed.kind is Kind.CANCELLED
    assert isinstance(parsed.event, CancelledEvent)
    assert parsed.dedupe_key == "job:7c8d9eaf-0112-4d23-e4f5-a6b7c8d9e0f1:cancelled"
    assert parsed.flags == ()
