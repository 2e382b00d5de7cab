"""What a running handler may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["HandlerContext"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerContext:
    """Capabilities and facts for one run of one handler.

    Attributes:
        task_id: framehook's id of this task (stable across attempts).
        attempt: 1 on the first run, 2 on the first retry, ...
        log: a structlog logger bound with the task, job and handler.
    """

    task_id: int
    attempt: int
    log: Any
