"""Rows as the admin API shows them, named like Apiframe's job resource: each shape is declared
once here, as a TypedDict, and ``receiver.admin.openapi`` generates its JSON Schema from it.

Timestamps stay ``datetime`` (orjson writes them as RFC 3339; the CLI computes ages from
them); everything else is plain JSON. The classes' docstrings and ``Field`` descriptions are
published in the OpenAPI description: they speak to API clients, in Markdown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, Required

import orjson
from pydantic import Field
from sqlalchemy import Row

# Pydantic reads TypedDicts from typing_extensions only, on Python before 3.12 (it is one of
# pydantic's own dependencies); the TypeVar default keeps a bare ``Page`` usable.
from typing_extensions import TypedDict, TypeVar

from receiver.apiframe.values import depth
from receiver.credits import CreditRow, CreditTotals, Grouping
from receiver.db.models import TaskStatus
from receiver.intake.arrivals import DeliveryOutcome
from receiver.intake.job_state import JobStatus

__all__ = [
    "AssetView",
    "AttemptView",
    "CreditRowView",
    "CreditTotalsView",
    "CreditsView",
    "DeliveryView",
    "DeliveryWithBodyView",
    "ErrorGroupView",
    "ErrorView",
    "FilesView",
    "JobTimelineView",
    "JobView",
    "PageView",
    "ReplayedView",
    "RetriedView",
    "StoredAssetView",
    "TaskView",
    "TaskWithHistoryView",
    "TimelineView",
    "asset_view",
    "attempt_view",
    "credits_view",
    "delivery_view",
    "delivery_with_body_view",
    "job_view",
    "task_view",
]

ItemT = TypeVar("ItemT", default=Mapping[str, Any])


class FilesView(TypedDict):
    """A job's files: how many its result names, and how many framehook has stored. Fewer
    stored than expected is a capture still running, or one that failed."""

    expected: Annotated[
        int | None,
        Field(
            ge=0,
            description=(
                "Files the result names, counted when the job ended (0 for a failed or "
                "cancelled job); null before that."
            ),
        ),
    ]
    stored: Annotated[int, Field(ge=0, description="Files captured and recorded so far.")]


class JobView(TypedDict):
    """A job, as Apiframe's job resource names its fields, and its files' capture."""

    id: str
    status: JobStatus
    progress: Annotated[int, Field(ge=0, le=100)]
    model: str | None
    result: Any
    error: str | None
    creditCost: float | None
    test: Annotated[
        bool,
        Field(
            description=(
                'A test job: only events marked `"framehookTest": true` (what `framehook '
                "send-test` sends) have moved it. It counts no credits, and its files are not "
                "captured (test event: nothing to capture)."
            )
        ),
    ]
    createdAt: datetime
    completedAt: datetime | None
    updatedAt: datetime
    files: FilesView
    openTasks: Annotated[
        int,
        Field(
            ge=0,
            description=(
                "Handler tasks of the job still queued or running: while there are any, fewer "
                "files stored than expected is a capture in progress, not a failure."
            ),
        ),
    ]


class DeliveryView(TypedDict):
    """A verified delivery (a webhook, or a poll of the job API), without its body."""

    id: int
    jobId: str | None
    loraId: Annotated[str | None, Field(description="The LoRA of a LoRA training event.")]
    event: str | None
    headerEvent: str | None
    eventMismatch: bool
    outcome: DeliveryOutcome
    source: str
    requestId: str
    keyIndex: int | None
    derivation: str | None
    receivedAt: datetime
    flags: Annotated[
        list[str],
        Field(
            description="What the intake inferred or set aside in the body: event_inferred (the "
            "event read from type or status), or <field>_invalid (an odd optional value stored "
            "as null; the raw body keeps it)."
        ),
    ]


class DeliveryWithBodyView(DeliveryView):
    """A delivery with the body it came with, while it is kept."""

    body: Annotated[
        Any, Field(description="The raw body: its JSON when JSON, else text; null once pruned.")
    ]
    bodyFormat: Literal["json", "text"] | None


class TaskView(TypedDict):
    """One handler's run for one delivery."""

    id: int
    jobId: str | None
    deliveryId: int
    handler: str
    event: str
    status: TaskStatus
    attempts: Annotated[int, Field(ge=0, description="Attempts so far.")]
    lastError: str | None
    runAt: datetime
    finishedAt: datetime | None
    createdAt: datetime
    updatedAt: datetime
    waitsFor: Annotated[
        list[str],
        Field(
            description=(
                "The handlers whose tasks for the same delivery this one runs after (its "
                "handler's `after`); while one of them is unfinished it is `waiting`."
            )
        ),
    ]


