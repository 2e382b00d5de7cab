"""What must hold after any chaos run, whatever faults it met, checked against the database
and the storage root, and reported as a table.

1. every event acknowledged: the sender got a 2xx for each (it retries until then), and no 4xx;
2. acknowledged events present: each 2xx's delivery is stored (the request id the sender gave,
   the delivery id it was told, the bytes it sent) and its meaning is in the dedupe ledger;
3. job states equal the truth: every job's row is what its events must give, in any order and
   number (and no other job exists);
4. one asset per (job, position), checksum = source: each completed job's files are recorded
   once per position with the source's size and SHA-256, the stored bytes hash the same, and
   the store holds nothing else;
5. no task running or overdue: nothing running, nothing queued past its due time, nothing dead,
   and one succeeded download task per completed job;
6. no temporary files: no hidden ``.part`` file (an interrupted write) is left in the store, or
   on an object store no multipart upload begun and never completed nor aborted.

The store is a local directory (``LocalAssets``, what a bare ``Path`` means) or an object store
(``ObjectStoreAssets``: bytes read back through framehook's own ``storage.from_url``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, func, select

from receiver.db.models import AssetRecord, Delivery, Job, LedgerEntry, Task, metadata
from storage import ObjectNotFound, from_url
from tests.system.chaos.plan import JobTruth, Plan
from tests.system.chaos.sender import Ack

__all__ = [
    "AssetStore",
    "Check",
    "LocalAssets",
    "ObjectStoreAssets",
    "Report",
    "check_run",
    "wait_until_drained",
]

_deliveries = metadata.tables[Delivery.__tablename__]
_ledger = metadata.tables[LedgerEntry.__tablename__]
_jobs = metadata.tables[Job.__tablename__]
_assets = metadata.tables[AssetRecord.__tablename__]
_tasks = metadata.tables[Task.__tablename__]
_CHUNK = 500  # ids per IN (...) list
_SHOWN = 3  # problems quoted in a failed check's detail


@dataclass(frozen=True, slots=True)
class Check:
    """One invariant's verdict."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Report:
    """Every invariant's verdict after one run."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Whether every invariant holds."""
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> set[str]:
        """The names of the invariants that do not hold."""
        return {c.name for c in self.checks if not c.ok}

    def table(self) -> str:
        """The verdicts as a plain-text table: invariant, ok/FAIL, detail."""
        width = max(len("invariant"), *(len(c.name) for c in self.checks))
        lines = [f"{'invariant':<{width}}  result  detail", f"{'-' * width}  ------  ------"]
        lines += [
            f"{c.name:<{width}}  {'ok' if c.ok else 'FAIL':<6}  {c.detail}" for c in self.checks
        ]
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Fail with the table unless every invariant holds."""
        assert self.ok, f"invariants broken:\n{self.table()}"


def _problems(found: Sequence[str]) -> str:
    shown = "; ".join(found[:_SHOWN])
    more = f" (+{len(found) - _SHOWN} more)" if len(found) > _SHOWN else ""
    return f"{len(found)} wrong: {shown}{more}"


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _acknowledged(
    plan: Plan, acks: Mapping[str, Ack], rejected: Mapping[str, str], answers: Counter[str]
) -> Check:
    name = "every event acknowledged"
    missing = [e.key for e in plan.events if e.key not in acks]
    found = [f"{key} got {answer}" for key, answer in rejected.items()]
    found += [f"{key} never got a 2xx" for key in missing if key not in rejected]
    spread = ", ".join(f"{outcome}={n}" for outcome, n in sorted(answers.items()))
    if found:
        return Check(name, False, f"{_problems(found)}; answers {spread}")
    return Check(name, True, f"{len(acks)} of {len(plan.events)} events; answers {spread}")


def _present(engine: Engine, acks: Mapping[str, Ack]) -> Check:
    name = "acknowledged events present"
    by_request = {a.request_id: a for a in acks.values()}
    stored: dict[str, Any] = {}
    keys: set[str] = set()
    wanted_keys = sorted({a.event.dedupe_key for a in acks.values()})
    d, ledger = _deliveries, _ledger
    with engine.connect() as connection:
        for ids in _chunks(sorted(by_request)):
            query = select(d.c.id, d.c.request_id, d.c.body).where(d.c.request_id.in_(ids))
            stored.update({row.request_id: row for row in connection.execute(query)})
        for chunk in _chunks(wanted_keys):
            keys.update(connection.scalars(select(ledger.c.key).where(ledger.c.key.in_(chunk))))
    found = []
    for request_id, ack in sorted(by_request.items()):
        row = stored.get(request_id)
        if row is None:
            found.append(f"{ack.event.key} ({request_id}, answered {ack.status}) not stored")
        elif row.id != ack.delivery_id:
            found.append(f"{request_id} stored as delivery {row.id}, answered {ack.delivery_id}")
        elif row.body != ack.event.body:
            found.append(f"{request_id}: stored body differs from the one sent")
    found += [f"{key} not in the ledger" for key in wanted_keys if key not in keys]
    if found:
        return Check(name, False, _problems(found))
    return Check(
        name, True, f"{len(by_request)} deliveries as answered; {len(keys)} events in the ledger"
    )


def _job_problems(truth: JobTruth, row: Any) -> list[str]:
    problems = []
    if (row.status, row.progress) != (truth.status, truth.progress):
        problems.append(f"{row.status} {row.progress}%, expected {truth.status} {truth.progress}%")
    if truth.status == "COMPLETED" and row.result != truth.result:
        problems.append("result differs")
    if truth.status == "FAILED" and row.error != truth.error:
        problems.append(f"error {row.error!r}")
    if truth.credit_cost is not None and row.credit_cost != truth.credit_cost:
        problems.append(f"creditCost {row.credit_cost}, expected {truth.credit_cost}")
    return problems


def _job_states(engine: Engine, plan: Plan) -> Check:
    name = "job states equal the truth"
    with engine.connect() as connection:
        rows = {row.id: row for row in connection.execute(select(_jobs))}
    found = [f"{job_id} unknown to the plan" for job_id in sorted(rows.keys() - plan.jobs)]
    for job_id, truth in plan.jobs.items():
        row = rows.get(job_id)
        if row is None:
            found.append(f"{job_id} missing")
            continue
        found += [f"{job_id}: {p}" for p in _job_problems(truth, row)]
    if found:
        return Check(name, False, _problems(found))
    statuses = Counter(t.status for t in plan.jobs.values())
    spread = ", ".join(f"{n} {status.lower()}" for status, n in sorted(statuses.items()))
    return Check(name, True, f"{len(plan.jobs)} jobs: {spread}")


class AssetStore(Protocol):
    """The store the download handler wrote to, as the invariants read it."""

    @property
    def label(self) -> str:
        """How the table names it."""
        ...

    def keys(self) -> set[str]:
        """Every complete object's key."""
        ...

    def contents(self, keys: Sequence[str]) -> dict[str, bytes | None]:
        """The bytes under each of ``keys`` (``None``: nothing there)."""
        ...

    def leftovers(self) -> list[str]:
        """What an interrupted write left behind."""
        ...


