"""Liveness and readiness probes.

``/readyz`` answers whether a webhook sent now would be stored, cheaply enough to be asked every
few seconds. In order, the first check that fails names the 503's ``reason``:

* ``database_unavailable``: the database does not answer ``SELECT 1`` within two seconds;
* ``disk_full``: the SQLite database's filesystem has less than ``MIN_FREE_BYTES`` left;
* ``commits_failing``: the intake's last commit failed on a full or failing disk, none has
  succeeded since, and that was under ``COMMIT_FAILURE_SECONDS`` ago (after that the receiver
  is let back into rotation to find out: nobody would send it the webhook that proves it well);
* ``storage_unavailable`` (only where a worker runs in the process): the asset store did not
  take a probe object (written, read back and deleted, as ``framehook doctor`` does), probed
  at most every ``STORAGE_PROBE_SECONDS`` (``STORAGE_RECHECK_SECONDS`` while failing), never
  per request. The probe (``storage.probe``, as the doctor's) runs on an event loop of its own
  in a readiness thread, so a local store's file calls never borrow the server's default
  thread pool.

Its thread work runs under a ``CapacityLimiter`` of its own: a flood of other thread-pool users
(admin reads, live streams) must not make a healthy receiver look unready.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response

from receiver.db.engine import WAL_SIZE_LIMIT, ping
from receiver.errors import Unavailable
from receiver.intake.group_commit import Committer
from receiver.responses import DATABASE_UNAVAILABLE, json_response
from receiver.settings import Settings
from storage import PROBE_PREFIX, from_url, probe

__all__ = [
    "COMMIT_FAILURE_SECONDS",
    "MIN_FREE_BYTES",
    "READY_TIMEOUT_SECONDS",
    "STORAGE_PROBE_SECONDS",
    "STORAGE_RECHECK_SECONDS",
    "Readiness",
    "healthz",
    "readyz",
]

READY_TIMEOUT_SECONDS = 2.0
"""How long the database may take to answer, and a storage probe to finish."""

MIN_FREE_BYTES = 2 * WAL_SIZE_LIMIT
"""Free space the SQLite database's filesystem needs for ``/readyz`` to say ready (8 MiB): room
for the WAL to reach its limit and for the checkpoint to copy it into the database file."""

COMMIT_FAILURE_SECONDS = 30.0
"""How long a commit that failed on the disk keeps the receiver unready, if none succeeds."""

STORAGE_PROBE_SECONDS = 30.0
"""How long a successful asset storage probe is trusted."""

STORAGE_RECHECK_SECONDS = 5.0
"""How soon a failed asset storage probe is tried again."""

_THREADS = 4


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str
    detail: str


def _free_bytes(engine: Engine) -> int | None:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    stat = os.statvfs(os.path.dirname(os.path.abspath(database)))
    return stat.f_bavail * stat.f_frsize


def _database(engine: Engine) -> _Failure | None:
    ping(engine)
    free = _free_bytes(engine)
    if free is not None and free < MIN_FREE_BYTES:
        return _Failure(
            "disk_full",
            f"{free / 1_048_576:.1f} MiB free on the database's filesystem, "
            f"under the {MIN_FREE_BYTES / 1_048_576:g} MiB it needs",
        )
    return None


def _storage(settings: Settings) -> _Failure | None:
    where = settings.storage_url
    try:
        store = from_url(settings.storage_url)
        where = store.uri(PROBE_PREFIX)
        asyncio.run(asyncio.wait_for(probe(store), READY_TIMEOUT_SECONDS))
    except TimeoutError:
        return _Failure("storage_unavailable", f"no answer from {where} in time")
    except Exception as exc:
        detail = f"cannot write under {where}: {type(exc).__name__}: {exc}"
        return _Failure("storage_unavailable", detail)
    return None


class Readiness:
    """What ``/readyz`` looks at besides the engine: the committer and the asset store.

    Built in the app's lifespan (on the event loop that serves ``/readyz``).

    Args:
        settings: where assets are stored (``storage_url``).
        committer: the intake's group committer (its last disk failure).
    """

    def __init__(self, settings: Settings, committer: Committer[Any, Any] | None) -> None:
        self._settings = settings
        self._committer = committer
        self.limiter = anyio.CapacityLimiter(_THREADS)
        self._probe_lock = anyio.Lock()
        self._storage_failure: _Failure | None = None
        self._probed_at: float | None = None

    async def check(self, engine: Engine) -> _Failure | None:
        """The first failing check, or ``None`` when a webhook would be stored now.

        Raises:
            Exception: whatever the database driver raised (or ``TimeoutError``).
        """
        with anyio.fail_after(READY_TIMEOUT_SECONDS):
            failure = await anyio.to_thread.run_sync(
                _database, engine, abandon_on_cancel=True, limiter=self.limiter
            )
        if failure or (failure := self._commits()) or not self._settings.run_worker:
            return failure
        # Only a process that captures files needs the asset store: a receiver-only replica
        # stores webhooks without it, and must not leave rotation when the store is away.
        return await self._storage()

    def _commits(self) -> _Failure | None:
        failure = self._committer.disk_failure if self._committer is not None else None
        if failure is None or time.monotonic() - failure.at > COMMIT_FAILURE_SECONDS:
            return None
        return _Failure("commits_failing", f"the last commit failed: {failure.error}")

    def _storage_is_stale(self) -> bool:
        if self._probed_at is None:
            return True
        trusted = STORAGE_RECHECK_SECONDS if self._storage_failure else STORAGE_PROBE_SECONDS
        return time.monotonic() - self._probed_at >= trusted

    async def _storage(self) -> _Failure | None:
        if self._storage_is_stale():
            async with self._probe_lock:  # one probe at a time; the others take its result
                if self._storage_is_stale():
                    self._storage_failure = await self._probe()
                    self._probed_at = time.monotonic()
        return self._storage_failure

    async def _probe(self) -> _Failure | None:
        # A local write stuck in the kernel (a hung NFS mount) outlasts the doctor's timeout.
        limit = 2 * READY_TIMEOUT_SECONDS
        with anyio.move_on_after(limit):
            return await anyio.to_thread.run_sync(
                _storage, self._settings, abandon_on_cancel=True, limiter=self.limiter
            )
        return _Failure("storage_unavailable", f"the storage probe did not finish in {limit:g} s")


async def healthz(_request: Request) -> Response:
    """200 while the process can answer at all."""
    return json_response(200, {"ok": True})


async def readyz(request: Request) -> Response:
    """200 when a webhook sent now would be stored, else 503 naming the first failing check
    (take me out of rotation).

    Raises:
        Unavailable: a check failed; answered without ``Retry-After``, since the prober keeps
            its own schedule.
    """
    engine: Engine = request.app.state.engine
    readiness: Readiness = request.app.state.readiness
    try:
        failure = await readiness.check(engine)
    except Exception as exc:
        detail = (
            "database did not answer in time"
            if isinstance(exc, TimeoutError)
            else "database unavailable"
        )
        raise Unavailable(DATABASE_UNAVAILABLE, detail, retry_after=None) from exc
    if failure is not None:
        raise Unavailable(failure.reason, failure.detail, retry_after=None)
    return json_response(200, {"ok": True})