class AttemptView(TypedDict):
    """One run of a task."""

    attempt: int
    worker: str
    startedAt: datetime
    finishedAt: datetime
    outcome: str
    error: str | None


class ErrorGroupView(TypedDict):
    """One distinct error of a task, however many attempts and files it hit."""

    error: Annotated[
        str,
        Field(
            description=(
                "The whole error, normalised: one file's reason when a download failed several "
                "files (its URL and storage key as `<url>` and `<file>`), without the worker's "
                "`(attempt N, giving up)`."
            )
        ),
    ]
    count: Annotated[
        int,
        Field(
            ge=1,
            description=(
                "Attempts that recorded it (one that failed five files with it counts once)."
            ),
        ),
    ]
    files: Annotated[
        list[int],
        Field(description="The positions of the files it hit, ascending; empty if none."),
    ]
    lastSeen: datetime


class TaskWithHistoryView(TaskView):
    """A task with each of its attempts, oldest first, and its errors grouped."""

    history: list[AttemptView]
    errorGroups: Annotated[
        list[ErrorGroupView],
        Field(description="Each distinct error once: the most recently seen first."),
    ]


class StoredAssetView(TypedDict):
    """A captured file as recorded (what `framehook jobs show` prints)."""

    id: int
    handler: str
    kind: str
    position: int
    sourceUrl: str
    storageUri: str
    key: str
    size: int
    contentType: str | None
    sha256: str
    storedAt: datetime


class AssetView(StoredAssetView):
    """A captured file, with a link that opens it."""

    contentUrl: Annotated[
        str,
        Field(description="The file, through this server, for an hour without the token."),
    ]


class _Timeline(JobView):
    deliveries: list[DeliveryWithBodyView]
    tasks: list[TaskWithHistoryView]


class TimelineView(_Timeline):
    """A job with everything that happened to it, as read from the database."""

    assets: list[StoredAssetView]


class JobTimelineView(_Timeline):
    """A job with its deliveries (in arrival order), tasks (with their attempts) and assets."""

    assets: list[AssetView]


class PageView(TypedDict, Generic[ItemT]):
    """One page of a list; `nextCursor` is null on the last one."""

    items: Sequence[ItemT]
    nextCursor: str | None


class RetriedView(TypedDict):
    """A task queued again."""

    ok: Literal[True]
    requeued: int
    task: TaskView


class ReplayedView(TypedDict):
    """A job's finished tasks queued again."""

    ok: Literal[True]
    jobId: str
    handler: str | None
    requeued: int
    tasks: list[TaskView]


class CreditTotalsView(TypedDict):
    """What a set of finished jobs cost."""

    completed: Annotated[int, Field(ge=0, description="Jobs completed (charged).")]
    failed: Annotated[int, Field(ge=0, description="Jobs failed (refunded: no credits).")]
    credits: Annotated[float, Field(description="Credits charged by the completed jobs.")]


class CreditRowView(CreditTotalsView):
    """The totals of one model or one UTC day."""

    key: Annotated[
        str | None,
        Field(description="The model (null: never named), or the UTC day (YYYY-MM-DD)."),
    ]


class CreditsView(TypedDict):
    """The credit ledger: totals, and one row per model or day."""

    by: Grouping
    since: datetime | None
    items: list[CreditRowView]
    total: CreditTotalsView


class ErrorView(TypedDict, total=False):
    """An error answer: `reason` says what went wrong, `detail` says it to a person."""

    ok: Literal[False]
    reason: Required[Annotated[str, Field(description="Machine-readable, stable.")]]
    error: str
    detail: str


