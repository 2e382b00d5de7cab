"""SQLite's one writer, handed over inside the process: the intake first.

The intake's group committer, the embedded worker's transactions (claims, outcomes, asset
rows), replays and the checkpointer all queue on one lock per database file. A plain
``threading.Lock`` wakes whichever waiter the OS picks: with a capturing worker's eight
threads queued, a batch of webhooks waited behind several of their commits (each an fsync),
and that wait was the default ``serve``'s p99 (bench/openloop.py, 300 webhooks/s with
captures). Here an ``urgent`` waiter (the intake) goes before every ordinary one, so it waits
for at most the transaction in progress. Ordinary waiters are not starved for long: the
intake's batches leave the lock free between them.
"""

from __future__ import annotations

import threading
from types import TracebackType

__all__ = ["WriteLock"]


class WriteLock:
    """A lock with two classes of waiters: ``urgent`` ones are let in first.

    Not reentrant, and, like ``threading.Lock``, it may be released by another thread than
    the one that took it. As a context manager it is taken as an ordinary waiter.
    """

    def __init__(self) -> None:
        mutex = threading.Lock()
        self._urgent_turn = threading.Condition(mutex)
        self._turn = threading.Condition(mutex)
        self._held = False
        self._urgent_waiting = 0

    def acquire(self, blocking: bool = True, urgent: bool = False) -> bool:
        """Take the lock (waiting unless ``blocking`` is false); ``urgent`` goes first."""
        with self._turn:
            if not blocking:
                if self._held or (self._urgent_waiting and not urgent):
                    return False
            elif urgent:
                self._urgent_waiting += 1
                try:
                    while self._held:
                        self._urgent_turn.wait()
                except BaseException:
                    self._urgent_waiting -= 1
                    self._interrupted()
                    raise
                self._urgent_waiting -= 1
            else:
                try:
                    while self._held or self._urgent_waiting:
                        self._turn.wait()
                except BaseException:
                    self._interrupted()
                    raise
            self._held = True
            return True

    def release(self) -> None:
        """Let the next waiter in: an urgent one if any waits."""
        with self._turn:
            if not self._held:
                raise RuntimeError("release unlocked lock")
            self._held = False
            self._pass_on()

    def _interrupted(self) -> None:
        # A waiter gave up (an exception in wait): if it had been woken to take the free lock,
        # that wake-up must go to the next one, or nobody would take it.
        if not self._held:
            self._pass_on()

    def _pass_on(self) -> None:
        # Called with the mutex held and the lock free: wake the one who should take it.
        if self._urgent_waiting:
            self._urgent_turn.notify()
        else:
            self._turn.notify()

    def locked(self) -> bool:
        """Whether somebody holds it."""
        return self._held

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.release()
