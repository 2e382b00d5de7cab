"""The LoRA state machine: forward only, first ending wins, details fill in, order does not
matter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.apiframe.loras import LoraNotice, LoraStatus
from receiver.intake.job_state import Verdict
from receiver.intake.lora_state import LoraState, apply_lora
from tests.support.states import fold

ID = "lora_8a4d2c1e9b7f4a3d"
DONE = datetime(2026, 4, 25, 10, 42, 1, tzinfo=UTC)


def notice(status: LoraStatus, **details: Any) -> LoraNotice:
    return LoraNotice(ID, status, **details)


PENDING = notice(LoraStatus.PENDING, name="Alex")
UPLOADING = notice(LoraStatus.UPLOADING)
TRAINING = notice(LoraStatus.TRAINING, name="Alex")
READY = notice(LoraStatus.READY, name="Alex", trigger_word="TOKPN", completed_at=DONE)
FAILED = notice(LoraStatus.FAILED, name="Alex", error="boom", completed_at=DONE)
ARCHIVED = notice(LoraStatus.ARCHIVED, name="Alex")
UNKNOWN = notice(LoraStatus.UNKNOWN)


def test_the_first_notice_creates_the_lora_whatever_it_says() -> None:
    """Any first notice is accepted, even one of unknown status."""
    state, verdicts = fold(apply_lora, [UNKNOWN])
    assert verdicts == [Verdict.ACCEPTED]
    assert state == LoraState()
    state, verdicts = fold(apply_lora, [READY])
    assert verdicts == [Verdict.ACCEPTED]
    assert state == LoraState(LoraStatus.READY, "Alex", "TOKPN", None, DONE)


def test_status_only_moves_forward() -> None:
    """PENDING → UPLOADING → TRAINING → READY are accepted in turn; an earlier status after a
    later one is stale and changes no status."""
    state, verdicts = fold(apply_lora, [PENDING, UPLOADING, TRAINING, READY, TRAINING, PENDING])
    assert verdicts == [Verdict.ACCEPTED] * 4 + [Verdict.STALE] * 2
    assert state is not None
    assert state.status is LoraStatus.READY


def test_the_first_ending_wins_and_the_other_is_a_conflict() -> None:
    """FAILED after READY (or the reverse) is a conflict; the first ending stands untouched."""
    state, verdicts = fold(apply_lora, [READY, FAILED])
    assert verdicts[-1] is Verdict.CONFLICT
    assert state is not None
    assert (state.status, state.error) == (LoraStatus.READY, None)
    state, verdicts = fold(apply_lora, [FAILED, READY])
    assert verdicts[-1] is Verdict.CONFLICT
    assert state is not None
    assert (state.status, state.trigger_word, state.error) == (LoraStatus.FAILED, None, "boom")


def test_archived_follows_any_status() -> None:
    """A LoRA can be archived after READY or FAILED (or before it ends)."""
    for ending in (READY, FAILED, TRAINING):
        state, verdicts = fold(apply_lora, [ending, ARCHIVED])
        assert verdicts == [Verdict.ACCEPTED, Verdict.ACCEPTED]
        assert state is not None
        assert state.status is LoraStatus.ARCHIVED


def test_details_fill_in_from_a_later_notice_without_running_handlers() -> None:
    """READY without a trigger word, then the lookup's READY with one: the trigger word is
    stored, and the second notice is stale (no second lora.ready)."""
    bare = notice(LoraStatus.READY)
    state, verdicts = fold(apply_lora, [bare, READY])
    assert verdicts == [Verdict.ACCEPTED, Verdict.STALE]
    assert state is not None
    assert (state.trigger_word, state.name, state.completed_at) == ("TOKPN", "Alex", DONE)


def test_an_error_is_only_taken_from_a_failure() -> None:
    """A notice of another status carrying an error does not mark the LoRA with it."""
    odd = LoraNotice(ID, LoraStatus.TRAINING, error="not a failure")
    state, _ = fold(apply_lora, [odd])
    assert state is not None
    assert state.error is None


@st.composite
def lora_histories(draw: st.DrawFn) -> tuple[list[LoraNotice], list[LoraNotice]]:
    """A LoRA's real history (statuses in order, one ending at most, maybe archived), and a
    shuffled, duplicated delivery of it."""
    steps = draw(st.lists(st.sampled_from([PENDING, UPLOADING, TRAINING]), unique=True))
    steps.sort(key=[PENDING, UPLOADING, TRAINING].index)
    ending = draw(st.sampled_from([READY, FAILED, None]))
    history = steps + ([ending] if ending else [])
    if draw(st.booleans()):
        history.append(ARCHIVED)
    if not history:
        history = [UNKNOWN]
    extra = draw(st.lists(st.sampled_from(history), max_size=5))
    delivered = draw(st.permutations(history + extra))
    return history, delivered


@settings(max_examples=300, deadline=None)
@given(lora_histories())
def test_any_order_with_duplicates_ends_like_in_order(
    case: tuple[list[LoraNotice], list[LoraNotice]],
) -> None:
    """Any permutation of a LoRA's notices, duplicates included, ends in the in-order state,
    and no real history ever conflicts."""
    history, delivered = case
    in_order, _ = fold(apply_lora, history)
    shuffled, verdicts = fold(apply_lora, delivered)
    assert shuffled == in_order
    assert verdicts[0] is Verdict.ACCEPTED
    assert Verdict.CONFLICT not in verdicts
