"""The job state machine: forward only, first terminal wins, order does not matter."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.apiframe.events import Event, parse_body
from receiver.intake.job_state import JobState, JobStatus, Verdict, apply
from tests.support.states import fold
from tests.support.webhooks import webhook_body


def event(body: dict[str, object]) -> Event:
    parsed = parse_body(orjson.dumps({"jobId": "job-1", "model": "flux-pro", **body}))
    assert parsed.event is not None
    return parsed.event


def progress(value: int) -> Event:
    return event(webhook_body("progress", progress=value))


COMPLETED = event(
    webhook_body(
        "completed",
        progress=100,
        result={"images": ["u"]},
        creditCost=4,
        completedAt="2026-11-20T10:00:00Z",
    )
)
FAILED = event(webhook_body("failed", error="boom"))
CANCELLED = event({"status": "CANCELLED", "creditCost": 4})


def test_first_event_creates_the_job() -> None:
    """Any first event is accepted and creates the job's state."""
    state, verdicts = fold(apply, [progress(10)])
    assert verdicts == [Verdict.ACCEPTED]
    assert state == JobState(status=JobStatus.PROCESSING, progress=10, model="flux-pro")


def test_progress_never_moves_backwards() -> None:
    """A lower progress arriving late is stale and changes nothing."""
    state, verdicts = fold(apply, [progress(60), progress(30)])
    assert verdicts == [Verdict.ACCEPTED, Verdict.STALE]
    assert state is not None
    assert state.progress == 60


def test_progress_after_terminal_is_stale() -> None:
    """A progress after completed changes nothing."""
    state, verdicts = fold(apply, [COMPLETED, progress(50)])
    assert verdicts == [Verdict.ACCEPTED, Verdict.STALE]
    assert state is not None
    assert (state.status, state.progress, state.result) == (
        JobStatus.COMPLETED,
        100,
        {"images": ["u"]},
    )


def test_second_different_terminal_is_a_conflict_and_the_first_wins() -> None:
    """failed after completed (or the reverse) is a conflict; the first terminal state stands."""
    state, verdicts = fold(apply, [progress(10), COMPLETED, FAILED])
    assert verdicts[-1] is Verdict.CONFLICT
    assert state is not None
    assert state.status is JobStatus.COMPLETED
    assert state.error is None
    state, verdicts = fold(apply, [FAILED, COMPLETED])
    assert verdicts[-1] is Verdict.CONFLICT
    assert state is not None
    assert state.status is JobStatus.FAILED
    assert state.result is None


def test_cancelled_ends_the_job_with_nothing_charged() -> None:
    """A cancelled job is terminal at 100 with no result, error or cost; a completion after it
    is a conflict, and a cancellation after a completion is one too."""
    state, verdicts = fold(apply, [progress(30), CANCELLED, COMPLETED, progress(60)])
    assert verdicts == [Verdict.ACCEPTED, Verdict.ACCEPTED, Verdict.CONFLICT, Verdict.STALE]
    assert state == JobState(status=JobStatus.CANCELLED, progress=100, model="flux-pro")
    state, verdicts = fold(apply, [COMPLETED, CANCELLED])
    assert verdicts[-1] is Verdict.CONFLICT
    assert state is not None
    assert state.status is JobStatus.COMPLETED


def test_completed_records_result_cost_and_time() -> None:
    """completed carries result, credit cost and completion time into the job."""
    state, _ = fold(apply, [COMPLETED])
    assert state is not None
    assert state.credit_cost == 4
    assert state.completed_at is not None
    assert state.completed_at.isoformat() == "2026-11-20T10:00:00+00:00"


def test_queued_progress_does_not_demote_processing() -> None:
    """A progress that claims QUEUED after PROCESSING keeps the job PROCESSING."""
    queued = event(webhook_body("progress", status="QUEUED", progress=0))
    state, _ = fold(apply, [progress(20), queued])
    assert state is not None
    assert state.status is JobStatus.PROCESSING
    state, _ = fold(apply, [queued])
    assert state is not None
    assert state.status is JobStatus.QUEUED


@st.composite
def job_histories(draw: st.DrawFn) -> tuple[list[Event], list[Event]]:
    """A job's real history (rising progress, one terminal at most) and a shuffled, duplicated
    delivery of it."""
    values = sorted(draw(st.sets(st.integers(0, 99), max_size=8)))
    terminal = draw(st.sampled_from([COMPLETED, FAILED, CANCELLED, None]))
    history = [progress(v) for v in values] + ([terminal] if terminal else [])
    if not history:
        history = [progress(0)]
    extra = draw(st.lists(st.sampled_from(history), max_size=6))
    delivered = draw(st.permutations(history + extra))
    return history, delivered


@settings(max_examples=300, deadline=None)
@given(job_histories())
def test_any_order_with_duplicates_ends_like_in_order(
    case: tuple[list[Event], list[Event]],
) -> None:
    """Any permutation of a job's events, duplicates included, ends in the in-order state."""
    history, delivered = case
    in_order, _ = fold(apply, history)
    shuffled, verdicts = fold(apply, delivered)
    assert shuffled == in_order
    assert verdicts[0] is Verdict.ACCEPTED
    assert Verdict.CONFLICT not in verdicts
