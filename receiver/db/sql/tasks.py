"""The task queue's hot-path SQL: claims, the rows their events are made of, outcomes in batches.

Plain SQL on the DBAPI cursor, like the intake's (``receiver.db.sql.dialect`` says why): a worker
claims and finishes thousands of tasks a second, and through SQLAlchemy Core one outcome cost
three times the CPU of the database's own work.
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
    ) -> list[ClaimRow]:
        """Claim up to ``limit`` due tasks in claim order (terminal events, then oldest).

        One statement: the subquery walks the partial index ``ix_tasks_claim`` and stops at
        LIMIT; on PostgreSQL it skips rows other workers hold, so claims never wait.
        """
        skip_locked = "" if self.sqlite else " FOR UPDATE SKIP LOCKED"
        p = self._param
        # Statuses as literals, not parameters: PostgreSQL uses the partial index only when it
        # can prove ``status = 'queued'``, which a prepared statement's generic plan cannot.
        sql = (
            f"UPDATE tasks SET status = '{TaskStatus.RUNNING.value}', attempts = attempts + 1, "
            f"lease_expires_at = {p('lease_until')}, claimed_by = {p('worker')}, "
            f"updated_at = {p('now')} "
            f"WHERE id IN (SELECT id FROM tasks WHERE status = '{TaskStatus.QUEUED.value}' "
            f"AND run_at <= {p('now')} AND handler IN ({self._in('h', len(handlers))}) "
            f"ORDER BY priority, run_at, id LIMIT {p('limit')}{skip_locked}) "
            f"RETURNING {', '.join(CLAIM_COLUMNS)}"
        )
        params: dict[str, Any] = {
            "now": self.ts(now),
            "lease_until": self.ts(lease_until),
            "worker": worker,
            "limit": limit,
        }
        params.update({f"h_{n}": h for n, h in enumerate(handlers)})
        cursor.execute(sql, params)
        return [ClaimRow(*row) for row in cursor.fetchall()]

    def events(self, cursor: Any, delivery_ids: Collection[int]) -> dict[int, EventRow]:
        """The events of these deliveries with their jobs (or LoRAs) as they stand, by
        delivery id.

        A delivery whose raw body was pruned is left out: there is nothing to run.
        """
        if not delivery_ids:
            return {}
        columns = (
            *(f"d.{c}" for c in EVENT_COLUMNS),
            *(f"j.{c}" for c in JOB_STATE_COLUMNS),
            *(f"l.{c}" for c in LORA_EVENT_COLUMNS),
        )
        sql = (
            f"SELECT {', '.join(columns)} "
            "FROM deliveries d LEFT JOIN jobs j ON j.id = d.job_id "
            "LEFT JOIN loras l ON l.id = d.lora_id "
            f"WHERE d.body IS NOT NULL AND d.id IN ({self._in('d', len(delivery_ids))})"
        )
        cursor.execute(sql, {f"d_{n}": i for n, i in enumerate(delivery_ids)})
        rows: dict[int, EventRow] = {}
        jobs_at = len(EVENT_COLUMNS)
        loras_at = jobs_at + len(JOB_STATE_COLUMNS)
        for row in cursor.fetchall():
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
            rows[delivery_id] = EventRow(
                delivery_id=delivery_id,
                payload=orjson.loads(body),
                received_at=received,
                source=source,
                event=event,
                job=job,
                lora=lora,
            )
        return rows

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
        columns = ("id", "attempt", "status", "run_at", "finished_at", "error")
        casts = ("BIGINT", "INTEGER", "TEXT", "TIMESTAMPTZ", "TIMESTAMPTZ", "TEXT")
        stamp = self.ts(now)

        def values(n: int) -> str:
            params = (self._param(f"{c}_{n}") for c in columns)
            if self.sqlite:
                return "(" + ", ".join(params) + ")"
            return (
                "("
                + ", ".join(f"CAST({p} AS {t})" for p, t in zip(params, casts, strict=True))
                + ")"
            )

        sql = (
            f"WITH v ({', '.join(columns)}) AS "
            f"(VALUES {', '.join(values(n) for n in range(len(outcomes)))}) "
            f"UPDATE tasks SET status = v.status, run_at = COALESCE(v.run_at, tasks.run_at), "
            f"finished_at = v.finished_at, last_error = v.error, lease_expires_at = NULL, "
            f"updated_at = {self._param('now')} "
            f"FROM v WHERE tasks.id = v.id AND tasks.attempts = v.attempt "
            f"AND tasks.status = '{TaskStatus.RUNNING.value}' "
            f"RETURNING tasks.id, tasks.delivery_id, EXISTS (SELECT 1 FROM tasks w "
            f"WHERE w.delivery_id = tasks.delivery_id "
            f"AND w.status = '{TaskStatus.WAITING.value}')"
        )
        params: dict[str, Any] = {"now": stamp}
        for n, o in enumerate(outcomes):
            retry = o.status == TaskStatus.QUEUED
            params[f"id_{n}"] = o.task_id
            params[f"attempt_{n}"] = o.attempt
            params[f"status_{n}"] = o.status
            params[f"run_at_{n}"] = self.ts(o.run_at) if retry else None
            params[f"finished_at_{n}"] = None if retry else stamp
            params[f"error_{n}"] = o.error
        cursor.execute(sql, params)
        returned = cursor.fetchall()
        kept = {row[0] for row in returned}
        ended = {o.task_id for o in outcomes if o.status != TaskStatus.QUEUED}
        release = {delivery for task, delivery, waits in returned if waits and task in ended}
        if release:
            self.waiting.release(cursor, release, now)
        attempts = [
            (o.task_id, o.attempt, worker, self.ts(o.started_at), stamp, o.outcome, o.error)
            for o in outcomes
            if o.task_id in kept
        ]
        if attempts:
            cursor.execute(
                f"INSERT INTO task_attempts ({', '.join(ATTEMPT_COLUMNS)}) "
                f"VALUES {self._values(ATTEMPT_COLUMNS, len(attempts))}",
                self._flatten(ATTEMPT_COLUMNS, attempts),
            )
        return kept
