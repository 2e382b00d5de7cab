"""The checkpointer's TRUNCATE rounds: the WAL emptied once past its limit, and a reader that
never lets go costs a round, never a 30 s wait or a stuck write lock."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from receiver.db.checkpoints import BUSY_MS, Checkpointer
from receiver.db.engine import BUSY_TIMEOUT_MS, create_db_engine, write_lock

ROW = 16_384


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite database with a table of blobs, on a pool of one connection."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'w.db'}", pool_size=1)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE blobs (b BLOB)"))
    yield engine
    engine.dispose()


def _write(engine: Engine, rows: int) -> None:
    for _ in range(rows):
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO blobs VALUES (:b)"), {"b": os.urandom(ROW)})


def _wal(engine: Engine) -> int:
    return Path(f"{engine.url.database}-wal").stat().st_size


def test_a_wal_past_its_limit_is_emptied_and_one_under_it_is_left_alone(engine: Engine) -> None:
    """Under the limit a round is PASSIVE (the file keeps its size); past it, TRUNCATE."""
    _write(engine, 20)
    size = _wal(engine)
    Checkpointer(engine, wal_limit=size + 1).checkpoint()
    assert _wal(engine) == size
    Checkpointer(engine, wal_limit=size - 1).checkpoint()
    assert _wal(engine) == 0


def _timed(checkpointer: Checkpointer) -> float:
    started = time.monotonic()
    assert checkpointer.checkpoint()
    return time.monotonic() - started


def test_a_reader_that_never_lets_go_costs_a_round_not_a_hang(engine: Engine) -> None:
    """A reader holding an old snapshot: the TRUNCATE round gives up after about BUSY_MS,
    lets the write lock go, is not tried again at once (the next round is PASSIVE only), and
    the pooled connection waits 30 s for locks again."""
    _write(engine, 5)
    reader = sqlite3.connect(str(engine.url.database), isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM blobs").fetchall()
    _write(engine, 5)  # frames the reader's snapshot does not see: the WAL cannot restart
    checkpointer = Checkpointer(engine, wal_limit=0)
    try:
        first, second = _timed(checkpointer), _timed(checkpointer)
    finally:
        reader.close()
    assert BUSY_MS / 1000 <= first < 2
    assert second < BUSY_MS / 1000
    assert _wal(engine) > 0
    lock = write_lock(engine)
    assert lock is not None
    assert lock.acquire(blocking=False)
    lock.release()
    with engine.connect() as connection:
        timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert timeout == BUSY_TIMEOUT_MS
