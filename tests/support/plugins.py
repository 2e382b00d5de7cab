"""Handlers used by the tests: they record what happened to them, nothing else.

Handlers for worker processes (``framehook worker`` in a subprocess) append one line per run to
``$FRAMEHOOK_TEST_RUNS`` (append-mode writes of one short line are atomic), since they do not
share memory with the test.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from handlers import HandlerContext, JobEvent, PermanentFailure, RetryLater


@dataclass
class Recording:
    """Records every call; behaves as ``script`` says for attempt n (else succeeds). With
    ``models``, it wants only those models' jobs (LoRA events have no model: not filtered)."""

    name: str = "recording"
    events: frozenset[str] = frozenset({"progress", "completed", "failed"})
    script: dict[int, BaseException | float] = field(default_factory=dict)
    timeout: float | None = None
    calls: list[tuple[JobEvent, HandlerContext]] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    models: frozenset[str] | None = None

    @property
    def seen(self) -> list[JobEvent]:
        """The events it was called with, in order."""
        return [event for event, _ctx in self.calls]

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        self.calls.append((event, ctx))
        self.started.append(asyncio.get_running_loop().time())
        action = self.script.get(ctx.attempt)
        if isinstance(action, BaseException):
            raise action
        if isinstance(action, float | int):
            await asyncio.sleep(action)


def lora_watcher() -> Recording:
    """A customer handler that wants LoRA endings and, for flux-lora jobs only, completions."""
    return Recording(
        name="lora-watch",
        events=frozenset({"lora.ready", "lora.failed", "completed"}),
        models=frozenset({"flux-lora"}),
    )


class FileLogged:
    """For worker processes: appends "task attempt pid" to $FRAMEHOOK_TEST_RUNS; sleeps
    $FRAMEHOOK_TEST_SLEEP seconds first (to be killed mid-run)."""

    name = "file-logged"
    events = frozenset({"progress", "completed", "failed"})

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        await asyncio.sleep(float(os.environ.get("FRAMEHOOK_TEST_SLEEP", "0")))
        await asyncio.to_thread(_append, f"{ctx.task_id} {ctx.attempt} {os.getpid()}\n")


def _append(line: str) -> None:
    with open(os.environ["FRAMEHOOK_TEST_RUNS"], "a") as runs:
        runs.write(line)


__all__ = ["FileLogged", "PermanentFailure", "Recording", "RetryLater", "lora_watcher"]
