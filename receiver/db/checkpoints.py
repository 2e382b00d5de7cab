"""SQLite WAL checkpoints, off the commit path, with the WAL kept small.

SQLite's automatic checkpoint runs inside whichever commit crosses the WAL size threshold: that
commit then copies pages into the database file and fsyncs it, and every request waiting on
that commit waits too (tens of milliseconds). framehook turns the automatic checkpoint off for
its intake connections and checkpoints here instead, from a background thread. Durability is
unchanged: each commit still fsyncs the WAL before anyone is answered.

Each round is a PASSIVE checkpoint, which never blocks writers. Alone it does not bound the WAL:
SQLite only starts the WAL over when a checkpoint has copied all of it and no reader still
needs it, which under steady commits and reads never happens (measured: 36 MB of WAL after 30 s
at 100 webhooks/s, on a database of a few MB, and the file keeps that size). So the WAL's size
is looked at every ``WATCH_SECONDS`` (a ``stat``), and once it is past ``WAL_SIZE_LIMIT`` a
round runs at once and ends with a TRUNCATE checkpoint, which waits for readers to finish and
empties the WAL file. It holds this process's write lock meanwhile, so the intake queues on
that lock for the few milliseconds it takes (rather than sleeping in SQLite's busy handler),
and it waits at most ``BUSY_MS`` for readers or another process: a TRUNCATE that cannot finish
is tried again later (backing off up to ``MAX_BACKOFF_SECONDS``, so a reader that holds on
does not make the intake wait ``BUSY_MS`` every round), never left hanging.

A full disk: the checkpoint needs room to copy the WAL into the database file, and commits
that get in first would take any room an operator frees. While checkpoints fail for want of
space, every round (every ``RETRY_SECONDS``) is a TRUNCATE under the write lock, so the freed
room goes to the checkpoint first and the WAL's own space comes back with it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

from sqlalchemy import Engine

from receiver.db.engine import BUSY_TIMEOUT_MS, WAL_SIZE_LIMIT, disk_trouble, write_lock
from receiver.logs import get_logger

__all__ = ["BUSY_MS", "MAX_BACKOFF_SECONDS", "RETRY_SECONDS", "WATCH_SECONDS", "Checkpointer"]

_log = get_logger("framehook.checkpoints")

BUSY_MS = 100
"""How long a TRUNCATE checkpoint waits for readers (and other processes' writers): the
receiver's own reads take milliseconds."""

MAX_BACKOFF_SECONDS = 8.0
"""The longest wait before another TRUNCATE, after ones that readers kept from finishing."""

RETRY_SECONDS = 0.25
"""The pace of checkpoint rounds while they fail for want of disk space."""

WATCH_SECONDS = 0.1
"""How often the WAL's size is looked at between rounds: a burst cannot take it far past the
limit before it is cut back."""

_REPEAT_WARNING_SECONDS = 60.0


class Checkpointer:
    """Checkpoints a SQLite database every ``interval`` seconds until stopped.

    Args:
        engine: the receiver's SQLite engine (its pool lends the checkpoint connection).
        interval: seconds between rounds while all is well (and the WAL under its limit).
        wal_limit: the WAL size (bytes) past which a round ends with a TRUNCATE checkpoint.
    """

    def __init__(
        self, engine: Engine, interval: float = 1.0, wal_limit: int = WAL_SIZE_LIMIT
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._wal_limit = wal_limit
        self._wal = Path(f"{engine.url.database}-wal")
        self._lock = write_lock(engine)
        self._failures = 0
        self._busy = 0
        self._truncate_after = 0.0
        self._warned_at = 0.0
        self._busy_warned_at = 0.0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="framehook-checkpoint", daemon=True)

    def start(self) -> None:
        """Start checkpointing in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop, after a last TRUNCATE checkpoint so the WAL is empty when the process exits."""
        self._stopped.set()
        self._thread.join(30)
        self.checkpoint(truncate=True)

    def checkpoint(self, truncate: bool = False) -> bool:
        """One round: PASSIVE, then TRUNCATE if the WAL is past its limit (or ``truncate``, or
        the last round ran out of space). A failure is logged and tried again next round.

        Returns:
            Whether the round ran without an error (a TRUNCATE that readers kept from
            finishing is not an error: the next round tries again).
        """
        try:
            if not (truncate or self._failures):
                self._run_pragma("PASSIVE")
            if truncate or self._failures or self._over_limit():
                with self._lock or contextlib.nullcontext():
                    busy = self._run_pragma("TRUNCATE", BUSY_MS)
                self._truncated(busy)
        except Exception as exc:
            self._failed(exc)
            return False
        if self._failures:
            _log.info("checkpoint succeeded again", failures=self._failures)
            self._failures = 0
        return True

    def _run_pragma(self, mode: str, busy_ms: int = BUSY_TIMEOUT_MS) -> bool:
        # A raw pooled connection: no BEGIN of SQLAlchemy's around the checkpoint. Returns
        # SQLite's "busy" flag: the checkpoint could not finish (readers, another writer).
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            if busy_ms == BUSY_TIMEOUT_MS:
                return bool(cursor.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()[0])
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            try:
                return bool(cursor.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()[0])
            finally:
                cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except BaseException:
            # After a disk error, a fresh connection rather than one in an unknown state.
            connection.invalidate()
            raise
        finally:
            connection.close()

    def _over_limit(self) -> bool:
        return time.monotonic() >= self._truncate_after and self._wal_size() > self._wal_limit

    def _truncated(self, busy: bool) -> None:
        if not busy:
            self._busy, self._truncate_after = 0, 0.0
            return
        self._busy += 1
        backoff = min(self._interval * 2 ** (self._busy - 1), MAX_BACKOFF_SECONDS)
        self._truncate_after = time.monotonic() + backoff
        now = time.monotonic()
        # Once a reader has held on for a few tries, then once a minute while it goes on.
        repeat = self._busy > 3 and now - self._busy_warned_at >= _REPEAT_WARNING_SECONDS
        if self._busy == 3 or repeat:
            self._busy_warned_at = now
            _log.warning(
                "WAL past its limit: a reader (or another process) keeps the checkpoint from "
                "emptying it",
                wal_bytes=self._wal_size(),
                tries=self._busy,
            )

    def _wal_size(self) -> int:
        try:
            return self._wal.stat().st_size
        except FileNotFoundError:
            return 0

    def _failed(self, exc: Exception) -> None:
        trouble = disk_trouble(exc)
        if trouble is None:
            _log.warning("checkpoint failed", error=repr(exc))
            return
        self._failures += 1
        now = time.monotonic()
        if self._failures == 1 or now - self._warned_at >= _REPEAT_WARNING_SECONDS:
            # Retried every RETRY_SECONDS: a line per minute says it goes on, not one per try.
            self._warned_at = now
            _log.warning(
                "checkpoint failed: no room on the database's disk; retrying",
                trouble=trouble,
                failures=self._failures,
                wal_bytes=self._wal_size(),
                error=repr(exc),
            )

    def _run(self) -> None:
        due = time.monotonic() + self._interval
        while not self._stopped.wait(RETRY_SECONDS if self._failures else WATCH_SECONDS):
            if self._failures or time.monotonic() >= due or self._over_limit():
                self.checkpoint()
                due = time.monotonic() + self._interval
