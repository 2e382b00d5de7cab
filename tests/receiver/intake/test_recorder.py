"""Recording arrivals under real concurrency: the unique ledger, not a check, decides."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import orjson
from sqlalchemy import Engine

from receiver.apiframe.events import parse_body
from receiver.db.engine import writing
from receiver.intake.recorder import Arrival, DeliveryOutcome, Receipt, Recorder, Subscription
from tests.support.database import rows

SUBSCRIBERS = [
    Subscription("download", frozenset({"completed"})),
    Subscription("audit", frozenset({"completed", "progress"})),
]


def arrival(body: bytes) -> Arrival:
    return Arrival(
        parsed=parse_body(body), body=body, received_at=datetime.now(UTC), request_id="t"
    )


def _race(db: Engine, recorder: Recorder, body: bytes, writers: int) -> list[Receipt]:
    barrier = threading.Barrier(writers)
    receipts: list[Receipt] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            barrier.wait()
            with writing(db) as connection:
                receipts.append(recorder.record(connection, arrival(body)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return receipts


def test_racing_writers_accept_an_event_exactly_once(db: Engine) -> None:
    """Eight connections record the same completed event at once: one accepted, seven duplicates."""
    recorder = Recorder(db.dialect.name, SUBSCRIBERS)
    for n in range(5):
        body = orjson.dumps(
            {"event": "completed", "jobId": f"race-{n}", "result": {"images": ["u"]}}
        )
        receipts = _race(db, recorder, body, writers=8)
        assert (
            sorted(r.outcome for r in receipts)
            == [DeliveryOutcome.ACCEPTED] + [DeliveryOutcome.DUPLICATE] * 7
        )
    assert len(rows(db, "SELECT * FROM tasks")) == 5 * 2
    assert len(rows(db, "SELECT * FROM jobs WHERE status = 'COMPLETED'")) == 5


def test_racing_events_of_one_job_all_apply(db: Engine) -> None:
    """Different progress events of a new job recorded concurrently: none lost, max wins."""
    recorder = Recorder(db.dialect.name, SUBSCRIBERS)
    values = list(range(5, 85, 5))
    barrier = threading.Barrier(len(values))
    errors: list[BaseException] = []

    def write(value: int) -> None:
        body = orjson.dumps({"event": "progress", "jobId": "one-job", "progress": value})
        try:
            barrier.wait()
            with writing(db) as connection:
                recorder.record(connection, arrival(body))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(v,)) for v in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    (job,) = rows(db, "SELECT status, progress FROM jobs")
    assert (job.status, job.progress) == ("PROCESSING", max(values))
    assert len(rows(db, "SELECT * FROM ledger")) == len(values)


def test_batch_keeps_each_jobs_arrival_order(db: Engine) -> None:
    """In one batch, completed then a late progress for the same job: accepted, then stale."""
    recorder = Recorder(db.dialect.name, SUBSCRIBERS)
    batch = [
        arrival(orjson.dumps({"event": "progress", "jobId": "z", "progress": 10})),
        arrival(orjson.dumps({"event": "completed", "jobId": "b", "result": "u"})),
        arrival(orjson.dumps({"event": "completed", "jobId": "z", "result": "u"})),
        arrival(orjson.dumps({"event": "progress", "jobId": "z", "progress": 50})),
        arrival(orjson.dumps({"event": "progress", "jobId": "a", "progress": 5})),
    ]
    with writing(db) as connection:
        receipts = recorder.record_many(connection, batch)
    assert [r.outcome for r in receipts] == [
        "accepted",
        "accepted",
        "accepted",
        "stale",
        "accepted",
    ]
    assert [r.job_id for r in receipts] == ["z", "b", "z", "z", "a"]


def test_rows_written_by_the_intake_read_back_through_the_models(db: Engine) -> None:
    """The intake's plain SQL stores exactly what the SQLModel types expect to read."""
    from sqlmodel import Session, select

    from receiver.db.models import Delivery, Job, LedgerEntry, Task

    recorder = Recorder(db.dialect.name, SUBSCRIBERS)
    completed = orjson.dumps(
        {
            "event": "completed",
            "jobId": "typed",
            "model": "suno",
            "result": {"tracks": [{"id": "a", "audioUrl": "https://x/a.mp3", "duration": 1.5}]},
            "creditCost": 11.5,
            "completedAt": "2026-11-20T10:07:00.000Z",
        }
    )
    mismatch = Arrival(
        parsed=parse_body(completed),
        body=completed,
        received_at=datetime.now(UTC),
        request_id="typed-1",
        header_event="progress",
    )
    with writing(db) as connection:
        recorder.record(connection, mismatch)
    with Session(db) as session:
        job = session.exec(select(Job)).one()
        assert job.result == {
            "tracks": [{"id": "a", "audioUrl": "https://x/a.mp3", "duration": 1.5}]
        }
        assert job.completed_at == datetime(2026, 11, 20, 10, 7, tzinfo=UTC)
        assert job.created_at.tzinfo is not None
        assert abs((job.updated_at - mismatch.received_at).total_seconds()) < 0.001
        assert (job.status, job.progress, job.credit_cost) == ("COMPLETED", 100, 11.5)
        delivery = session.exec(select(Delivery)).one()
        assert delivery.event_mismatch is True
        assert delivery.body == completed
        assert delivery.received_at == mismatch.received_at
        tasks = session.exec(select(Task).order_by(Task.handler)).all()
        assert [t.handler for t in tasks] == ["audit", "download"]
        assert {(t.delivery_id, t.run_at) for t in tasks} == {(delivery.id, mismatch.received_at)}
        ledger = session.exec(select(LedgerEntry)).one()
        assert ledger.first_seen_at == mismatch.received_at
