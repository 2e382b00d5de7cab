"""The intake's SQL: one multi-row statement per step of a batch, on the DBAPI cursor.

SQLAlchemy still owns connections and transactions; why the statements are plain SQL, and the
value formats they write, is in ``receiver.db.sql.dialect``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from receiver.db.models import TaskStatus
from receiver.db.sql.dialect import DialectSql

__all__ = ["IntakeSql", "JobRow"]

DELIVERY_COLUMNS = (
    "received_at",
    "source",
    "request_id",
    "job_id",
    "lora_id",
    "event",
    "header_event",
    "event_mismatch",
    "flags",
    "outcome",
    "dedupe_key",
    "fingerprint",
    "key_index",
    "key_derivation",
    "remote_addr",
    "body",
)
JOB_STATE_COLUMNS = (
    "status",
    "progress",
    "model",
    "result",
    "error",
    "credit_cost",
    "completed_at",
)
# A job first seen: the rest of its state comes from the events.
NEW_JOB_COLUMNS = ("id", "status", "progress", "created_at", "updated_at")
LEDGER_COLUMNS = ("key", "fingerprint", "first_seen_at")
TASK_COLUMNS = (
    "delivery_id",
    "job_id",
    "handler",
    "event",
    "status",
    "priority",
    "attempts",
    "run_at",
    "created_at",
    "updated_at",
    "waits_for",
)


@dataclass(frozen=True, slots=True)
class JobRow:
    """A ``jobs`` row's state: what the state machine moves, and a claimed task's job."""

    id: str
    status: str
    progress: int
    model: str | None
    result: Any
    error: str | None
    credit_cost: float | None
    completed_at: datetime | None


class IntakeSql(DialectSql):
    """The intake's statements for one dialect (``sqlite`` or ``postgresql``)."""

    def claim(self, cursor: Any, rows: Sequence[tuple[str, str, Any]]) -> set[str]:
        """Insert ledger keys ``(key, fingerprint, ts(first_seen_at))``; return the new ones."""
        sql = (
            f'INSERT INTO ledger ("key", fingerprint, first_seen_at) '
            f"VALUES {self._rows(len(LEDGER_COLUMNS), len(rows))} "
            f'ON CONFLICT ("key") DO NOTHING RETURNING "key"'
        )
        cursor.execute(sql, self._row_params(rows))
        return {row[0] for row in cursor.fetchall()}

    def fingerprints(self, cursor: Any, keys: Sequence[str]) -> dict[str, str]:
        """The fingerprint first stored under each of ``keys``."""
        sql = f'SELECT "key", fingerprint FROM ledger WHERE "key" IN ({self._marks(len(keys))})'
        cursor.execute(sql, list(keys))
        return {row[0]: row[1] for row in cursor.fetchall()}

    def create_jobs(self, cursor: Any, ids: Sequence[str], first_seen: dict[str, Any]) -> set[str]:
        """Insert ``QUEUED`` rows for jobs not seen yet (``first_seen``: ``ts()`` values);
        return the ids created."""
        sql = (
            f"INSERT INTO jobs ({', '.join(NEW_JOB_COLUMNS)}) "
            f"VALUES {self._rows(len(NEW_JOB_COLUMNS), len(ids))} "
            f"ON CONFLICT (id) DO NOTHING RETURNING id"
        )
        rows = [(j, "QUEUED", 0, first_seen[j], first_seen[j]) for j in ids]
        cursor.execute(sql, self._row_params(rows))
        return {row[0] for row in cursor.fetchall()}

    def lock_jobs(self, cursor: Any, ids: Sequence[str]) -> list[tuple[JobRow, bool]]:
        """Read and lock jobs in id order (writers never deadlock on each other): each row's
        state, and whether it is a test job (``jobs.test``; the state machine reads it, a
        claimed task's job does not)."""
        lock = "" if self.sqlite else " FOR UPDATE"
        sql = (
            f"SELECT {', '.join(('id', *JOB_STATE_COLUMNS, 'test'))} FROM jobs "
            f"WHERE id IN ({self._marks(len(ids))}) ORDER BY id{lock}"
        )
        cursor.execute(sql, list(ids))
        return [
            (
                JobRow(
                    id=r[0],
                    status=r[1],
                    progress=r[2],
                    model=r[3],
                    result=self._read_json(r[4]),
                    error=r[5],
                    credit_cost=r[6],
                    completed_at=self._read_ts(r[7]),
                ),
                bool(r[8]),
            )
            for r in cursor.fetchall()
        ]

    def update_jobs(self, cursor: Any, rows: Iterable[dict[str, Any]]) -> None:
        """Write new states: each row has ``id``, the state columns, ``test``,
        ``files_expected`` and ``updated_at`` (already a ``ts()`` value)."""
        # files_expected is written, never read back: it is set with the terminal state, after
        # which a job's row does not change (so it is no part of what the state machine reads).
        sets = ", ".join(
            f"{c} = {self._json_param(c) if c == 'result' else self._param(c)}"
            for c in (*JOB_STATE_COLUMNS, "test", "files_expected", "updated_at")
        )
        sql = f"UPDATE jobs SET {sets} WHERE id = {self._param('id')}"
        params = [
            {
                **row,
                "result": self.json(row["result"]),
                "completed_at": self.ts(row["completed_at"]),
                "test": self.flag(row["test"]),
            }
            for row in rows
        ]
        if params:
            cursor.executemany(sql, params)

    def add_deliveries(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> list[int]:
        """Insert deliveries (values in ``DELIVERY_COLUMNS`` order); return ids in row order.

        Both SQLite (rowid) and PostgreSQL (sequence) number the rows of one INSERT in row
        order, so the sorted ids are the rows' ids in order.
        """
        sql = (
            f"INSERT INTO deliveries ({', '.join(DELIVERY_COLUMNS)}) "
            f"VALUES {self._rows(len(DELIVERY_COLUMNS), len(rows))} RETURNING id"
        )
        cursor.execute(sql, self._row_params(rows))
        return sorted(row[0] for row in cursor.fetchall())

    def add_tasks(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        """Insert tasks (values in ``TASK_COLUMNS`` order); on PostgreSQL, notify workers."""
        values = self._rows(len(TASK_COLUMNS), len(rows))
        sql = f"INSERT INTO tasks ({', '.join(TASK_COLUMNS)}) VALUES {values}"
        cursor.execute(sql, self._row_params(rows))
        if not self.sqlite:
            # Delivered at commit, when the tasks become visible (receiver.queue.notify).
            cursor.execute("NOTIFY framehook_tasks")

    def supersede_progress(
        self, cursor: Any, pairs: Sequence[tuple[str, str]], now: Any
    ) -> list[int]:
        """Mark queued (or waiting) progress tasks of these ``(job id, handler)`` pairs
        ``superseded``: a newer event for the same job and handler is being queued. Returns
        the deliveries of the tasks superseded (tasks that waited for them may run now)."""
        unique = sorted(set(pairs))
        rows = ", ".join(
            f"({self._param(f'j_{n}')}, {self._param(f'h_{n}')})" for n in range(len(unique))
        )
        jobs = sorted({job for job, _ in unique})
        # The plain job_id IN lets SQLite search ix_tasks_job_handler; with only the row-value
        # IN it scans every queued task in each batch (measured: p99 ack latency x4).
        sql = (
            f"UPDATE tasks SET status = '{TaskStatus.SUPERSEDED.value}', "
            f"updated_at = {self._param('now')}, finished_at = {self._param('now')} "
            f"WHERE status IN ('{TaskStatus.QUEUED.value}', '{TaskStatus.WAITING.value}') "
            f"AND event = 'progress' "
            f"AND job_id IN ({self._in('k', len(jobs))}) AND (job_id, handler) IN ({rows}) "
            "RETURNING delivery_id"
        )
        params: dict[str, Any] = {"now": now}
        params.update({f"k_{n}": job for n, job in enumerate(jobs)})
        for n, (job, handler) in enumerate(unique):
            params[f"j_{n}"] = job
            params[f"h_{n}"] = handler
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]
