"""The handler ``bench/tasks.py`` measures dispatch latency with: it only notes when it started.

Each run appends ``<job id> <time.time()>`` to the file named by ``FRAMEHOOK_BENCH_STARTS``.
Load it with ``FRAMEHOOK_HANDLERS=bench.latency_handler:LatencyHandler`` (``bench`` importable,
e.g. ``PYTHONPATH`` set to the repository root).
"""

from __future__ import annotations

import os
import time

from handlers import HandlerContext, JobEvent

__all__ = ["STARTS_ENV", "LatencyHandler"]

STARTS_ENV = "FRAMEHOOK_BENCH_STARTS"


class LatencyHandler:
    """Records the wall-clock time at which each ``completed`` event's run began."""

    name = "latency"
    events = frozenset({"completed"})

    def __init__(self) -> None:
        # Opened once, O_APPEND: each line is then one write(2), which the kernel appends
        # whole even when several processes (serve and a worker) hold the file open. Opening it
        # here also keeps blocking file I/O out of the async call, bar that one short write.
        self._fd = os.open(os.environ[STARTS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        """Note the start time first, before anything else can delay it."""
        started = time.time()
        os.write(self._fd, f"{event.job_id} {started!r}\n".encode("ascii"))
