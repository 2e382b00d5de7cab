"""No poison webhooks: a validly signed body is stored and answered 2xx or 400 whatever its
values, on SQLite and PostgreSQL; an odd value is stored as null and flagged on the delivery.

Each case here was a 5xx once: a 500 (a fingerprint or NUL scan recursing where the parser did
not), or a 503 on every retry (a value that failed only inside the commit), so Apiframe would
have retried it for ever and it would never have been stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from receiver.credits import credit_totals
from tests.support.database import rows
from tests.support.webhooks import signed_headers

URL = "/webhooks/apiframe"
TOKEN = "poison-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    """The receiver with the admin API on."""
    return make_client(admin_token=TOKEN)


def post(client: TestClient, raw: bytes) -> tuple[int, dict[str, Any]]:
    answer = client.post(URL, content=raw, headers=signed_headers(raw))
    return answer.status_code, answer.json()


def last_delivery(db: Engine) -> Any:
    return rows(db, "SELECT body, outcome, flags FROM deliveries ORDER BY id DESC LIMIT 1")[0]


def test_a_completion_time_past_year_9999_in_utc_is_null_and_flagged(
    api: TestClient, db: Engine
) -> None:
    """completedAt 9999-12-31T23:59:59-14:00 (valid, but past 9999 in UTC): 202, the job
    completed without a time, the delivery flagged, and its retry a duplicate, not a 503."""
    raw = orjson.dumps(
        {"event": "completed", "jobId": "late", "completedAt": "9999-12-31T23:59:59-14:00"}
    )
    assert post(api, raw)[0] == 202
    assert post(api, raw)[0] == 200
    (job,) = rows(db, "SELECT status, completed_at FROM jobs")
    assert (job.status, job.completed_at) == ("COMPLETED", None)
    outcomes = rows(db, "SELECT outcome, flags FROM deliveries ORDER BY id")
    assert [(d.outcome, d.flags) for d in outcomes] == [
        ("accepted", "completed_at_invalid"),
        ("duplicate", "completed_at_invalid"),
    ]


@pytest.mark.parametrize("cost", [b"1e308", b"-5", b"1.7976931348623157e308", b'"Infinity"'])
def test_a_cost_no_job_can_have_is_null_and_the_ledger_still_answers(
    api: TestClient, db: Engine, cost: bytes
) -> None:
    """Two jobs costing 1e308 (or a negative or infinite cost): stored without a cost and
    flagged, and /api/credits answers (PostgreSQL's SUM overflowed on them)."""
    for job in (b"a", b"b"):
        raw = b'{"event":"completed","jobId":"' + job + b'","model":"m","creditCost":' + cost + b"}"
        assert post(api, raw)[0] == 202
    assert {r.credit_cost for r in rows(db, "SELECT credit_cost FROM jobs")} == {None}
    assert {r.flags for r in rows(db, "SELECT flags FROM deliveries")} == {"credit_cost_invalid"}
    for by in ("model", "day"):
        answer = api.get("/api/credits", params={"by": by}, headers=AUTH)
        assert answer.status_code == 200, answer.text
        assert answer.json()["total"] == {"completed": 2, "failed": 0, "credits": 0}
    with db.connect() as connection:
        assert credit_totals(connection).total.credits == 0


@pytest.mark.parametrize("levels", [254, 255, 600, 1023])
@pytest.mark.parametrize("where", ["result", "input", "error"])
def test_json_nested_as_deep_as_the_parser_reads_is_stored(
    api: TestClient, db: Engine, levels: int, where: str
) -> None:
    """254 to 1,023 levels in the result, an extra field or the error: 202, stored byte for
    byte; a result that deep, or an error too deep to show, is set aside (null, flagged),
    and the event still stands."""
    event = "failed" if where == "error" else "completed"
    deep = b"[" * levels + b"]" * levels
    raw = b'{"event":"' + event.encode() + b'","jobId":"deep","' + where.encode() + b'":' + deep
    raw += b"}"
    assert post(api, raw)[0] == 202
    delivery = last_delivery(db)
    assert bytes(delivery.body) == raw
    # An error object is kept as its JSON text as long as it can be written (254 levels).
    kept = where == "input" or (where == "error" and levels == 254)
    assert delivery.flags == (None if kept else f"{where}_invalid")
    (job,) = rows(db, "SELECT status FROM jobs")
    assert job.status == event.upper()


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [
        ("model", "m" * 300, "model_invalid"),
        ("model", "m\0" * 150, "model_invalid"),
        ("progress", "1e999", "progress_invalid"),
        ("progress", True, "progress_invalid"),
        ("status", ["PROCESSING"], "status_invalid"),
    ],
)
def test_an_odd_progress_field_is_stored_as_null(
    api: TestClient, db: Engine, field: str, value: object, flag: str
) -> None:
    """A 300-character model (longer than its column), an infinite or boolean progress, a
    status that is no text: 202, the job moved, the field null and flagged."""
    raw = orjson.dumps({"event": "progress", "jobId": "p", "progress": 10, field: value})
    assert post(api, raw)[0] == 202
    assert last_delivery(db).flags == flag
    (job,) = rows(db, "SELECT status, model FROM jobs")
    assert (job.status, job.model) == ("PROCESSING", None)


