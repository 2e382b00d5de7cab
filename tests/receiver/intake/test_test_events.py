"""Test events (``"framehookTest": true``, what ``framehook send-test`` sends): how the intake
reads the marker, and the rule that makes a job a test job without ever marking a real one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from handlers import TEST_MARKER
from receiver.apiframe.events import Event, parse_body
from receiver.credits import credit_totals
from receiver.intake.arrivals import Arrival, DeliveryOutcome, Receipt
from receiver.intake.charges import charge_of
from receiver.intake.files import files_expected
from receiver.intake.job_state import JobState, JobStatus, Verdict, apply
from tests.support.database import rows
from tests.support.webhooks import signed_headers, webhook_body

URL = "/webhooks/apiframe"
RESULT = {"images": ["https://cdn2.apiframe.ai/images/a-1.png"]}


def body(event: str, test: bool = False, **fields: Any) -> bytes:
    """A job webhook body for job ``j-1`` (marked as a test when ``test``)."""
    marker = {TEST_MARKER: True} if test else {}
    return orjson.dumps({**webhook_body(event, jobId="j-1", **fields), **marker})


def parsed_event(raw: bytes) -> Event:
    event = parse_body(raw).event
    assert event is not None
    return event


@pytest.mark.parametrize(
    ("value", "marked"),
    [(True, True), ("true", False), (1, False), (False, False), ({"on": True}, False)],
)
def test_only_the_json_value_true_marks_a_test_event(value: object, marked: bool) -> None:
    """`"framehookTest": true` marks a test event; a string, a number or an object do not."""
    raw = orjson.dumps({**webhook_body("progress", jobId="j-1", progress=5), TEST_MARKER: value})
    assert parse_body(raw).test is marked


def test_test_events_have_dedupe_keys_of_their_own() -> None:
    """A test event's key is prefixed `test:`, so it never shadows the real event's key."""
    real = parse_body(body("completed", result=RESULT))
    test = parse_body(body("completed", test=True, result=RESULT))
    assert (real.dedupe_key, test.dedupe_key) == ("job:j-1:completed", "test:job:j-1:completed")
    progress = parse_body(body("progress", test=True, progress=40))
    assert progress.dedupe_key == "test:job:j-1:progress:40"


def test_the_creating_event_decides_whether_a_job_is_a_test_job() -> None:
    """A test event creates a test job, and test events keep moving it as real ones would."""
    started = apply(None, parsed_event(body("progress", progress=30)), test=True)
    assert started.verdict is Verdict.ACCEPTED
    assert started.state.test
    ended = apply(started.state, parsed_event(body("completed", result=RESULT)), test=True)
    assert ended.verdict is Verdict.ACCEPTED
    assert (ended.state.status, ended.state.test) == (JobStatus.COMPLETED, True)
    assert apply(None, parsed_event(body("progress", progress=30))).state.test is False


def test_a_test_event_never_changes_a_real_job() -> None:
    """A test event for a job real events created is stale: nothing moves, nothing is marked."""
    real = apply(None, parsed_event(body("progress", progress=30))).state
    for event in ("completed", "failed"):
        fields = {"result": RESULT} if event == "completed" else {"error": "nope"}
        tried = apply(real, parsed_event(body(event, **fields)), test=True)
        assert tried == type(tried)(real, Verdict.STALE)


def test_a_real_event_takes_a_test_job_over() -> None:
    """A real event for a test job drops the test's made-up state and applies as the first:
    even after a test `completed`, Apiframe's own `completed` is accepted."""
    test_done = apply(None, parsed_event(body("completed", result={"images": []})), test=True)
    real = apply(test_done.state, parsed_event(body("completed", result=RESULT, creditCost=16)))
    assert real.verdict is Verdict.ACCEPTED
    assert real.state == JobState(
        status=JobStatus.COMPLETED, progress=100, result=RESULT, credit_cost=16
    )


def test_a_completed_test_job_names_no_files_to_capture() -> None:
    """files_expected is 0 for a completed test job: its URLs are made up, nothing is missing."""
    state = JobState(status=JobStatus.COMPLETED, progress=100, result=RESULT, test=True)
    assert files_expected("j-1", state) == 0
    assert files_expected("j-1", JobState(status=JobStatus.COMPLETED, result=RESULT)) == 1


def test_an_accepted_test_completed_event_charges_nothing() -> None:
    """`framehook_credits_total` counts no test event; the same event unmarked is counted."""

    def charge(raw: bytes) -> tuple[str | None, float] | None:
        arrival = Arrival(parse_body(raw), raw, datetime.now(UTC), "r")
        return charge_of(arrival, Receipt(DeliveryOutcome.ACCEPTED, 1, "j-1", 1, "midjourney"))

    fields: dict[str, Any] = {"result": RESULT, "creditCost": 16}
    assert charge(body("completed", **fields)) == ("midjourney", 16)
    assert charge(body("completed", test=True, **fields)) is None


def test_a_test_job_is_recorded_as_such_and_left_out_of_the_ledger(
    client: TestClient, db: Engine
) -> None:
    """On both databases: a test completed event stores a test job, files expected 0, and the
    credit ledger counts nothing; Apiframe's own completed event for the id then takes the job
    over and is charged once."""
    test = body("completed", test=True, result=RESULT, creditCost=99)
    assert client.post(URL, content=test, headers=signed_headers(test)).json()["outcome"] == (
        "accepted"
    )
    (job,) = rows(db, "SELECT test, files_expected, credit_cost FROM jobs")
    assert (bool(job.test), job.files_expected, job.credit_cost) == (True, 0, 99)
    with db.connect() as connection:
        assert credit_totals(connection).rows == []

    real = body("completed", result=RESULT, creditCost=16)
    answer = client.post(URL, content=real, headers=signed_headers(real)).json()
    assert answer["outcome"] == "accepted"
    (job,) = rows(db, "SELECT test, files_expected, credit_cost FROM jobs")
    assert (bool(job.test), job.files_expected, job.credit_cost) == (False, 1, 16)
    with db.connect() as connection:
        assert credit_totals(connection).total.credits == 16

    again = body("progress", test=True, progress=50)
    answer = client.post(URL, content=again, headers=signed_headers(again)).json()
    assert answer["outcome"] == "stale"
    (job,) = rows(db, "SELECT test, credit_cost FROM jobs")
    assert (bool(job.test), job.credit_cost) == (False, 16)
