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
6. no temporary files: no hidden ``.part`` file (an interrupted write) is left in the store.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from receiver.models import AssetRecord, Delivery, Job, LedgerEntry, Task, metadata
from tests.chaos.plan import JobTruth, Plan
from tests.chaos.sender import Ack

__all__ = ["Check", "Report", "check_run", "wait_until_drained"]

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


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stored_files(root: Path) -> set[str]:
    if not root.exists():
        return set()
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def _assets_match(engine: Engine, plan: Plan, root: Path) -> Check:
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
    for (job_id, position), source in sorted(expected.items()):
        for row in recorded.get((job_id, position), [])[:1]:
            where = f"{job_id}/{position} ({row.key})"
            if (row.sha256, row.size) != (source.sha256, len(source.body)):
                found.append(f"{where}: recorded {row.size} bytes, not the source's")
            elif not (root / row.key).is_file():
                found.append(f"{where}: not in the store")
            elif _sha256(root / row.key) != source.sha256:
                found.append(f"{where}: stored bytes differ from the source")
    extra = sorted(_stored_files(root) - {row.key for row in rows})
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


def _no_temporary_files(root: Path) -> Check:
    name = "no temporary files"
    leftovers = (
        sorted(str(p.relative_to(root)) for p in root.rglob(".*") if p.is_file())
        if root.exists()
        else []
    )
    if leftovers:
        return Check(name, False, _problems(leftovers))
    return Check(name, True, f"none under {root.name}/")


def check_run(
    engine: Engine,
    plan: Plan,
    acks: Mapping[str, Ack],
    storage_root: Path,
    *,
    rejected: Mapping[str, str] | None = None,
    answers: Counter[str] | None = None,
) -> Report:
    """Check every invariant of a run of ``plan`` whose sender got ``acks``.

    Args:
        engine: on the cluster's database.
        plan: what was sent and the truth it must end in.
        acks: the sender's 2xx answers, by event key.
        storage_root: the local store the download handler wrote to.
        rejected: events the sender got a 4xx for.
        answers: how every attempt was answered (for the table's detail).
    """
    now = datetime.now(UTC)
    return Report(
        (
            _acknowledged(plan, acks, rejected or {}, answers or Counter()),
            _present(engine, acks),
            _job_states(engine, plan),
            _assets_match(engine, plan, storage_root),
            _tasks_done(engine, plan, now),
            _no_temporary_files(storage_root),
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
