"""The tables. Alembic owns the schema (``receiver/db/migrations``); these mirror it.

``ledger`` is the permanent dedupe memory: one row per meaning, never pruned, so an event
retried days later is still a duplicate after its raw delivery has been pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

from receiver.apiframe.loras import LoraStatus

__all__ = [
    "AssetRecord",
    "AttemptOutcome",
    "Delivery",
    "Job",
    "LedgerEntry",
    "Lora",
    "LoraState",
    "Task",
    "TaskAttempt",
    "TaskStatus",
    "UTCDateTime",
    "metadata",
]

metadata = SQLModel.metadata

# SQLite autoincrements only a column declared exactly INTEGER PRIMARY KEY.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Job(SQLModel, table=True):
    """One Apiframe job, as its events have moved it (see ``receiver.intake.job_state``)."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_updated", "status", "updated_at"),
        # The admin API's job list walks (created_at, id), newest first, page by page.
        Index("ix_jobs_created_id", "created_at", "id"),
        # The live feed (``/api/events``) asks for the jobs changed in the last seconds.
        Index("ix_jobs_updated_at", "updated_at"),
    )

    id: str = Field(primary_key=True, max_length=200)
    status: str = Field(max_length=16)
    progress: int = 0
    model: str | None = Field(default=None, max_length=200, index=True)
    result: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = None
    credit_cost: float | None = None
    completed_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    # When reconciliation last asked Apiframe about this job (it asks again only after the
    # modality's wait, so a stuck job costs one request per wait, not one per sweep).
    polled_at: datetime | None = _ts(nullable=True)
    # How many files the job's result names (``handlers.download.find_assets``), set with the
    # terminal event; NULL before it. Stored files are the ``assets`` rows: together they say
    # whether the job was captured.
    files_expected: int | None = None
    # Only framehook test events (``"framehookTest": true``, ``framehook send-test``) have moved
    # it (``receiver.intake.job_state`` says the rule): no credits, no files to capture.
    test: bool = Field(
        default=False, sa_column=Column(Boolean(), nullable=False, server_default=false())
    )


