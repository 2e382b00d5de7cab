"""The task queue's hot-path SQL: claims, the events they carry, and outcomes in batches.

Plain SQL on the DBAPI cursor, like the intake's (``receiver.db.sql.dialect`` says why): a worker
claims and finishes thousands of tasks a second, and through SQLAlchemy Core one outcome cost
three times the CPU of the database's own work.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from handlers import JobEvent, JobSnapshot, LoraEvent, LoraSnapshot
from receiver.apiframe.loras import LoraStatus, lora_event_name, recognise_lora
from receiver.db.sql.dialect import DialectSql

__all__ = ["AttemptResult", "ClaimRow", "TaskSql"]

_CLAIM_RETURNS = "id, handler, attempts, delivery_id, attempt_offset, event"
_ATTEMPT_COLUMNS = ("task_id", "attempt", "worker", "started_at", "finished_at", "outcome", "error")


@dataclass(frozen=True, slots=True)
class ClaimRow:
    """What a claim returns for each task."""

    id: int
    handler: str
    attempts: int
    delivery_id: int
    attempt_offset: int
    event: str = ""


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """How one attempt ended, to be recorded with others in one transaction.

    ``status`` is the task's next status (``succeeded``, ``dead``, or ``queued`` again with
    ``run_at``); ``outcome`` is the attempt's own (``succeeded``, ``retry``, ``dead``).
    """

    task_id: int
    attempt: int
    status: str
    outcome: str
    started_at: datetime
    error: str | None = None
    run_at: datetime | None = None


class TaskSql(DialectSql):
    """The queue's statements for one dialect (``sqlite`` or ``postgresql``)."""

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
        sql = (
            f"UPDATE tasks SET status = 'running', attempts = attempts + 1, "
            f"lease_expires_at = {p('lease_until')}, claimed_by = {p('worker')}, "
            f"updated_at = {p('now')} "
            f"WHERE id IN (SELECT id FROM tasks WHERE status = 'queued' "
            f"AND run_at <= {p('now')} AND handler IN ({self._in('h', len(handlers))}) "
            f"ORDER BY priority, run_at, id LIMIT {p('limit')}{skip_locked}) "
            f"RETURNING {_CLAIM_RETURNS}"
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

    def events(
        self,
        cursor: Any,
        delivery_ids: Collection[int],
        names: Mapping[int, str] | None = None,
    ) -> dict[int, JobEvent]:
        """The events of these deliveries with their jobs (or LoRAs) as they stand, by
        delivery id; ``names`` are their tasks' event names (a LoRA event's, ``lora.ready``,
        is not in its body).

        A delivery whose raw body was pruned is left out: there is nothing to run.
        """
        if not delivery_ids:
            return {}
        sql = (
            "SELECT d.id, d.body, d.received_at, d.source, d.job_id, d.event, j.status, "
            "j.progress, j.model, j.result, j.error, j.credit_cost, j.completed_at, "
            "d.lora_id, l.status, l.name, l.trigger_word, l.error, l.created_at, "
            "l.completed_at "
            "FROM deliveries d LEFT JOIN jobs j ON j.id = d.job_id "
            "LEFT JOIN loras l ON l.id = d.lora_id "
            f"WHERE d.body IS NOT NULL AND d.id IN ({self._in('d', len(delivery_ids))})"
        )
        cursor.execute(sql, {f"d_{n}": i for n, i in enumerate(delivery_ids)})
        events: dict[int, JobEvent] = {}
        for row in cursor.fetchall():
            delivery_id, body, received_at, source, job_id, event = row[:6]
            received = self._read_ts(received_at)
            assert received is not None
            payload = orjson.loads(body)
            if row[13] is not None:
                name = (names or {}).get(delivery_id)
                events[delivery_id] = self._lora_event(
                    row[13:], name, payload, delivery_id, received, source
                )
                continue
            status, progress, model, result, error, credit_cost, completed_at = row[6:13]
            snapshot = JobSnapshot(
                id=job_id,
                status=status,
                progress=progress,
                model=model,
                result=self._read_json(result),
                error=error,
                credit_cost=credit_cost,
                completed_at=self._read_ts(completed_at),
            )
            events[delivery_id] = JobEvent(
                event=event,
                job_id=job_id,
                payload=payload,
                delivery_id=delivery_id,
                received_at=received,
                source=source,
                job=snapshot,
            )
        return events

    def _lora_event(
        self,
        lora_row: Sequence[Any],
        name: str | None,
        payload: Any,
        delivery_id: int,
        received: datetime,
        source: str,
    ) -> LoraEvent:
        """A LoRA delivery's event, named as its task was queued (else after the status its
        body reported, else the LoRA's own), with the LoRA as it stands."""
        lora_id, status, lora_name, trigger_word, error, created_at, completed_at = lora_row
        if not name:
            notice = recognise_lora(payload) if isinstance(payload, dict) else None
            reported = notice.status if notice is not None else str(status)
            name = lora_event_name(reported) or "lora.unknown"
        lora = LoraSnapshot(
            id=lora_id,
            status=status or LoraStatus.UNKNOWN.value,
            name=lora_name,
            trigger_word=trigger_word,
            error=error,
            created_at=self._read_ts(created_at),
            completed_at=self._read_ts(completed_at),
        )
        ended = lora.status in ("READY", "FAILED", "ARCHIVED")
        job = JobSnapshot(
            id=lora_id,
            status=lora.status,
            progress=100 if ended else 0,
            error=error,
            completed_at=lora.completed_at,
        )
        return LoraEvent(
            event=name,
            job_id=lora_id,
            payload=payload,
            delivery_id=delivery_id,
            received_at=received,
            source=source,
            job=job,
            lora=lora,
        )

    def finish(
        self, cursor: Any, outcomes: Sequence[AttemptResult], worker: str, now: datetime
    ) -> set[int]:
        """Record outcomes; return the ids of the tasks whose outcome was kept.

        Fenced: an outcome is kept only while its task is still running the same attempt. A
        worker frozen past its lease, whose task was claimed again, writes nothing, and no
        attempt row either.
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
            f"AND tasks.status = 'running' RETURNING tasks.id"
        )
        params: dict[str, Any] = {"now": stamp}
        for n, o in enumerate(outcomes):
            retry = o.status == "queued"
            params[f"id_{n}"] = o.task_id
            params[f"attempt_{n}"] = o.attempt
            params[f"status_{n}"] = o.status
            params[f"run_at_{n}"] = self.ts(o.run_at) if retry else None
            params[f"finished_at_{n}"] = None if retry else stamp
            params[f"error_{n}"] = o.error
        cursor.execute(sql, params)
        kept = {row[0] for row in cursor.fetchall()}
        attempts = [
            (o.task_id, o.attempt, worker, self.ts(o.started_at), stamp, o.outcome, o.error)
            for o in outcomes
            if o.task_id in kept
        ]
        if attempts:
            _ATTEMPT_COLUMNS = (
                "task_id",
                "attempt",
                "worker",
                "started_at",
                "finished_at",
                "outcome",
                "error",
            )
            cursor.execute(
                f"INSERT INTO task_attempts ({', '.join(_ATTEMPT_COLUMNS)}) "
                f"VALUES {self._values(_ATTEMPT_COLUMNS, len(attempts))}",
                self._flatten(_ATTEMPT_COLUMNS, attempts),
            )
        return kept
