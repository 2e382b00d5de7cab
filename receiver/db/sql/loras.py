"""The intake's SQL for LoRA rows: create, lock in id order, write new states.

Plain SQL on the DBAPI cursor in the same transaction as the rest of the batch, like
``receiver.db.sql.intake`` (``receiver.db.sql.dialect`` says why). LoRA rows are locked after
job rows in every transaction, and each kind in id order, so writers never deadlock on each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from receiver.apiframe.loras import LoraStatus
from receiver.db.models import LoraState
from receiver.db.sql.dialect import DialectSql

__all__ = ["LoraSql"]

LORA_STATE_COLUMNS = ("status", "name", "trigger_word", "error", "completed_at")
# A LoRA first seen: its status is unknown until a notice says.
NEW_LORA_COLUMNS = ("id", "status", "created_at", "updated_at")


class LoraSql(DialectSql):
    """The LoRA statements for one dialect (``sqlite`` or ``postgresql``)."""

    def create(self, cursor: Any, ids: Sequence[str], first_seen: dict[str, Any]) -> set[str]:
        """Insert ``UNKNOWN`` rows for LoRAs not seen yet (``first_seen``: ``ts()`` values);
        return the ids created."""
        sql = (
            f"INSERT INTO loras ({', '.join(NEW_LORA_COLUMNS)}) "
            f"VALUES {self._values(NEW_LORA_COLUMNS, len(ids))} "
            f"ON CONFLICT (id) DO NOTHING RETURNING id"
        )
        rows = [(i, LoraStatus.UNKNOWN.value, first_seen[i], first_seen[i]) for i in ids]
        cursor.execute(sql, self._flatten(NEW_LORA_COLUMNS, rows))
        return {row[0] for row in cursor.fetchall()}

    def lock(self, cursor: Any, ids: Sequence[str]) -> list[tuple[str, LoraState]]:
        """Read and lock LoRAs in id order: ``(id, state)`` pairs."""
        lock = "" if self.sqlite else " FOR UPDATE"
        sql = (
            f"SELECT id, {', '.join(LORA_STATE_COLUMNS)} FROM loras "
            f"WHERE id IN ({self._in('l', len(ids))}) ORDER BY id{lock}"
        )
        cursor.execute(sql, {f"l_{n}": i for n, i in enumerate(ids)})
        rows = []
        for r in cursor.fetchall():
            status = r[1] if r[1] in LoraStatus.__members__.values() else LoraStatus.UNKNOWN
            state = LoraState(
                status=LoraStatus(status),
                name=r[2],
                trigger_word=r[3],
                error=r[4],
                completed_at=self._read_ts(r[5]),
            )
            rows.append((r[0], state))
        return rows

    def update(self, cursor: Any, changes: Iterable[tuple[str, LoraState, Any]]) -> None:
        """Write ``(id, new state, ts(updated_at))`` changes."""
        sets = ", ".join(f"{c} = {self._param(c)}" for c in (*LORA_STATE_COLUMNS, "updated_at"))
        sql = f"UPDATE loras SET {sets} WHERE id = {self._param('id')}"
        params = [
            {
                "id": lora_id,
                "status": state.status.value,
                "name": state.name,
                "trigger_word": state.trigger_word,
                "error": state.error,
                "completed_at": self.ts(state.completed_at),
                "updated_at": stamp,
            }
            for lora_id, state, stamp in changes
        ]
        if params:
            cursor.executemany(sql, params)
