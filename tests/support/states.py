"""Folding a delivery history through one of the intake's state machines."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from receiver.intake.job_state import Verdict

__all__ = ["fold"]

State = TypeVar("State")
StepState = TypeVar("StepState", covariant=True)
Item = TypeVar("Item")


class Step(Protocol[StepState]):
    """What an ``apply`` returns: the state after one item, and the item's verdict."""

    @property
    def state(self) -> StepState: ...

    @property
    def verdict(self) -> Verdict: ...


def fold(
    apply: Callable[[State | None, Item], Step[State]], items: Iterable[Item]
) -> tuple[State | None, list[Verdict]]:
    """Apply ``items`` one after another, starting from no state: the last state, and each
    item's verdict in order (``job_state.apply`` on events, ``apply_lora`` on notices)."""
    state: State | None = None
    verdicts: list[Verdict] = []
    for item in items:
        step = apply(state, item)
        state = step.state
        verdicts.append(step.verdict)
    return state, verdicts