@dataclass(frozen=True, slots=True)
class LocalAssets:
    """A local storage root: keys are paths under it; a hidden file is an unfinished write."""

    root: Path

    @property
    def label(self) -> str:
        return f"{self.root.name}/"

    def keys(self) -> set[str]:
        if not self.root.exists():
            return set()
        return {
            str(p.relative_to(self.root))
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        }

    def contents(self, keys: Sequence[str]) -> dict[str, bytes | None]:
        paths = {key: self.root / key for key in keys}
        return {key: p.read_bytes() if p.is_file() else None for key, p in paths.items()}

    def leftovers(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob(".*") if p.is_file())


@dataclass(frozen=True, slots=True)
class ObjectStoreAssets:
    """An object store prefix (``s3://bucket/prefix``), configured by the environment as the
    workers' is (``AWS_*``).

    Objects are read back through ``storage.from_url``, the very code the workers wrote them
    with, so a checksum that matches went through framehook's read path too; keys are listed
    with obstore's S3 store under the same URL (S3 only: the one object store the chaos tests
    run, on the S3 test server).

    Attributes:
        url: the ``FRAMEHOOK_STORAGE_URL`` the workers used.
        pending_uploads: the keys of multipart uploads begun and neither completed nor
            aborted (obstore cannot list them; the S3 test server's client can), or ``None``
            to skip that look.
    """

    url: str
    pending_uploads: Callable[[], list[str]] | None = None

    @property
    def label(self) -> str:
        return self.url

    def keys(self) -> set[str]:
        import obstore
        from obstore.store import S3Store

        # The same URL and environment the storage backend builds its store from.
        store = S3Store.from_url(self.url)
        return {meta["path"] for batch in obstore.list(store) for meta in batch}

    def contents(self, keys: Sequence[str]) -> dict[str, bytes | None]:
        return asyncio.run(self._read(keys))

    async def _read(self, keys: Sequence[str]) -> dict[str, bytes | None]:
        store = from_url(self.url)
        limit = asyncio.Semaphore(16)

        async def one(key: str) -> bytes | None:
            async with limit:
                try:
                    return b"".join([chunk async for chunk in store.open(key)])
                except ObjectNotFound:
                    return None

        found = await asyncio.gather(*(one(key) for key in keys))
        return dict(zip(keys, found, strict=True))

    def leftovers(self) -> list[str]:
        if self.pending_uploads is None:
            return []
        prefix = self.url.split("://", 1)[1].partition("/")[2].strip("/")
        return sorted(
            f"{key} (unfinished multipart upload)"
            for key in self.pending_uploads()
            if not prefix or key.startswith(f"{prefix}/")
        )


def _as_store(storage: Path | AssetStore) -> AssetStore:
    return LocalAssets(storage) if isinstance(storage, Path) else storage


