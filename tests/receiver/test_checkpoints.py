"""Background WAL checkpoints keep SQLite's WAL bounded while commits never run one."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from receiver.checkpoints import Checkpointer
from receiver.database import create_db_engine


def _wal_after_writes(path: Path, checkpoint: bool) -> int:
    engine = create_db_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE blobs (b BLOB)"))
    checkpointer = Checkpointer(engine, interval=0.01) if checkpoint else None
    if checkpointer is not None:
        checkpointer.start()
    for _ in range(150):
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO blobs VALUES (:b)"), {"b": os.urandom(16_384)})
        time.sleep(0.004)
    size = Path(f"{path}-wal").stat().st_size
    if checkpointer is not None:
        checkpointer.stop()
    engine.dispose()
    return size


@pytest.mark.parametrize("checkpoint", [False, True])
def test_wal_stays_bounded_only_with_the_checkpointer(tmp_path: Path, checkpoint: bool) -> None:
    """Commits never checkpoint (the WAL grows without us); the checkpointer keeps it small."""
    size = _wal_after_writes(tmp_path / "c.db", checkpoint)
    written = 150 * 16_384
    if checkpoint:
        assert size < written / 3
    else:
        assert size > written
