"""The live feed behind ``GET /api/events``: what changed since the last look, as events.

Each open stream polls the database (once a second by default) rather than listening to this
process: receivers and workers may be other processes or other machines, and the database is
the one place where all their changes meet. A poll costs a few indexed reads:

- ``job``: jobs whose ``updated_at`` moved, newest first, then jobs that stored a file (their
  ``files.stored`` moved, their row did not), at most :data:`JOB_BATCH` per poll (beyond that
  an ``overflow`` event tells the client to reload its list instead);
- ``dead``: the dead tasks (a partial index holds only those), sent whole when they change;
- ``timeline``: for the one job a client watches (``?job=ID``), a digest of its tasks and
  assets, sent when it changes so the job page can reload itself.

``updated_at`` comes from the clock of whichever process wrote the row, and a transaction may
commit a moment after it took its timestamp; so each poll looks :data:`OVERLAP` further back
than the newest change it has sent, and skips the (job, updated_at) pairs already sent. Stored
files are found by their ids (which only grow) the same way: an id stays looked at for
:data:`OVERLAP` after it was first seen, so a file whose transaction committed after one with a
higher id still counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from receiver.admin.queries import job_summaries
from receiver.admin.views import job_view, task_view
from receiver.db.models import AssetRecord, Job, Task, TaskStatus, metadata

__all__ = ["ASSET_BATCH", "DEAD_LIMIT", "JOB_BATCH", "OVERLAP", "Change", "Feed"]

OVERLAP = timedelta(seconds=5)
JOB_BATCH = 100
DEAD_LIMIT = 100
ASSET_BATCH = 1000

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
    # Every asset id at or below the floor has been looked at for OVERLAP; the ones above it
    # that were seen already, with when.
    _asset_floor: int | None = None
    _assets_seen: dict[int, datetime] = field(default_factory=dict)
    _dead: tuple[tuple[int, datetime], ...] | None = None
    _timeline: tuple[Any, ...] | None = None

    def poll(self, connection: Connection) -> list[Change]:
        """The changes since the last poll, oldest first, for one consistent read."""
        return [*self._jobs(connection), *self._dead_tasks(connection), *self._watched(connection)]

    def _jobs(self, connection: Connection) -> list[Change]:
        # Files first: a summary read after them counts every file they found.
        stored = self._stored(connection)
        low = self.since - OVERLAP
        rows = connection.execute(
            job_summaries()
            .where(_jobs.c.updated_at > low)
            .order_by(_jobs.c.updated_at.desc(), _jobs.c.id.desc())
            .limit(JOB_BATCH + 1)
        ).all()
        more = len(rows) > JOB_BATCH
        rows = rows[:JOB_BATCH]
        fresh = [r for r in reversed(rows) if (r.id, r.updated_at) not in self._sent]
        # Jobs that stored a file but whose row did not move: their summaries come after.
        moved = [] if stored is None else sorted(stored - {r.id for r in fresh})
        # More changed than one poll should carry: the client reloads its page instead, and
        # the feed goes on from the newest change.
        overflow = more or stored is None or len(fresh) + len(moved) > JOB_BATCH
        changes: list[Change] = [("overflow", {"jobs": JOB_BATCH})] if overflow else []
        changes.extend(("job", job_view(r)) for r in fresh)
        self._sent.update((r.id, r.updated_at) for r in fresh)
        if rows:
            self.since = max(self.since, rows[0].updated_at)
        # What fell out of the look-back window can no longer come back: forget it.
        horizon = self.since - OVERLAP
        self._sent = {seen for seen in self._sent if seen[1] > horizon}
        if moved and not overflow:
            summaries = connection.execute(
                job_summaries().where(_jobs.c.id.in_(moved)).order_by(_jobs.c.id)
            ).all()
            changes.extend(("job", job_view(r)) for r in summaries)
        return changes

    def _stored(self, connection: Connection) -> set[str] | None:
        """The jobs that stored a file since the last poll (``None``: too many to send)."""
        a = _assets
        now = datetime.now(UTC)
        if self._asset_floor is None:
            # Files stored within the look-back window before the stream opened count as new,
            # like jobs: the client may have read its page just before they were.
            older = connection.execute(
                select(a.c.id)
                .where(a.c.stored_at <= self.since - OVERLAP)
                .order_by(a.c.id.desc())
                .limit(1)
            ).scalar()
            self._asset_floor = older or 0
        rows = connection.execute(
            select(a.c.id, a.c.job_id)
            .where(a.c.id > self._asset_floor)
            .order_by(a.c.id)
            .limit(ASSET_BATCH + 1)
        ).all()
        if len(rows) > ASSET_BATCH:
            self._asset_floor, self._assets_seen = rows[-1].id, {}
            return None
        jobs = {r.job_id for r in rows if r.id not in self._assets_seen}
        self._assets_seen.update((r.id, now) for r in rows if r.id not in self._assets_seen)
        settled = [i for i, seen in self._assets_seen.items() if seen <= now - OVERLAP]
        if settled:
            self._asset_floor = max(settled)
            self._assets_seen = {
                i: seen for i, seen in self._assets_seen.items() if i > self._asset_floor
            }
        return jobs

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
