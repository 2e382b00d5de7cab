"""The intake's LoRA step: apply a batch's LoRA notices to their rows, in the batch's transaction.

The same shape as the job step in ``receiver.intake``: every LoRA the batch touches first gets a
row (insert on conflict do nothing), then all are locked in id order and moved by
``receiver.lorastate``, and only the rows that changed are written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from receiver.jobstate import Verdict
from receiver.loraevents import LoraNotice
from receiver.lorasql import LoraSql
from receiver.lorastate import LoraState, apply_lora

__all__ = ["move_loras"]


def move_loras(
    sql: LoraSql, cursor: Any, notices: Sequence[tuple[LoraNotice, Any]]
) -> list[Verdict]:
    """Apply ``(notice, ts(received_at))`` pairs in order; return each notice's verdict."""
    first_seen: dict[str, Any] = {}
    last_seen: dict[str, Any] = {}
    for notice, stamp in notices:
        first_seen.setdefault(notice.id, stamp)
        last_seen[notice.id] = stamp
    ids = sorted(first_seen)
    created = sql.create(cursor, ids, first_seen)
    before: dict[str, LoraState | None] = {
        row.id: None if row.id in created else row.state for row in sql.lock(cursor, ids)
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
