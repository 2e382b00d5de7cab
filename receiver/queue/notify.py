"""Cross-process wake-ups on PostgreSQL: LISTEN/NOTIFY.

The intake sends ``NOTIFY framehook_tasks`` inside the transaction that queues tasks, so the
notification is delivered exactly when they become visible. Each worker process keeps one
connection listening, on a thread of its own, and wakes its worker; if the connection drops it
reconnects, and the worker's polling covers the gap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from receiver.db.engine import normalize_url
from receiver.logs import get_logger

__all__ = ["CHANNEL", "Listener"]

CHANNEL = "framehook_tasks"
_log = get_logger("framehook.notify")


class Listener:
    """Calls ``wake`` whenever a task notification arrives.

    Args:
        database_url: the PostgreSQL URL (any SQLAlchemy form framehook accepts).
        wake: called from the listener thread; must be thread-safe.
    """

    def __init__(self, database_url: str, wake: Callable[[], None]) -> None:
        url = normalize_url(database_url)
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._wake = wake
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="framehook-listen", daemon=True)

    def start(self) -> None:
        """Start listening in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (within about a second)."""
        self._stopped.set()
        self._thread.join(5)

    def _run(self) -> None:
        import psycopg

        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    # Anything queued while we were not listening: look once now.
                    self._wake()
                    while not self._stopped.is_set():
                        for _ in connection.notifies(timeout=1.0, stop_after=1):
                            self._wake()
            except Exception as exc:
                _log.warning("listening for task notifications failed; retrying", error=repr(exc))
                self._stopped.wait(2.0)
