"""What a running handler may use."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from structlog.typing import FilteringBoundLogger

from handlers._assets import AssetLog
from handlers._links import AssetLinker, NoLinks
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
        http: the HTTP client the worker's handler runs share; do not close it. It enforces
            the download safety rules on every request and redirect hop (https only unless
            allowed, ``FRAMEHOOK_ASSET_HOSTS``, no private or loopback addresses unless
            ``FRAMEHOOK_ASSET_ALLOW_NETWORKS`` names them); a refused URL raises ``UnsafeURL``.
        assets: where stored files are recorded (read it first: skip what is stored); it also
            lists what the handlers this one runs ``after`` recorded.
        links: makes download links for stored assets, for another app to fetch them
            (presigned by the storage, or framehook's signed content links); a context
            built without one has ``NoLinks``.
    """

    task_id: int
    attempt: int
    log: FilteringBoundLogger
    storage: Storage
    http: httpx.AsyncClient
    assets: AssetLog
    links: AssetLinker = field(default_factory=NoLinks)
