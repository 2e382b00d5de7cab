"""When a failed task runs again: exponential backoff with jitter, or never.

A strategy object returning a decision (as procrastinate does), not a retry loop: the retry is
a row with a new ``run_at`` that any worker may pick up, so it survives restarts. stamina and
tenacity retry a call inside one process, which is the wrong shape for that.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["MAX_REQUESTED_DELAY", "Decision", "RetryPolicy"]

MAX_REQUESTED_DELAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Decision:
    """Run again at ``run_at``, or (``run_at is None``) give up: the task is parked as dead."""

    run_at: datetime | None

    @property
    def gives_up(self) -> bool:
        """Whether the task is parked as dead."""
        return self.run_at is None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff ``min(max_seconds, base_seconds * 2**(attempt-1))``, with equal jitter.

    Attributes:
        base_seconds: the first retry's upper bound (``FRAMEHOOK_RETRY_BASE_SECONDS``).
        max_seconds: the cap of any delay (``FRAMEHOOK_RETRY_MAX_SECONDS``).
        max_attempts: runs in all before a task is dead (``FRAMEHOOK_RETRY_MAX_ATTEMPTS``).
    """

    base_seconds: float = 2.0
    max_seconds: float = 600.0
    max_attempts: int = 8

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        # Equal jitter: at least half the ceiling (a real pause), the rest random, so a burst
        # of failures (an outage) does not come back as a burst.
        return (rng or random).uniform(ceiling / 2, ceiling)

    def decide(self, attempt: int, now: datetime, delay: float | None = None) -> Decision:
        """After attempt ``attempt`` failed: when to try again, if at all.

        Args:
            attempt: the attempt that just failed (1-based).
            now: the current time.
            delay: a delay the handler asked for (``RetryLater``); used instead of backoff.
        """
        if attempt >= self.max_attempts:
            return Decision(None)
        # A delay the handler asked for (a server's Retry-After, say) is honoured beyond the
        # backoff cap; only an absurd one is cut to a day.
        seconds = self.backoff(attempt) if delay is None else min(delay, MAX_REQUESTED_DELAY)
        return Decision(now + timedelta(seconds=seconds))
