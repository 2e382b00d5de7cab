"""Releasing waiting tasks: when a task ends, its delivery's waiting tasks may run.

A task of a handler with ``after`` is created ``waiting`` when a task of a handler it names was
created for the same delivery; ``tasks.waits_for`` keeps those names (``receiver.queue.order``
states the rule). It stays ``waiting`` while any task of its delivery that it names is
unfinished (``queued``, ``running`` or ``waiting``). Every path that ends a task (an attempt's
outcome, a lease that ran out on the last attempt, a superseded progress task) calls
:meth:`WaitingSql.release` for the task's delivery in the same transaction, so a waiting task
is queued exactly when the last task it names has ended, and never before that commits.

Concurrency: on PostgreSQL two tasks a waiting task names may end at once, in two
transactions, each seeing the other still running. So ``release`` first locks the delivery's
waiting tasks (in id order: releasers never deadlock on each other), then reads what is
unfinished in a second statement. Under READ COMMITTED that statement takes a new snapshot:
the second releaser, which waited for the first one's lock, sees its commit. SQLite has one
writer at a time, so there is nothing to race.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from receiver.db.models import TaskStatus
from receiver.db.sql.dialect import DialectSql

__all__ = ["UNFINISHED", "WaitingSql", "chunks", "waits_for"]

# The channel workers LISTEN on (``receiver.queue.notify.CHANNEL``; the intake's too).
_CHANNEL = "framehook_tasks"
UNFINISHED = (TaskStatus.WAITING, TaskStatus.QUEUED, TaskStatus.RUNNING)
"""A task in one of these may still run: a task that names it waits."""

T = TypeVar("T")
# Parameters per statement: well under SQLite's limit (32,766) and PostgreSQL's (65,535).
_CHUNK = 500


def chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``: an ``IN`` list stays within the driver's
    parameter limit however many tasks a replay touches."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def waits_for(value: str | None) -> frozenset[str]:
    """The handler names stored in ``tasks.waits_for`` (comma-separated, or NULL)."""
    return frozenset(value.split(",")) if value else frozenset()


def _literals(statuses: Collection[TaskStatus]) -> str:
    return ", ".join(f"'{s.value}'" for s in statuses)


class WaitingSql(DialectSql):
    """The release statements for one dialect (``sqlite`` or ``postgresql``)."""

    def release(self, cursor: Any, delivery_ids: Collection[int], now: datetime) -> int:
        """Queue (due ``now``) the waiting tasks of these deliveries none of whose named
        tasks is unfinished; return how many. On PostgreSQL, notifies workers (delivered at
        commit). Runs in the caller's transaction, after it ended the tasks."""
        if not delivery_ids:
            return 0
        lock = "" if self.sqlite else " FOR UPDATE"
        waiting: list[tuple[int, int, str | None]] = []
        for part in chunks(sorted(set(delivery_ids))):
            # Statuses as literals: PostgreSQL then proves the partial index ix_tasks_waiting.
            cursor.execute(
                "SELECT id, delivery_id, waits_for FROM tasks "
                f"WHERE status = '{TaskStatus.WAITING.value}' "
                f"AND delivery_id IN ({self._in('d', len(part))}) ORDER BY id{lock}",
                {f"d_{n}": d for n, d in enumerate(part)},
            )
            waiting += cursor.fetchall()
        if not waiting:
            return 0
        busy = self.unfinished(cursor, {d for _, d, _ in waiting})
        ready = [i for i, d, names in waiting if not waits_for(names) & busy.get(d, set())]
        for part in chunks(ready):
            params: dict[str, Any] = {f"t_{n}": i for n, i in enumerate(part)}
            params["now"] = self.ts(now)
            cursor.execute(
                f"UPDATE tasks SET status = '{TaskStatus.QUEUED.value}', "
                f"run_at = {self._param('now')}, updated_at = {self._param('now')} "
                f"WHERE status = '{TaskStatus.WAITING.value}' "
                f"AND id IN ({self._in('t', len(part))})",
                params,
            )
        if ready and not self.sqlite:
            cursor.execute(f"NOTIFY {_CHANNEL}")
        return len(ready)

    def unfinished(self, cursor: Any, delivery_ids: Collection[int]) -> dict[int, set[str]]:
        """The handlers of each delivery's unfinished tasks."""
        busy: dict[int, set[str]] = {}
        for part in chunks(sorted(delivery_ids)):
            cursor.execute(
                "SELECT delivery_id, handler FROM tasks "
                f"WHERE status IN ({_literals(UNFINISHED)}) "
                f"AND delivery_id IN ({self._in('d', len(part))})",
                {f"d_{n}": d for n, d in enumerate(part)},
            )
            for delivery_id, handler in cursor.fetchall():
                busy.setdefault(delivery_id, set()).add(handler)
        return busy