def job_view(row: Row[Any]) -> JobView:
    """A job summary, from a row of ``receiver.admin.queries.job_summaries`` (which counts the
    stored files as ``files_stored`` and its unfinished tasks as ``open_tasks``)."""
    return {
        "id": row.id,
        "status": row.status,
        "progress": row.progress,
        "model": row.model,
        "result": row.result,
        "error": row.error,
        "creditCost": row.credit_cost,
        "test": bool(row.test),
        "createdAt": row.created_at,
        "completedAt": row.completed_at,
        "updatedAt": row.updated_at,
        "files": {"expected": row.files_expected, "stored": row.files_stored},
        "openTasks": row.open_tasks,
    }


def delivery_view(row: Row[Any]) -> DeliveryView:
    """A delivery, without its body."""
    return {
        "id": row.id,
        "jobId": row.job_id,
        "loraId": row.lora_id,
        "event": row.event,
        "headerEvent": row.header_event,
        "eventMismatch": bool(row.event_mismatch),
        "outcome": row.outcome,
        "source": row.source,
        "requestId": row.request_id,
        "keyIndex": row.key_index,
        "derivation": row.key_derivation,
        "receivedAt": row.received_at,
        "flags": row.flags.split(",") if row.flags else [],
    }


# orjson reads JSON nested 1,024 levels deep but writes only about 254, and the answer nests a
# body a few levels further: deeper bodies are shown as their text.
_DEEPEST_SHOWN_AS_JSON = 200


def delivery_with_body_view(row: Row[Any]) -> DeliveryWithBodyView:
    """A delivery with its body (``None`` once pruned; text when it is not JSON)."""
    raw = row.body
    # Pruned bodies are gone (NULL); a body that is not JSON (a "malformed" one) is shown as
    # text, undecodable bytes replaced.
    if raw is None:
        return {**delivery_view(row), "body": None, "bodyFormat": None}
    raw = bytes(raw)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    else:
        if depth(body, _DEEPEST_SHOWN_AS_JSON) <= _DEEPEST_SHOWN_AS_JSON:
            return {**delivery_view(row), "body": body, "bodyFormat": "json"}
    text = raw.decode("utf-8", "replace")
    return {**delivery_view(row), "body": text, "bodyFormat": "text"}


def task_view(row: Row[Any]) -> TaskView:
    """A task; ``attempts`` counts the runs so far."""
    return {
        "id": row.id,
        "jobId": row.job_id,
        "deliveryId": row.delivery_id,
        "handler": row.handler,
        "event": row.event,
        "status": row.status,
        "attempts": row.attempts,
        "lastError": row.last_error,
        "runAt": row.run_at,
        "finishedAt": row.finished_at,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
        "waitsFor": row.waits_for.split(",") if row.waits_for else [],
    }


def attempt_view(row: Row[Any]) -> AttemptView:
    """One run of a task, from ``task_attempts``."""
    return {
        "attempt": row.attempt,
        "worker": row.worker,
        "startedAt": row.started_at,
        "finishedAt": row.finished_at,
        "outcome": row.outcome,
        "error": row.error,
    }


def asset_view(row: Row[Any]) -> StoredAssetView:
    """A captured file (plus the handler that stored it, its key and when)."""
    return {
        "id": row.id,
        "handler": row.handler,
        "kind": row.kind,
        "position": row.position,
        "sourceUrl": row.source_url,
        "storageUri": row.storage_uri,
        "key": row.key,
        "size": row.size,
        "contentType": row.content_type,
        "sha256": row.sha256,
        "storedAt": row.stored_at,
    }


def _credit_totals(row: CreditRow) -> CreditTotalsView:
    return {"completed": row.completed, "failed": row.failed, "credits": row.credits}


def credits_view(totals: CreditTotals) -> CreditsView:
    """The ledger: ``{by, since, items: [{key, completed, failed, credits}], total}``."""
    return {
        "by": totals.by,
        "since": totals.since,
        "items": [{**_credit_totals(r), "key": r.key} for r in totals.rows],
        "total": _credit_totals(totals.total),
    }
