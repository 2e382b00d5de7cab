"""Background WAL checkpoints let SQLite reuse its WAL; commits never run one themselves."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from receiver.db.checkpoints import Checkpointer
from receiver.db.engine import create_db_engine

ROW = 16_384


def _write(engine: Engine, rows: int) -> None:
    for _ in range(rows):
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO blobs VALUES (:b)"), {"b": os.urandom(ROW)})


@pytest.mark.parametrize("checkpoint", [False, True])
def test_wal_is_reused_only_with_the_checkpointer(tmp_path: Path, checkpoint: bool) -> None:
    """Two equal bursts of writes with a pause between: the WAL doubles unless checkpointed."""
    path = tmp_path / "c.db"
    engine = create_db_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE blobs (b BLOB)"))
    checkpointer = Checkpointer(engine, interval=0.02) if checkpoint else None
    if checkpointer is not None:
        checkpointer.start()
    wal = Path(f"{path}-wal")
    _write(engine, 60)
    first = wal.stat().st_size
    time.sleep(0.5)  # nobody writes: the background thread checkpoints everything
    _write(engine, 60)
    second = wal.stat().st_size
    if checkpointer is not None:
        checkpointer.stop()
    engine.dispose()
    assert first > 60 * ROW  # commits themselves never checkpointed
    if checkpoint:
        assert second < first * 1.2
    else:
        assert second > first * 1.8
