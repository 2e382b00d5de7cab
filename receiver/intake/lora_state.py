"""The LoRA state machine: pure, like ``receiver.intake.job_state``, so any order can be checked.

Status only moves forward: ``UNKNOWN → PENDING → UPLOADING → TRAINING → READY | FAILED``, and
``ARCHIVED`` (soft-deleted) after any of them. The first of ``READY`` and ``FAILED`` wins: the
other is a ``conflict`` and changes nothing. A notice of an earlier status is ``stale``.

Details (name, trigger word, error, completion time) fill in from any notice that does not
contradict the recorded outcome, whatever its status: Apiframe's webhook may lack the trigger
word that a later lookup brings, or an ``ARCHIVED`` lookup may overtake the ``READY`` webhook.
So a LoRA ends with the same state whatever order its notices arrive in. Only a status that
moves forward is ``accepted``, which is what runs handlers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from receiver.apiframe.loras import LORA_ENDED, LoraNotice, LoraStatus
from receiver.db.models import LoraState
from receiver.intake.job_state import Verdict

__all__ = ["LORA_UNFINISHED", "LoraState", "LoraTransition", "apply_lora"]

_RANK = {
    LoraStatus.UNKNOWN: 0,
    LoraStatus.PENDING: 1,
    LoraStatus.UPLOADING: 2,
    LoraStatus.TRAINING: 3,
    LoraStatus.READY: 4,
    LoraStatus.FAILED: 4,
    LoraStatus.ARCHIVED: 5,
}
# The outcomes of training, between which the first wins. Not ``LORA_ENDED``: ``ARCHIVED`` is
# no outcome but a later deletion, which may follow either ending (and moves the LoRA on).
_ENDINGS = LORA_ENDED - {LoraStatus.ARCHIVED}
LORA_UNFINISHED = frozenset(LoraStatus) - LORA_ENDED
"""Statuses of a LoRA whose training may still end (reconciliation looks them up)."""


@dataclass(frozen=True, slots=True)
class LoraTransition:
    """The state after a notice, and the notice's verdict."""

    state: LoraState
    verdict: Verdict


def _details(state: LoraState, notice: LoraNotice) -> LoraState:
    """``state`` with what it lacks and ``notice`` says (an error only from a failure)."""
    failed = notice.status is LoraStatus.FAILED
    return replace(
        state,
        name=state.name or notice.name,
        trigger_word=state.trigger_word or notice.trigger_word,
        error=state.error or (notice.error if failed else None),
        completed_at=state.completed_at or notice.completed_at,
    )


def apply_lora(state: LoraState | None, notice: LoraNotice) -> LoraTransition:
    """Apply one notice to a LoRA.

    Args:
        state: the LoRA as stored, or ``None`` when this is the first notice seen for it.
        notice: a verified LoRA notice for that LoRA.

    Returns:
        The new state and the verdict: ``accepted`` when the status moved forward (or the
        LoRA is new), ``conflict`` for the other ending, ``stale`` otherwise.
    """
    current = state or LoraState()
    ending = current.status in _ENDINGS and notice.status in _ENDINGS
    if ending and notice.status is not current.status:
        return LoraTransition(current, Verdict.CONFLICT)
    moved = _RANK[notice.status] > _RANK[current.status]
    new = _details(replace(current, status=notice.status) if moved else current, notice)
    verdict = Verdict.ACCEPTED if moved or state is None else Verdict.STALE
    return LoraTransition(new, verdict)
