"""The task queue's hot-path SQL: claims, the rows their events are made of, outcomes in batches.

Plain SQL on the DBAPI cursor, like the intake's (``receiver.db.sql.dialect`` says why): a worker
claims and finishes thousands of tasks a second, and through SQLAlchemy Core one outcome cost
three times the CPU of the database's own work.

On PostgreSQL a batch travels as one array per column (``unnest``, ``= ANY``), so each
statement's text is the same whatever the batch size: psycopg converts it once and prepares it,
where a ``VALUES`` list of one placeholder per value cost more to parse than to run. A claim
reads its events in the same statement, and an outcome writes its attempt row in the same
statement, so each is one round trip. SQLite, in process, keeps the plain lists.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import orjson

from receiver.db.models import AttemptOutcome, TaskStatus
from receiver.db.sql.dialect import DialectSql
from receiver.db.sql.intake import JOB_STATE_COLUMNS, JobRow
from receiver.db.sql.waiting import WaitingSql

__all__ = ["AttemptResult", "ClaimRow", "EventRow", "LoraEventRow", "TaskSql"]

ATTEMPT_COLUMNS = ("task_id", "attempt", "worker", "started_at", "finished_at", "outcome", "error")
# What a claimed task's event is read from: its delivery, and its job's or LoRA's row.
EVENT_COLUMNS = ("id", "body", "received_at", "source", "job_id", "event", "lora_id")
# An outcome's values (of a task and of its attempt, so not one table's columns), one array
# each on PostgreSQL, with the arrays' types.
FINISH_FIELDS = (
    "id", "attempt", "status", "run_at", "finished_at", "error", "started_at", "outcome",
)  # fmt: skip
FINISH_TYPES = (
    "bigint",
    "int",
    "text",
    "timestamptz",
    "timestamptz",
    "text",
    "timestamptz",
    "text",
)
LORA_EVENT_COLUMNS = ("status", "name", "trigger_word", "error", "created_at", "completed_at")


@dataclass(frozen=True, slots=True)
class ClaimRow:
    """What a claim returns for each task (its fields are the ``tasks`` columns it returns)."""

    id: int
    handler: str
    attempts: int
    delivery_id: int
    attempt_offset: int
    event: str = ""


CLAIM_COLUMNS = tuple(f.name for f in fields(ClaimRow))
# A claimed task's event columns, in the order ``_event_row`` reads them.
EVENT_SELECT = (
    *(f"d.{c}" for c in EVENT_COLUMNS),
    *(f"j.{c}" for c in JOB_STATE_COLUMNS),
    *(f"l.{c}" for c in LORA_EVENT_COLUMNS),
)
EVENT_JOINS = "LEFT JOIN jobs j ON j.id = d.job_id LEFT JOIN loras l ON l.id = d.lora_id"


@dataclass(frozen=True, slots=True)
class LoraEventRow:
    """A LoRA as its ``loras`` row stands; ``status`` is ``None`` when the row is missing."""

    id: str
    status: str | None
    name: str | None
    trigger_word: str | None
    error: str | None
    created_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventRow:
    """A claimed task's delivery, with its job (``lora`` is ``None``) or its LoRA (``job`` is
    ``None``) as the database has it now. Turning it into a handler's event is the queue's job.
    """

    delivery_id: int
    payload: Any
    """The body as received, decoded."""
    received_at: datetime
    source: str
    event: str
    """The delivery's event name (a task is only ever queued for a delivery that has one)."""
    job: JobRow | None
    lora: LoraEventRow | None


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """How one attempt ended, to be recorded with others in one transaction.

    ``status`` is the task's next status (``succeeded``, ``dead``, or ``queued`` again with
    ``run_at``); ``outcome`` is the attempt's own (``succeeded``, ``retry``, ``dead``).
    """

    task_id: int
    attempt: int
    status: TaskStatus
    outcome: AttemptOutcome
    started_at: datetime
    error: str | None = None
    run_at: datetime | None = None