class Delivery(SQLModel, table=True):
    """One verified request (or poll result) and what became of it."""

    __tablename__ = "deliveries"
    # Each index is pages written on every webhook (migration 0011): none on dedupe_key (the
    # ledger's primary key is the dedupe); outcome and lora_id hold only their rare rows (the
    # admin list walks the primary key for "accepted", which nearly every delivery is).
    __table_args__ = (
        Index(
            "ix_deliveries_outcome",
            "outcome",
            postgresql_where=text("outcome <> 'accepted'"),
            sqlite_where=text("outcome <> 'accepted'"),
        ),
        Index(
            "ix_deliveries_lora_id",
            "lora_id",
            postgresql_where=text("lora_id IS NOT NULL"),
            sqlite_where=text("lora_id IS NOT NULL"),
        ),
        # The rows a prune has still to look at (migration 0012): a pruned body leaves it.
        Index(
            "ix_deliveries_unpruned",
            "id",
            postgresql_where=text("body IS NOT NULL"),
            sqlite_where=text("body IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(_BigId, primary_key=True))
    received_at: datetime = _ts(index=True)
    source: str = Field(default="webhook", max_length=16)
    request_id: str = Field(max_length=64)
    job_id: str | None = Field(default=None, max_length=200, index=True)
    # A LoRA training event's LoRA (``job_id`` is then empty): ``receiver.apiframe.loras``.
    lora_id: str | None = Field(default=None, max_length=200)
    event: str | None = Field(default=None, max_length=64)
    header_event: str | None = Field(default=None, max_length=64)
    event_mismatch: bool = False
    outcome: str = Field(max_length=16)
    dedupe_key: str | None = Field(default=None, max_length=300)
    fingerprint: str = Field(max_length=64)
    key_index: int | None = None
    key_derivation: str | None = Field(default=None, max_length=8)
    remote_addr: str | None = Field(default=None, max_length=64)
    body: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    # What the intake inferred or set aside in the stored body, comma-separated
    # (``event_inferred``, an odd optional value made null, ...); NULL when nothing was.
    flags: str | None = Field(default=None, max_length=300)


@dataclass(frozen=True, slots=True)
class LoraState:
    """A LoRA as framehook knows it: the mutable parts of its ``loras`` row, which the LoRA
    state machine (``receiver.intake.lora_state``) moves and ``receiver.db.sql.loras`` reads
    and writes."""

    status: LoraStatus = LoraStatus.UNKNOWN
    name: str | None = None
    trigger_word: str | None = None
    error: str | None = None
    completed_at: datetime | None = None


class Lora(SQLModel, table=True):
    """One Apiframe LoRA training, as its webhooks and lookups have moved it
    (``receiver.intake.lora_state``)."""

    __tablename__ = "loras"
    # Reconciliation looks for unfinished LoRAs silent for a while, and unconfirmed ones.
    __table_args__ = (Index("ix_loras_status_updated", "status", "updated_at"),)

    id: str = Field(primary_key=True, max_length=200)
    status: str = Field(max_length=16)
    name: str | None = Field(default=None, max_length=200)
    trigger_word: str | None = Field(default=None, max_length=64)
    error: str | None = None
    completed_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    # When ``GET /v2/loras/:id`` last answered about it: earlier than ``updated_at`` means a
    # webhook changed it since, and the lookup that confirms it is due.
    polled_at: datetime | None = _ts(nullable=True)


class LedgerEntry(SQLModel, table=True):
    """The first content seen under a dedupe key; the unique primary key is the dedupe."""

    __tablename__ = "ledger"

    key: str = Field(primary_key=True, max_length=300)
    fingerprint: str = Field(max_length=64)
    first_seen_at: datetime = _ts()


class TaskStatus(StrEnum):
    """Where a task is in its life (``tasks.status``); only ``waiting``, ``queued`` and
    ``running`` change (``receiver.queue.order`` says when a task waits)."""

    WAITING = "waiting"  #: for the tasks of its delivery that it runs after (``waits_for``)
    QUEUED = "queued"  #: waiting for its ``run_at``, then for a worker to claim it
    RUNNING = "running"  #: claimed: a worker holds its lease and runs the handler
    SUCCEEDED = "succeeded"  #: the handler returned
    DEAD = "dead"  #: failed permanently or out of attempts: parked until replayed
    SUPERSEDED = "superseded"  #: a queued progress task made pointless by a newer event


def _only(status: TaskStatus) -> dict[str, Any]:
    """A partial index's WHERE for one task status, in the text the migrations wrote
    (``status = 'queued'``): the migrations are frozen history, and these mirror them."""
    where = f"status = '{status.value}'"
    return {"postgresql_where": text(where), "sqlite_where": text(where)}


class Task(SQLModel, table=True):
    """One handler's run for one delivery: created with the delivery, run at least once."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("uq_tasks_delivery_handler", "delivery_id", "handler", unique=True),
        # Queued tasks only, in the claim's ORDER BY order: the claim walks it and stops at
        # LIMIT, whatever the planner's row estimates (a full index made it sort them all).
        Index(
            "ix_tasks_claim",
            "priority",
            "run_at",
            "id",
            **_only(TaskStatus.QUEUED),
        ),
        # Only running tasks have leases worth checking: a small partial index.
        Index(
            "ix_tasks_leases",
            "lease_expires_at",
            **_only(TaskStatus.RUNNING),
        ),
        Index("ix_tasks_job_handler", "job_id", "handler"),
        # Waiting tasks by delivery: a task that ends releases its delivery's waiting tasks
        # (``receiver.db.sql.waiting``). Partial: it holds only the tasks waiting now.
        Index(
            "ix_tasks_waiting",
            "delivery_id",
            **_only(TaskStatus.WAITING),
        ),
        # Dead tasks, for the dashboard and ``/api/tasks``: a partial index stays as small as
        # the dead list, and a task's other transitions never touch it.
        Index(
            "ix_tasks_dead",
            "id",
            **_only(TaskStatus.DEAD),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(_BigId, primary_key=True))
    delivery_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    job_id: str | None = Field(default=None, max_length=200)
    handler: str = Field(max_length=200)
    event: str = Field(max_length=64)
    status: str = Field(default=TaskStatus.QUEUED.value, max_length=16)
    priority: int = 0
    attempts: int = 0
    run_at: datetime = _ts()
    lease_expires_at: datetime | None = _ts(nullable=True)
    last_error: str | None = None
    claimed_by: str | None = Field(default=None, max_length=100)
    # Attempts before the last replay: the retry budget counts from here. ``attempts`` itself
    # never goes back, because it is the fencing token of every claim.
    attempt_offset: int = 0
    finished_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    # The handlers whose tasks for the same delivery this one runs after, comma-separated
    # (a handler's ``after``, as far as they had a task for it); NULL when none had.
    waits_for: str | None = Field(default=None, max_length=1000)


class AttemptOutcome(StrEnum):
    """How one run of a task ended (``task_attempts.outcome``)."""

    SUCCEEDED = "succeeded"  #: the handler returned: the task is ``succeeded``
    RETRY = "retry"  #: it failed and runs again later: the task is ``queued`` again
    DEAD = "dead"  #: it failed for good, or used its last attempt: the task is ``dead``


class TaskAttempt(SQLModel, table=True):
    """One run of a task: who ran it, how long, how it ended (the task's history)."""

    __tablename__ = "task_attempts"

    id: int | None = Field(default=None, sa_column=Column(_BigId, primary_key=True))
    task_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    attempt: int
    worker: str = Field(max_length=100)
    started_at: datetime = _ts()
    finished_at: datetime = _ts()
    outcome: str = Field(max_length=16)
    error: str | None = None


class AssetRecord(SQLModel, table=True):
    """One captured file (``handlers.Asset``): stored, checked, recorded once per position."""

    __tablename__ = "assets"
    # The dedupe of captures: two workers that raced (a lease that expired mid-download) or a
    # replay store one record; the key is deterministic, so they also stored one object.
    __table_args__ = (
        Index("uq_assets_job_handler_position", "job_id", "handler", "position", unique=True),
    )

    id: int | None = Field(default=None, sa_column=Column(_BigId, primary_key=True))
    job_id: str = Field(max_length=200)
    handler: str = Field(max_length=200)
    position: int
    kind: str = Field(max_length=16)
    source_url: str
    key: str = Field(max_length=1024)
    storage_uri: str
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    content_type: str | None = Field(default=None, max_length=200)
    sha256: str = Field(max_length=64)
    stored_at: datetime = _ts()
