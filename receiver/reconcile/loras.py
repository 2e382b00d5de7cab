"""Which LoRAs reconciliation looks up, and what a lookup writes.

A LoRA webhook's payload is undocumented, so what it says is only a claim until Apiframe's
``GET /v2/loras/:id`` confirms it. A LoRA is due for a lookup when:

* a webhook changed it since the last lookup (never looked up, or ``polled_at < updated_at``):
  its state came from a webhook and is not confirmed yet;
* or it is unfinished (``UNKNOWN``, ``PENDING``, ``UPLOADING``, ``TRAINING``) and nothing was
  heard of it, nor asked, for longer than a training takes (``Waits.lora``, 25 minutes).

The answer goes through the intake like a webhook (``lora_body``, ``source = poll``), so the
state machine and the handlers apply; then ``confirm`` stores the lookup's details, which win
over a webhook's (they are authoritative), and when it happened.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, and_, case, func, or_, select, update

from receiver.apiframe.loras import recognise_lora
from receiver.db.engine import writing
from receiver.db.models import Lora, metadata
from receiver.intake.lora_state import LORA_UNFINISHED

__all__ = ["confirm", "due_loras", "lora_body"]

_loras = metadata.tables[Lora.__tablename__]


def lora_body(lora_id: str, resource: dict[str, Any]) -> bytes:
    """The LoRA notice a lookup's answer stands for: the resource as Apiframe sent it, keyed
    by the id that was asked for (so its ledger key is the webhook's)."""
    return orjson.dumps({**resource, "loraId": lora_id})


def due_loras(engine: Engine, now: datetime, wait: timedelta, limit: int = 200) -> list[str]:
    """The LoRAs to look up now, least recently heard of first."""
    lo = _loras
    unconfirmed = or_(lo.c.polled_at.is_(None), lo.c.polled_at < lo.c.updated_at)
    silent = and_(
        lo.c.status.in_([s.value for s in LORA_UNFINISHED]),
        lo.c.updated_at < now - wait,
        or_(lo.c.polled_at.is_(None), lo.c.polled_at < now - wait),
    )
    query = select(lo.c.id).where(or_(unconfirmed, silent)).order_by(lo.c.updated_at).limit(limit)
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


def confirm(engine: Engine, lora_id: str, resource: dict[str, Any] | None, now: datetime) -> None:
    """Record that the LoRA was looked up at ``now`` and, if Apiframe answered with it, its
    details (name, trigger word, error of a failure, completion time)."""
    lo = _loras
    values: dict[str, Any] = {"polled_at": now}
    notice = None if resource is None else recognise_lora({**resource, "loraId": lora_id})
    if notice is not None:
        values["name"] = func.coalesce(notice.name, lo.c.name)
        values["trigger_word"] = func.coalesce(notice.trigger_word, lo.c.trigger_word)
        values["completed_at"] = func.coalesce(lo.c.completed_at, notice.completed_at)
        if notice.error is not None:
            # A failure's reason, unless the LoRA's first ending was READY (that one stands).
            values["error"] = case((lo.c.status == "FAILED", notice.error), else_=lo.c.error)
    with writing(engine) as connection:
        connection.execute(update(lo).where(lo.c.id == lora_id).values(**values))
