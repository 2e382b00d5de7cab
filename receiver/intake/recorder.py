"""Recording arrivals: dedupe, state machine and task fan-out, inside the caller's transaction.

The order is the receiver vocabulary: the ledger decides *new or seen* (a unique key, inserted
on conflict do nothing, so two racing receivers cannot both win), the job rows are locked and
moved by ``receiver.intake.job_state`` (LoRA rows, after them, by
``receiver.intake.lora_state``), the deliveries are stored with their outcomes, and one task
per subscribed handler is queued. All of it commits together, or none of it does.

A batch is recorded with a handful of set-based statements whatever its size (the ledger claim,
one lock of every job it touches, job inserts and updates, deliveries, tasks): per-row work is
what the database does, not a round of Python and SQL per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

from receiver.apiframe.events import Event, Kind, ProgressEvent
from receiver.apiframe.loras import LoraNotice, lora_event_name
from receiver.db.models import TaskStatus
from receiver.db.sql.intake import IntakeSql, JobRow
from receiver.db.sql.loras import LoraSql
from receiver.db.sql.waiting import WaitingSql, waits_for
from receiver.intake.arrivals import Arrival, DeliveryOutcome, Receipt, Subscription
from receiver.intake.files import files_expected
from receiver.intake.job_state import JobState, JobStatus, Verdict, apply
from receiver.intake.lora_state import LoraState, apply_lora

__all__ = ["Arrival", "DeliveryOutcome", "Receipt", "Recorder", "Subscription"]


def _row_to_state(row: JobRow, test: bool) -> JobState:
    return JobState(
        test=test,
        status=JobStatus(row.status),
        progress=row.progress,
        model=row.model,
        result=row.result,
        error=row.error,
        credit_cost=row.credit_cost,
        completed_at=row.completed_at,
    )


class Recorder:
    """Records arrivals on a connection whose transaction the caller owns.

    Args:
        dialect: ``sqlite`` or ``postgresql``.
        subscriptions: the handlers that get a task for each accepted event.
    """

    def __init__(self, dialect: str, subscriptions: Sequence[Subscription]) -> None:
        self.subscriptions = tuple(subscriptions)
        self._sql = IntakeSql(dialect)
        self._loras = LoraSql(dialect)
        self._waiting = WaitingSql(dialect)
        # Known at start: with no handler ordered after another, no task is ever created
        # waiting, and the fan-out does none of that work.
        self._ordered = any(sub.after for sub in self.subscriptions)

    def record(self, connection: Connection, arrival: Arrival) -> Receipt:
        """Record one arrival (a batch of one)."""
        return self.record_many(connection, [arrival])[0]

    def record_many(self, connection: Connection, arrivals: Sequence[Arrival]) -> list[Receipt]:
        """Record a batch, in arrival order, in the caller's transaction.

        Returns:
            One receipt per arrival, in the same order.
        """
        cursor = connection.connection.cursor()
        try:
            return self._record(cursor, arrivals)
        finally:
            cursor.close()

    def _record(self, cursor: Any, arrivals: Sequence[Arrival]) -> list[Receipt]:
        outcomes: list[DeliveryOutcome] = [DeliveryOutcome.MALFORMED] * len(arrivals)
        # Each arrival's timestamp in the database's format, computed once.
        stamps = [self._sql.ts(a.received_at) for a in arrivals]
        fresh = self._claim(cursor, arrivals, stamps, outcomes)
        for i in fresh:
            if arrivals[i].parsed.event is None and arrivals[i].parsed.lora is None:
                outcomes[i] = DeliveryOutcome.UNRECOGNIZED
        movers = [i for i in fresh if arrivals[i].parsed.event is not None]
        models = self._move(cursor, arrivals, stamps, movers, outcomes) if movers else {}
        # Job rows first, then LoRA rows: every writer locks in that order.
        trainings = [i for i in fresh if arrivals[i].parsed.lora is not None]
        if trainings:
            notices = [(n, stamps[i]) for i in trainings if (n := arrivals[i].parsed.lora)]
            verdicts = move_loras(self._loras, cursor, notices)
            for i, verdict in zip(trainings, verdicts, strict=True):
                outcomes[i] = DeliveryOutcome(verdict.value)
        rows = [
            self._delivery_row(a, s, o) for a, s, o in zip(arrivals, stamps, outcomes, strict=True)
        ]
        ids = self._sql.add_deliveries(cursor, rows)
        tasks = self._fan_out(cursor, arrivals, stamps, outcomes, ids, models)
        return [
            Receipt(
                outcome,
                delivery_id,
                arrival.parsed.job_id,
                count,
                models.get(arrival.parsed.job_id) if arrival.parsed.job_id else None,
                arrival.parsed.lora.id if arrival.parsed.lora is not None else None,
            )
            for arrival, outcome, delivery_id, count in zip(
                arrivals, outcomes, ids, tasks, strict=True
            )
        ]

    def _claim(
        self,
        cursor: Any,
        arrivals: Sequence[Arrival],
        stamps: Sequence[Any],
        outcomes: list[DeliveryOutcome],
    ) -> list[int]:
        """Claim dedupe keys; mark repeats; return the indexes of first-seen arrivals."""
        keyed = [
            i
            for i, a in enumerate(arrivals)
            if a.parsed.kind is not Kind.MALFORMED and a.parsed.dedupe_key is not None
        ]
        if not keyed:
            return []
        claims: dict[str, tuple[str, str, Any]] = {}
        for i in keyed:
            parsed = arrivals[i].parsed
            assert parsed.dedupe_key is not None
            claims.setdefault(parsed.dedupe_key, (parsed.dedupe_key, parsed.fingerprint, stamps[i]))
        won = self._sql.claim(cursor, list(claims.values()))
        lost = [k for k in claims if k not in won]
        first = self._sql.fingerprints(cursor, lost) if lost else {}
        fresh = []
        for i in keyed:
            parsed = arrivals[i].parsed
            key = parsed.dedupe_key
            assert key is not None
            if key in won and key not in first:
                first[key] = parsed.fingerprint
                fresh.append(i)
            else:
                same = first[key] == parsed.fingerprint
                outcomes[i] = DeliveryOutcome.DUPLICATE if same else DeliveryOutcome.CONFLICT
        return fresh

    def _move(
        self,
        cursor: Any,
        arrivals: Sequence[Arrival],
        stamps: Sequence[Any],
        movers: list[int],
        outcomes: list[DeliveryOutcome],
    ) -> dict[str, str | None]:
        """Apply events to their jobs; return each touched job's model.

        Every touched job first gets a row (insert on conflict do nothing: the ids it returns
        are the jobs this batch sees first), then all are locked in id order, so concurrent
        writers wait for each other instead of deadlocking or both creating a job.
        """
        first_seen: dict[str, Any] = {}
        last_seen: dict[str, Any] = {}
        for i in movers:
            job_id = self._event(arrivals[i]).job_id
            first_seen.setdefault(job_id, stamps[i])
            last_seen[job_id] = stamps[i]
        job_ids = sorted(first_seen)
        created = self._sql.create_jobs(cursor, job_ids, first_seen)
        before: dict[str, JobState | None] = {
            row.id: None if row.id in created else _row_to_state(row, test)
            for row, test in self._sql.lock_jobs(cursor, job_ids)
        }
        states = dict(before)
        for i in movers:
            event = self._event(arrivals[i])
            transition = apply(states[event.job_id], event, test=arrivals[i].parsed.test)
            states[event.job_id] = transition.state
            outcomes[i] = DeliveryOutcome(transition.verdict.value)
        self._sql.update_jobs(
            cursor,
            (
                {
                    "id": j,
                    "status": state.status.value,
                    "progress": state.progress,
                    "model": state.model,
                    "result": state.result,
                    "error": state.error,
                    "credit_cost": state.credit_cost,
                    "completed_at": state.completed_at,
                    "test": state.test,
                    # Set once: a job's row changes no more after its terminal state.
                    "files_expected": files_expected(j, state),
                    "updated_at": last_seen[j],
                }
                for j, state in states.items()
                if state is not None and state != before[j]
            ),
        )
        return {j: state.model for j, state in states.items() if state is not None}

    def _task_event(
        self, arrival: Arrival, models: dict[str, str | None]
    ) -> tuple[str | None, str | None, str | None, int]:
        """An accepted arrival's tasks: job id, event name, model and priority.

        A LoRA event's tasks have no job (``lora.ready``, ...; the delivery names the LoRA).
        Terminal job events run before progress ones when the queue is deep.
        """
        notice = arrival.parsed.lora
        if notice is not None:
            return None, lora_event_name(notice.status), None, 0
        event = self._event(arrival)
        priority = 10 if isinstance(event, ProgressEvent) else 0
        return event.job_id, event.event, models.get(event.job_id) or event.model, priority

    @staticmethod
    def _event(arrival: Arrival) -> Event:
        event = arrival.parsed.event
        assert event is not None
        return event

    def _delivery_row(
        self, arrival: Arrival, stamp: Any, outcome: DeliveryOutcome
    ) -> tuple[Any, ...]:
        parsed = arrival.parsed
        match = arrival.match
        return (
            stamp,
            arrival.source,
            arrival.request_id,
            parsed.job_id,
            None if parsed.lora is None else parsed.lora.id,
            parsed.event_name,
            arrival.header_event,
            self._sql.flag(arrival.event_mismatch),
            ",".join(parsed.flags) or None,
            outcome.value,
            parsed.dedupe_key,
            parsed.fingerprint,
            None if match is None else match.key_index,
            None if match is None else match.derivation.value,
            arrival.remote_addr,
            arrival.body,
        )

    def _fan_out(
        self,
        cursor: Any,
        arrivals: Sequence[Arrival],
        stamps: Sequence[Any],
        outcomes: list[DeliveryOutcome],
        delivery_ids: Sequence[int],
        models: dict[str, str | None],
    ) -> list[int]:
        """Queue one task per subscribed handler for each accepted event; return the counts.

        A queued progress task is superseded by any newer task for its job and handler: older
        ones in the table, and earlier ones in this batch, are stored as ``superseded``.

        A handler's task is created ``waiting`` when a handler it runs ``after`` also gets a
        task for the delivery; ``waits_for`` names those (``receiver.queue.order``).
        """
        rows: list[list[Any]] = []
        latest: dict[tuple[str, str], int] = {}
        # Only a handler that wants progress events can have a queued progress task to supersede.
        supersedable: set[tuple[str, str]] = set()
        counts = [0] * len(arrivals)
        queued = TaskStatus.QUEUED.value
        for i, (arrival, outcome) in enumerate(zip(arrivals, outcomes, strict=True)):
            if outcome is not DeliveryOutcome.ACCEPTED:
                continue
            job_id, name, model, priority = self._task_event(arrival, models)
            if name is None:
                continue  # a LoRA notice of unknown status: the lookup will say what happened
            now = stamps[i]
            subscribed = [sub for sub in self.subscriptions if sub.wants(name, model)]
            names = frozenset(sub.name for sub in subscribed) if self._ordered else frozenset()
            for sub in subscribed:
                counts[i] += 1
                if job_id is not None:
                    pair = (job_id, sub.name)
                    if pair in latest and rows[latest[pair]][3] == "progress":
                        rows[latest[pair]][4] = TaskStatus.SUPERSEDED.value
                    latest[pair] = len(rows)
                    if "progress" in sub.events:
                        supersedable.add(pair)
                waits = (",".join(sorted(sub.after & names)) or None) if sub.after else None
                status = TaskStatus.WAITING.value if waits else queued
                row = [delivery_ids[i], job_id, sub.name, name, status, priority, 0, now, now, now]
                rows.append([*row, waits])
        if rows:
            if self._ordered and supersedable:
                _ready_after_supersede(rows)
            if supersedable:
                superseded = self._sql.supersede_progress(cursor, sorted(supersedable), stamps[0])
                if self._ordered and superseded:
                    self._waiting.release(cursor, superseded, arrivals[0].received_at)
            self._sql.add_tasks(cursor, rows)
        return counts


def _ready_after_supersede(rows: Sequence[list[Any]]) -> None:
    """Queue the batch's waiting tasks whose named tasks (all in this batch: a delivery's tasks
    are created with it) were all superseded within it. One pass is enough: a task turned
    ``queued`` here is still unfinished, so it makes no other task ready."""
    unfinished = (TaskStatus.QUEUED.value, TaskStatus.WAITING.value)
    busy: dict[int, set[str]] = {}
    for row in rows:
        if row[4] in unfinished:
            busy.setdefault(row[0], set()).add(row[2])
    for row in rows:
        if row[4] == TaskStatus.WAITING.value and not waits_for(row[10]) & busy[row[0]]:
            row[4] = TaskStatus.QUEUED.value


def move_loras(
    sql: LoraSql, cursor: Any, notices: Sequence[tuple[LoraNotice, Any]]
) -> list[Verdict]:
    """The LoRA step, the job step's sibling: every LoRA the batch touches first gets a row
    (insert on conflict do nothing), then all are locked in id order and moved by
    ``receiver.intake.lora_state``, and only the rows that changed are written.

    Applies ``(notice, ts(received_at))`` pairs in order and returns each notice's verdict.
    """
    first_seen: dict[str, Any] = {}
    last_seen: dict[str, Any] = {}
    for notice, stamp in notices:
        first_seen.setdefault(notice.id, stamp)
        last_seen[notice.id] = stamp
    ids = sorted(first_seen)
    created = sql.create(cursor, ids, first_seen)
    before: dict[str, LoraState | None] = {
        lora_id: None if lora_id in created else state for lora_id, state in sql.lock(cursor, ids)
    }
    states = dict(before)
    verdicts = []
    for notice, _ in notices:
        transition = apply_lora(states[notice.id], notice)
        states[notice.id] = transition.state
        verdicts.append(transition.verdict)
    sql.update(
        cursor,
        (
            (lora_id, state, last_seen[lora_id])
            for lora_id, state in states.items()
            if state is not None and state != before[lora_id]
        ),
    )
    return verdicts