def _assets_match(engine: Engine, plan: Plan, store: AssetStore) -> Check:
    name = "one asset per (job, position), checksum = source"
    with engine.connect() as connection:
        rows = list(connection.execute(select(_assets).where(_assets.c.handler == "download")))
    recorded: dict[tuple[str, int], list[Any]] = {}
    for row in rows:
        recorded.setdefault((row.job_id, row.position), []).append(row)
    expected = {
        (job.job_id, position): source
        for job in plan.jobs.values()
        for position, source in job.files.items()
    }
    found = [f"{job}/{pos}: {len(r)} records" for (job, pos), r in recorded.items() if len(r) > 1]
    found += [f"{job}/{pos}: not expected" for job, pos in sorted(recorded.keys() - expected)]
    found += [f"{job}/{pos}: not captured" for job, pos in sorted(expected.keys() - recorded)]
    # One read of the store for every record checked (an object store's reads go in parallel).
    firsts: dict[tuple[str, int], Any] = {at: records[0] for at, records in recorded.items()}
    stored = store.contents(sorted({first.key for first in firsts.values()}))
    for (job_id, position), source in sorted(expected.items()):
        first = firsts.get((job_id, position))
        if first is None:
            continue
        where = f"{job_id}/{position} ({first.key})"
        data = stored[first.key]
        if (first.sha256, first.size) != (source.sha256, len(source.body)):
            found.append(f"{where}: recorded {first.size} bytes, not the source's")
        elif data is None:
            found.append(f"{where}: not in the store")
        elif hashlib.sha256(data).hexdigest() != source.sha256:
            found.append(f"{where}: stored bytes differ from the source")
    extra = sorted(store.keys() - {row.key for row in rows})
    found += [f"{key}: stored but not recorded" for key in extra]
    if found:
        return Check(name, False, _problems(found))
    size = sum(len(s.body) for s in expected.values())
    jobs = len({job for job, _ in expected})
    return Check(name, True, f"{len(rows)} assets of {jobs} jobs, {size:,} bytes, all intact")


def _tasks_done(engine: Engine, plan: Plan, now: datetime) -> Check:
    name = "no task running or overdue"
    t = _tasks
    with engine.connect() as connection:
        by_status = select(t.c.status, func.count().label("n")).group_by(t.c.status)
        statuses: dict[str, int] = {row.status: row.n for row in connection.execute(by_status)}
        overdue = connection.scalar(
            select(func.count()).where(t.c.status == "queued", t.c.run_at <= now)
        )
        downloads = Counter(
            connection.execute(
                select(t.c.job_id).where(t.c.handler == "download", t.c.status == "succeeded")
            ).scalars()
        )
    found = []
    if statuses.get("running"):
        found.append(f"{statuses['running']} running")
    if overdue:
        found.append(f"{overdue} queued past their due time")
    if statuses.get("dead"):
        found.append(f"{statuses['dead']} dead")
    completed = {job.job_id for job in plan.completed}
    missing = sorted(completed - downloads.keys())
    found += [f"{job}: no succeeded download task" for job in missing]
    found += [f"{job}: {n} download tasks" for job, n in sorted(downloads.items()) if n > 1]
    spread = ", ".join(f"{status} {n}" for status, n in sorted(statuses.items())) or "no tasks"
    if found:
        return Check(name, False, f"{_problems(found)}; tasks: {spread}")
    return Check(name, True, f"tasks: {spread}")


def _no_temporary_files(store: AssetStore) -> Check:
    name = "no temporary files"
    leftovers = store.leftovers()
    if leftovers:
        return Check(name, False, _problems(leftovers))
    return Check(name, True, f"none under {store.label}")


def check_run(
    engine: Engine,
    plan: Plan,
    acks: Mapping[str, Ack],
    storage_root: Path | AssetStore,
    *,
    rejected: Mapping[str, str] | None = None,
    answers: Counter[str] | None = None,
) -> Report:
    """Check every invariant of a run of ``plan`` whose sender got ``acks``.

    Args:
        engine: on the cluster's database.
        plan: what was sent and the truth it must end in.
        acks: the sender's 2xx answers, by event key.
        storage_root: the store the download handler wrote to: a local root, or any
            ``AssetStore`` (an object store's).
        rejected: events the sender got a 4xx for.
        answers: how every attempt was answered (for the table's detail).
    """
    now = datetime.now(UTC)
    store = _as_store(storage_root)
    return Report(
        (
            _acknowledged(plan, acks, rejected or {}, answers or Counter()),
            _present(engine, acks),
            _job_states(engine, plan),
            _assets_match(engine, plan, store),
            _tasks_done(engine, plan, now),
            _no_temporary_files(store),
        )
    )


def wait_until_drained(
    engine: Engine, plan: Plan, timeout: float = 60.0, settle: Callable[[], None] | None = None
) -> bool:
    """Wait until the workers are done: one download task per completed job exists and none
    is queued or running. Returns False on timeout (the invariants then say what is left).

    Args:
        settle: called between looks (e.g. to fail fast when a process died).
    """
    t = _tasks
    wanted = len(plan.completed)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            total = connection.scalar(select(func.count()).select_from(t)) or 0
            busy = connection.scalar(
                select(func.count()).where(t.c.status.in_(("queued", "running")))
            )
        if total >= wanted and not busy:
            return True
        if settle is not None:
            settle()
        time.sleep(0.2)
    return False
