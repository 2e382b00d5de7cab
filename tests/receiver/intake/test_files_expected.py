"""jobs.files_expected: how many files a job's result names, set with its terminal event, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from receiver.apiframe.events import parse_body
from receiver.db.engine import writing
from receiver.intake.recorder import Arrival, Recorder, Subscription
from tests.support.database import rows
from tests.support.webhooks import signed_headers, webhook_body

URL = "/webhooks/apiframe"
CDN = "https://cdn2.apiframe.ai"


def post(client: TestClient, body: dict[str, Any]) -> int:
    raw = orjson.dumps(body)
    return client.post(URL, content=raw, headers=signed_headers(raw)).status_code


def expected(db: Engine, job_id: str) -> Any:
    (row,) = rows(db, "SELECT files_expected FROM jobs WHERE id = :j", j=job_id)
    return row.files_expected


@pytest.mark.parametrize(
    ("result", "count"),
    [
        ({"images": [f"{CDN}/1.png", f"{CDN}/2.png", f"{CDN}/3.png"]}, 3),
        (f"{CDN}/results/one.png", 1),
        ({"images": []}, 0),
        (None, 0),
    ],
    ids=["three-images", "url-string", "empty", "no-result"],
)
def test_a_completed_job_records_how_many_files_its_result_names(
    client: TestClient, db: Engine, result: Any, count: int
) -> None:
    """The accepted completed event sets files_expected from its result."""
    assert post(client, webhook_body("completed", jobId="done", result=result)) == 202
    assert expected(db, "done") == count


def test_unfinished_failed_and_cancelled_jobs_record_none_or_zero(
    client: TestClient, db: Engine
) -> None:
    """A running job has no count yet (NULL); a failed or cancelled one names no file (0)."""
    assert post(client, webhook_body("progress", jobId="running", progress=20)) == 202
    assert post(client, webhook_body("failed", jobId="broken", error="x")) == 202
    assert post(client, {"jobId": "stopped", "status": "CANCELLED"}) == 202
    assert expected(db, "running") is None
    assert expected(db, "broken") == 0
    assert expected(db, "stopped") == 0


def test_a_conflicting_second_terminal_event_keeps_the_first_count(
    client: TestClient, db: Engine
) -> None:
    """Completed with two files, then failed: still 2 (the first terminal event stands)."""
    done = webhook_body("completed", jobId="j", result={"images": [f"{CDN}/a", f"{CDN}/b"]})
    assert post(client, done) == 202
    assert post(client, webhook_body("failed", jobId="j", error="late")) == 200
    assert expected(db, "j") == 2


def test_progress_and_completion_in_one_batch_count_once(db: Engine) -> None:
    """A batch moving a new job through progress to completed writes the count of its result."""
    recorder = Recorder(db.dialect.name, [Subscription("download", frozenset({"completed"}))])
    bodies = [
        orjson.dumps(webhook_body("progress", jobId="b", progress=50)),
        orjson.dumps(webhook_body("completed", jobId="b", result={"videoUrl": f"{CDN}/v.mp4"})),
    ]
    arrivals = [Arrival(parse_body(b), b, datetime.now(UTC), f"r{n}") for n, b in enumerate(bodies)]
    with writing(db) as connection:
        recorder.record_many(connection, arrivals)
    assert expected(db, "b") == 1
