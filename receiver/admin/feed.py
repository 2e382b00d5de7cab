"""The live feed behind ``GET /api/events``: what changed since the last look, as events.

Each open stream polls the database (once a second by default) rather than listening to this
process: receivers and workers may be other processes or other machines, and the database is
the one place where all their changes meet. A poll costs three indexed reads:

- ``job``: jobs whose ``updated_at`` moved, newest first, at most :data:`JOB_BATCH` per poll
  (beyond that an ``overflow`` event tells the client to reload its list instead);
- ``dead``: the dead tasks (a partial index holds only those), sent whole when they change;
- ``timeline``: for the one job a client watches (``?job=ID``), a digest of its tasks and
  assets, sent when it changes so the job page can reload itself.

``updated_at`` comes from the clock of whichever process wrote the row, and a transaction may
commit a moment after it took its timestamp; so each poll looks :data:`OVERLAP` further back
than the newest change it has sent, and skips the (job, updated_at) pairs already sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from receiver.admin.views import job_view, task_view
from receiver.db.models import AssetRecord, Job, Task, TaskStatus, metadata

__all__ = ["DEAD_LIMIT", "JOB_BATCH", "OVERLAP", "Change", "Feed"]

OVERLAP = timedelta(seconds=5)
JOB_BATCH = 100
DEAD_LIMIT = 100

_jobs = metadata.tables[Job.__tablename__]
_tasks = metadata.tables[Task.__tablename__]
_assets = metadata.tables[AssetRecord.__tablename__]

Change = tuple[str, Mapping[str, Any]]
"""An event's name and its JSON data."""


@dataclass(slots=True)
class Feed:
    """One stream's position: what it has sent, so each poll sends only what is new.

    Attributes:
        watch: the job whose timeline the client shows, if any.
        since: the newest ``updated_at`` sent so far (the stream's start at first).
    """

    watch: str | None = None
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    _sent: set[tuple[str, datetime]] = field(default_factory=set)
    _dead: tuple[tuple[int, datetime], ...] | None = None
    _timeline: tuple[Any, ...] | None = None

    def poll(self, connection: Connection) -> list[Change]:
        """The changes since the last poll, oldest first, for one consistent read."""
        return [*self._jobs(connection), *self._dead_tasks(connection), *self._watched(connection)]

    def _jobs(self, connection: Connection) -> list[Change]:
        low = self.since - OVERLAP
        rows = connection.execute(
            select(_jobs)
            .where(_jobs.c.updated_at > low)
            .order_by(_jobs.c.updated_at.desc(), _jobs.c.id.desc())
            .limit(JOB_BATCH + 1)
        ).all()
        changes: list[Change] = []
        if len(rows) > JOB_BATCH:
            # More changed than one poll should carry: the client reloads its page instead,
            # and the feed goes on from the newest change.
            rows = rows[:JOB_BATCH]
            changes.append(("overflow", {"jobs": JOB_BATCH}))
        fresh = [r for r in reversed(rows) if (r.id, r.updated_at) not in self._sent]
        changes.extend(("job", job_view(r)) for r in fresh)
        self._sent.update((r.id, r.updated_at) for r in fresh)
        if rows:
            self.since = max(self.since, rows[0].updated_at)
        # What fell out of the look-back window can no longer come back: forget it.
        horizon = self.since - OVERLAP
        self._sent = {seen for seen in self._sent if seen[1] > horizon}
        return changes

    def _dead_tasks(self, connection: Connection) -> list[Change]:
        rows = connection.execute(
            select(_tasks)
            .where(_tasks.c.status == TaskStatus.DEAD)
            .order_by(_tasks.c.id.desc())
            .limit(DEAD_LIMIT)
        ).all()
        digest = tuple((r.id, r.updated_at) for r in rows)
        if digest == self._dead:
            return []
        self._dead = digest
        return [("dead", {"items": [task_view(r) for r in rows]})]

    def _watched(self, connection: Connection) -> list[Change]:
        if self.watch is None:
            return []
        t, a = _tasks, _assets
        tasks = connection.execute(
            select(func.count(), func.max(t.c.updated_at), func.sum(t.c.attempts)).where(
                t.c.job_id == self.watch
            )
        ).one()
        assets = connection.execute(
            select(func.count(), func.max(a.c.stored_at)).where(a.c.job_id == self.watch)
        ).one()
        digest = (*tasks, *assets)
        if digest == self._timeline:
            return []
        # Sent on the first poll too: the client may have loaded the page a moment before the
        # stream opened, and one extra reload is cheaper than a missed change.
        self._timeline = digest
        return [("timeline", {"jobId": self.watch})]
