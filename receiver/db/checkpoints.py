"""SQLite WAL checkpoints, off the commit path.

SQLite's automatic checkpoint runs inside whichever commit crosses the WAL size threshold: that
commit then copies pages into the database file and fsyncs it, and every request waiting on
that commit waits too (tens of milliseconds). framehook turns the automatic checkpoint off for
its intake connections and checkpoints here instead, from a connection of its own on a
background thread, in PASSIVE mode, which never blocks writers. Durability is unchanged:
each commit still fsyncs the WAL before anyone is answered.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from receiver.logs import get_logger

__all__ = ["Checkpointer"]

_log = get_logger("framehook.checkpoints")


class Checkpointer:
    """Checkpoints a SQLite database every ``interval`` seconds until stopped."""

    def __init__(self, engine: Engine, interval: float = 1.0) -> None:
        self._engine = engine
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="framehook-checkpoint", daemon=True)

    def start(self) -> None:
        """Start checkpointing in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop, after a last checkpoint so the WAL is small when the process exits."""
        self._stopped.set()
        self._thread.join(30)
        self.checkpoint()

    def checkpoint(self) -> None:
        """One PASSIVE checkpoint; a failure is logged and tried again next time."""
        try:
            with self._engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:
            _log.warning("checkpoint failed", error=repr(exc))

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self.checkpoint()