class TaskSql(DialectSql):
    """The queue's statements for one dialect (``sqlite`` or ``postgresql``)."""

    def __init__(self, dialect: str) -> None:
        super().__init__(dialect)
        self.waiting = WaitingSql(dialect)

    def claim(
        self,
        cursor: Any,
        handlers: Collection[str],
        limit: int,
        now: datetime,
        lease_until: datetime,
        worker: str,
    ) -> tuple[list[ClaimRow], dict[int, EventRow]]:
        """Claim up to ``limit`` due tasks in claim order (terminal events, then oldest), with
        their events by delivery id (see ``events``).

        The subquery walks the partial index ``ix_tasks_claim`` and stops at LIMIT; on
        PostgreSQL it skips rows other workers hold, so claims never wait, and the events come
        back from the same statement. There its ids are an array (``= ANY(ARRAY(...))``), so
        the update probes the primary key for exactly those rows: with ``IN (subquery)`` the
        planner hashed the ids and scanned the whole table against them (3,000 queued tasks
        were enough), a cost that grew with the table; 128 tasks of 20,000 took 4.9 ms, now
        2.4.
        """
        p = self._param
        sets = (
            f"SET status = '{TaskStatus.RUNNING.value}', attempts = attempts + 1, "
            f"lease_expires_at = {p('lease_until')}, claimed_by = {p('worker')}, "
            f"updated_at = {p('now')}"
        )
        params: dict[str, Any] = {
            "now": self.ts(now),
            "lease_until": self.ts(lease_until),
            "worker": worker,
            "limit": limit,
        }
        # Statuses as literals, not parameters: PostgreSQL uses the partial index only when it
        # can prove ``status = 'queued'``, which a prepared statement's generic plan cannot.
        due = f"status = '{TaskStatus.QUEUED.value}' AND run_at <= {p('now')}"
        order = "ORDER BY priority, run_at, id"
        if self.sqlite:
            params.update({f"h_{n}": h for n, h in enumerate(handlers)})
            cursor.execute(
                f"UPDATE tasks {sets} WHERE id IN (SELECT id FROM tasks WHERE {due} "
                f"AND handler IN ({self._in('h', len(handlers))}) {order} LIMIT {p('limit')}) "
                f"RETURNING {', '.join(CLAIM_COLUMNS)}",
                params,
            )
            rows = [ClaimRow(*row) for row in cursor.fetchall()]
            return rows, self.events(cursor, {r.delivery_id for r in rows})
        params["handlers"] = list(handlers)
        cursor.execute(
            f"WITH c AS (UPDATE tasks {sets} WHERE id = ANY(ARRAY(SELECT id FROM tasks WHERE "
            f"{due} AND handler = ANY({p('handlers')}) {order} LIMIT {p('limit')} "
            f"FOR UPDATE SKIP LOCKED)) RETURNING {', '.join(CLAIM_COLUMNS)}, priority, run_at) "
            f"SELECT {', '.join(f'c.{c}' for c in CLAIM_COLUMNS)}, {', '.join(EVENT_SELECT)} "
            "FROM c LEFT JOIN deliveries d ON d.id = c.delivery_id AND d.body IS NOT NULL "
            f"{EVENT_JOINS} ORDER BY c.priority, c.run_at, c.id",
            params,
        )
        rows, events = [], {}
        width = len(CLAIM_COLUMNS)
        for row in cursor.fetchall():
            rows.append(ClaimRow(*row[:width]))
            if row[width] is not None:  # the delivery's body is there
                events[row[width]] = self._event_row(row[width:])
        return rows, events

    def events(self, cursor: Any, delivery_ids: Collection[int]) -> dict[int, EventRow]:
        """The events of these deliveries with their jobs (or LoRAs) as they stand, by
        delivery id.

        A delivery whose raw body was pruned is left out: there is nothing to run.
        """
        if not delivery_ids:
            return {}
        params: dict[str, Any]
        if self.sqlite:
            where = f"d.id IN ({self._in('d', len(delivery_ids))})"
            params = {f"d_{n}": i for n, i in enumerate(delivery_ids)}
        else:
            where, params = f"d.id = ANY({self._param('ids')})", {"ids": list(delivery_ids)}
        cursor.execute(
            f"SELECT {', '.join(EVENT_SELECT)} FROM deliveries d {EVENT_JOINS} "
            f"WHERE d.body IS NOT NULL AND {where}",
            params,
        )
        return {row[0]: self._event_row(row) for row in cursor.fetchall()}

    def _event_row(self, row: Sequence[Any]) -> EventRow:
        """An ``EventRow`` from the columns of ``EVENT_SELECT``."""
        jobs_at = len(EVENT_COLUMNS)
        loras_at = jobs_at + len(JOB_STATE_COLUMNS)
        delivery_id, body, received_at, source, job_id, event, lora_id = row[:jobs_at]
        received = self._read_ts(received_at)
        assert received is not None
        job = lora = None
        if lora_id is not None:
            status, name, trigger_word, error, created_at, completed_at = row[loras_at:]
            lora = LoraEventRow(
                id=lora_id,
                status=status,
                name=name,
                trigger_word=trigger_word,
                error=error,
                created_at=self._read_ts(created_at),
                completed_at=self._read_ts(completed_at),
            )
        else:
            status, progress, model, result, error, credit_cost, completed_at = row[
                jobs_at:loras_at
            ]
            job = JobRow(
                id=job_id,
                status=status,
                progress=progress,
                model=model,
                result=self._read_json(result),
                error=error,
                credit_cost=credit_cost,
                completed_at=self._read_ts(completed_at),
            )
        return EventRow(
            delivery_id=delivery_id,
            payload=orjson.loads(body),
            received_at=received,
            source=source,
            event=event,
            job=job,
            lora=lora,
        )

    def finish(
        self, cursor: Any, outcomes: Sequence[AttemptResult], worker: str, now: datetime
    ) -> set[int]:
        """Record outcomes; return the ids of the tasks whose outcome was kept.

        Fenced: an outcome is kept only while its task is still running the same attempt. A
        worker frozen past its lease, whose task was claimed again, writes nothing, and no
        attempt row either. A task that ended releases its delivery's waiting tasks in the
        same transaction (``receiver.db.sql.waiting``); whether its delivery has any comes
        back with the update itself, so the usual outcome costs no extra statement.
        """
        if not outcomes:
            return set()
        stamp = self.ts(now)
        rows = [
            (
                o.task_id,
                o.attempt,
                str(o.status),
                self.ts(o.run_at) if o.status == TaskStatus.QUEUED else None,
                None if o.status == TaskStatus.QUEUED else stamp,
                o.error,
                self.ts(o.started_at),
                str(o.outcome),
            )
            for o in outcomes
        ]
        sets = (
            "SET status = v.status, run_at = COALESCE(v.run_at, tasks.run_at), "
            "finished_at = v.finished_at, last_error = v.error, lease_expires_at = NULL, "
            f"updated_at = {self._param('now')} FROM v WHERE tasks.id = v.id "
            f"AND tasks.attempts = v.attempt AND tasks.status = '{TaskStatus.RUNNING.value}' "
            "RETURNING tasks.id, tasks.delivery_id, EXISTS (SELECT 1 FROM tasks w "
            "WHERE w.delivery_id = tasks.delivery_id "
            f"AND w.status = '{TaskStatus.WAITING.value}') AS waits"
        )
        if self.sqlite:
            returned = self._finish_sqlite(cursor, rows, sets, worker, stamp)
        else:
            returned = self._finish_postgres(cursor, rows, sets, worker, stamp)
        kept = {row[0] for row in returned}
        ended = {o.task_id for o in outcomes if o.status != TaskStatus.QUEUED}
        release = {delivery for task, delivery, waits in returned if waits and task in ended}
        if release:
            self.waiting.release(cursor, release, now)
        return kept

    def _finish_postgres(
        self, cursor: Any, rows: Sequence[tuple[Any, ...]], sets: str, worker: str, stamp: Any
    ) -> list[tuple[int, int, bool]]:
        # One statement: the update, and the attempt rows of the outcomes it kept.
        arrays = ", ".join(
            f"{self._param(c)}::{t}[]" for c, t in zip(FINISH_FIELDS, FINISH_TYPES, strict=True)
        )
        cursor.execute(
            f"WITH v ({', '.join(FINISH_FIELDS)}) AS (SELECT * FROM unnest({arrays})), "
            f"done AS (UPDATE tasks {sets}, v.attempt, v.started_at, v.outcome, v.error), "
            f"logged AS (INSERT INTO task_attempts ({', '.join(ATTEMPT_COLUMNS)}) "
            f"SELECT id, attempt, {self._param('worker')}, started_at, {self._param('now')}, "
            "outcome, error FROM done) "
            "SELECT id, delivery_id, waits FROM done",
            {"now": stamp, "worker": worker}
            | {
                c: list(values)
                for c, values in zip(FINISH_FIELDS, zip(*rows, strict=True), strict=True)
            },
        )
        return cursor.fetchall()  # type: ignore[no-any-return]

    def _finish_sqlite(
        self, cursor: Any, rows: Sequence[tuple[Any, ...]], sets: str, worker: str, stamp: Any
    ) -> list[tuple[int, int, bool]]:
        columns = FINISH_FIELDS[:6]  # the attempt rows' own columns are written apart
        cursor.execute(
            f"WITH v ({', '.join(columns)}) AS (VALUES {self._values(columns, len(rows))}) "
            f"UPDATE tasks {sets}",
            {"now": stamp} | self._flatten(columns, [row[:6] for row in rows]),
        )
        returned: list[tuple[int, int, bool]] = cursor.fetchall()
        kept = {row[0] for row in returned}
        attempts = [
            (task, attempt, worker, started, stamp, outcome, error)
            for task, attempt, _s, _r, _f, error, started, outcome in rows
            if task in kept
        ]
        if attempts:
            cursor.execute(
                f"INSERT INTO task_attempts ({', '.join(ATTEMPT_COLUMNS)}) "
                f"VALUES {self._values(ATTEMPT_COLUMNS, len(attempts))}",
                self._flatten(ATTEMPT_COLUMNS, attempts),
            )
        return returned
