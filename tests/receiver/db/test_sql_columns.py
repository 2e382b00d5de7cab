"""The hot-path SQL's column lists (receiver.db.sql) against the models' tables."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path
from types import ModuleType

from receiver.db.models import LoraState, metadata
from receiver.db.sql import intake, loras, tasks

# Every column list in receiver/db/sql: the table it names columns of, and whether an INSERT
# writes it (then the columns it leaves out must be ones a row can do without).
LISTS: dict[tuple[ModuleType, str], tuple[str, bool]] = {
    (intake, "DELIVERY_COLUMNS"): ("deliveries", True),
    (intake, "JOB_STATE_COLUMNS"): ("jobs", False),
    (intake, "LEDGER_COLUMNS"): ("ledger", True),
    (intake, "NEW_JOB_COLUMNS"): ("jobs", True),
    (intake, "TASK_COLUMNS"): ("tasks", True),
    (loras, "LORA_STATE_COLUMNS"): ("loras", False),
    (loras, "NEW_LORA_COLUMNS"): ("loras", True),
    (tasks, "ATTEMPT_COLUMNS"): ("task_attempts", True),
    (tasks, "CLAIM_COLUMNS"): ("tasks", False),
    (tasks, "EVENT_COLUMNS"): ("deliveries", False),
    (tasks, "LORA_EVENT_COLUMNS"): ("loras", False),
}


def _declared() -> set[tuple[str, str]]:
    """Each module-level ``*_COLUMNS`` name in receiver/db/sql, as (module, name)."""
    found = set()
    for path in Path(intake.__file__).parent.glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Name) and target.id.endswith("_COLUMNS"):
                    found.add((f"receiver.db.sql.{path.stem}", target.id))
    return found


def test_raw_sql_column_lists_name_their_tables_columns() -> None:
    """Column lists name their table's columns once each; INSERTs omit none a row needs."""
    assert _declared() == {(module.__name__, name) for module, name in LISTS}
    problems = []
    for (module, name), (table_name, insert) in LISTS.items():
        columns = getattr(module, name)
        table = metadata.tables[table_name]
        where = f"{module.__name__}.{name}"
        problems += [f"{where}: no column {table_name}.{c}" for c in columns if c not in table.c]
        if len(set(columns)) != len(columns):
            problems.append(f"{where}: a column twice")
        if insert:
            problems += [
                f"{where}: leaves out {table_name}.{c.name}, which a row needs"
                for c in table.c
                if c.name not in columns
                and not (c.nullable or c.primary_key)
                and c.default is None
                and c.server_default is None
            ]
    assert problems == []


def test_rows_read_by_position_have_their_column_lists_fields() -> None:
    """The row classes built from SELECTs by position list the same columns in the same order."""
    assert tuple(f.name for f in fields(intake.JobRow)) == ("id", *intake.JOB_STATE_COLUMNS)
    assert tuple(f.name for f in fields(LoraState)) == loras.LORA_STATE_COLUMNS
    assert tuple(f.name for f in fields(tasks.LoraEventRow)) == (
        "id",
        *tasks.LORA_EVENT_COLUMNS,
    )
    assert tuple(f.name for f in fields(tasks.ClaimRow)) == tasks.CLAIM_COLUMNS
