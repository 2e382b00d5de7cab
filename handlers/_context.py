"""What a running handler may use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from storage import Storage

__all__ = ["HandlerContext"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HandlerContext:
    """Capabilities and facts for one run of one handler.

    Attributes:
        task_id: framehook's id of this task (stable across attempts: an idempotency key).
        attempt: 1 on the first run, 2 on the first retry, ...
        log: a structlog logger bound with the task, job and handler.
        storage: the asset store configured by ``FRAMEHOOK_STORAGE_URL``.
        http: an HTTP client shared by the worker's handler runs, with framehook's timeouts;
            do not close it. (The download safety rules, host allow-list and address checks,
            are applied by the asset-capture handler; they are not yet part of this client.)
    """

    task_id: int
    attempt: int
    log: Any
    storage: Storage
    http: httpx.AsyncClient