def test_long_strings_are_stored_and_one_longer_than_its_column_set_aside(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """Over 900 kB of strings (NULs and surrogate pairs included), with the body limit raised:
    a 600 kB error is kept whole, NUL-free; a 100,000-character model, longer than its column,
    is null and flagged."""
    api = make_client(admin_token=TOKEN, max_body_bytes=1_048_576)
    error = "\0😀é" * 50_000
    raw = orjson.dumps({"event": "failed", "jobId": "long", "error": error, "model": "m" * 100_000})
    assert 700_000 < len(raw) < 1_048_576
    assert post(api, raw)[0] == 202
    (job,) = rows(db, "SELECT status, model, error FROM jobs")
    assert (job.status, job.model, len(job.error)) == ("FAILED", None, len(error))
    assert "\0" not in job.error
    assert last_delivery(db).flags == "model_invalid"


def test_a_body_the_parser_refuses_is_stored_and_answered_400(api: TestClient, db: Engine) -> None:
    """A number past a double's range or a lone surrogate: 400 saying what the parser refused,
    and the delivery stored as malformed (not a 5xx, so not retried for ever)."""
    for raw, why in (
        (b'{"event":"completed","jobId":"x","creditCost":1e400}', "infinity"),
        (b'{"event":"completed","jobId":"x","model":"\\udc00"}', "surrogate"),
    ):
        status, answer = post(api, raw)
        assert (status, answer["reason"]) == (400, "not_json")
        assert why in answer["detail"]
        delivery = last_delivery(db)
        assert (bytes(delivery.body), delivery.outcome) == (raw, "malformed")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event":"failed","jobId":"dup","error":"x","event":"completed","result":"'
        + b'https://cdn2.apiframe.ai/x.png"}',
        b'{"event":"progress","jobId":"dup","progress":50,"jobId":"other"}',
        b'{"event":"completed","jobId":"dup","result":{"images":["https://cdn2.apiframe.ai/a.png"'
        + b'],"images":["https://cdn2.apiframe.ai/b.png"]}}',
    ],
    ids=["event", "job-id", "nested"],
)
def test_a_body_naming_a_key_twice_is_stored_answered_400_and_changes_no_job(
    api: TestClient, db: Engine, raw: bytes
) -> None:
    """Two events, two job ids or two image lists in one object: 400 duplicate_key naming
    the key, the body stored byte for byte as malformed, the job as the earlier webhook left
    it, nothing queued; Apiframe's retry gets the same answer, not a 5xx."""
    running = orjson.dumps({"event": "progress", "jobId": "dup", "progress": 40})
    assert post(api, running)[0] == 202
    for _ in range(2):
        status, answer = post(api, raw)
        assert (status, answer["reason"]) == (400, "duplicate_key")
        assert "twice in one object" in answer["detail"]
        delivery = last_delivery(db)
        assert (bytes(delivery.body), delivery.outcome) == (raw, "malformed")
    assert [(j.id, j.status, j.progress) for j in rows(db, "SELECT * FROM jobs")] == [
        ("dup", "PROCESSING", 40)
    ]
    assert rows(db, "SELECT * FROM tasks") == []
