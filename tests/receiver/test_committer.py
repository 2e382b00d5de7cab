"""Group commit: batching, isolation of a bad item, load shedding, timeouts, shutdown."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from receiver import Unavailable
from receiver.committer import Committer
from receiver.database import create_db_engine


def _setup(tmp_path: Path) -> tuple[Engine, list[list[str]]]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE items (name TEXT PRIMARY KEY)"))
    return engine, []


def _insert(
    batches: list[list[str]], gate: threading.Event | None = None
) -> Callable[[Connection, Sequence[str]], list[str]]:
    def work(connection: Connection, items: Sequence[str]) -> list[str]:
        if gate is not None:
            gate.wait(10)
        batches.append(list(items))
        for item in items:
            if item == "bad":
                raise ValueError("bad item")
            connection.execute(text("INSERT INTO items VALUES (:n)"), {"n": item})
        return [f"ok:{item}" for item in items]

    return work


def _stored(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(r[0] for r in connection.execute(text("SELECT name FROM items")))


def test_waiting_requests_share_one_transaction(tmp_path: Path) -> None:
    """Items queued while a commit is running are committed together, each gets its result."""
    engine, batches = _setup(tmp_path)
    gate = threading.Event()
    committer: Committer[str, str] = Committer(_insert(batches, gate))
    committer.start(engine)

    async def scenario() -> list[str]:
        tasks = [asyncio.create_task(committer.submit(f"i{n}")) for n in range(40)]
        await asyncio.sleep(0.2)  # the writer holds the first item at the gate; the rest queue
        gate.set()
        return await asyncio.gather(*tasks)

    results = asyncio.run(scenario())
    committer.stop()
    assert results == [f"ok:i{n}" for n in range(40)]
    assert len(batches) < 40
    assert max(len(b) for b in batches) > 1
    assert len(_stored(engine)) == 40


def test_a_bad_item_fails_alone(tmp_path: Path) -> None:
    """One failing item in a batch makes the batch retry item by item; only it fails."""
    engine, batches = _setup(tmp_path)
    gate = threading.Event()
    committer: Committer[str, str] = Committer(_insert(batches, gate))
    committer.start(engine)

    async def scenario() -> list[object]:
        tasks = [asyncio.create_task(committer.submit(n)) for n in ("a", "b", "bad", "c")]
        await asyncio.sleep(0.2)
        gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(scenario())
    committer.stop()
    assert results[:2] == ["ok:a", "ok:b"]
    assert results[3] == "ok:c"
    assert isinstance(results[2], Unavailable)
    assert results[2].reason == "intake_failed"
    assert _stored(engine) == ["a", "b", "c"]


def test_full_queue_sheds_load_with_503(tmp_path: Path) -> None:
    """Past max_pending waiting items, submit raises Unavailable('overloaded') at once."""
    engine, batches = _setup(tmp_path)
    gate = threading.Event()
    committer: Committer[str, str] = Committer(_insert(batches, gate), max_pending=2, batch_max=1)
    committer.start(engine)

    async def scenario() -> list[object]:
        first = asyncio.create_task(committer.submit("held"))
        await asyncio.sleep(0.1)  # the writer now holds "held"; two more fill the queue
        queued = [asyncio.create_task(committer.submit(n)) for n in ("q1", "q2")]
        await asyncio.sleep(0.05)
        with pytest.raises(Unavailable) as caught:
            await committer.submit("one too many")
        gate.set()
        return [caught.value.reason, *await asyncio.gather(first, *queued)]

    results = asyncio.run(scenario())
    committer.stop()
    assert results == ["overloaded", "ok:held", "ok:q1", "ok:q2"]
    assert "one too many" not in _stored(engine)


def test_slow_commit_times_out_with_503(tmp_path: Path) -> None:
    """A commit that takes longer than wait_seconds answers Unavailable('commit_timeout')."""
    engine, batches = _setup(tmp_path)
    gate = threading.Event()
    committer: Committer[str, str] = Committer(_insert(batches, gate), wait_seconds=0.2)
    committer.start(engine)
    with pytest.raises(Unavailable) as caught:
        asyncio.run(committer.submit("slow"))
    gate.set()
    committer.stop()
    assert caught.value.reason == "commit_timeout"


def test_unreachable_database_is_unavailable() -> None:
    """A database that refuses connections gives Unavailable('database_unavailable')."""
    engine = create_db_engine("postgresql://nobody@127.0.0.1:1/none")
    committer: Committer[str, str] = Committer(_insert([]))
    committer.start(engine)
    with pytest.raises(Unavailable) as caught:
        asyncio.run(committer.submit("x"))
    committer.stop()
    assert caught.value.reason == "database_unavailable"


def test_stop_commits_what_was_queued_then_refuses(tmp_path: Path) -> None:
    """stop() lets queued items commit; later submits are refused as shutting down."""
    engine, batches = _setup(tmp_path)
    gate = threading.Event()
    committer: Committer[str, str] = Committer(_insert(batches, gate), batch_max=1)
    committer.start(engine)

    async def scenario() -> None:
        tasks = [asyncio.create_task(committer.submit(f"s{n}")) for n in range(5)]
        await asyncio.sleep(0.1)
        stopper = threading.Thread(target=committer.stop)
        stopper.start()
        gate.set()
        assert await asyncio.gather(*tasks) == [f"ok:s{n}" for n in range(5)]
        stopper.join()
        with pytest.raises(Unavailable, match="shutting_down"):
            await committer.submit("late")

    asyncio.run(scenario())
    assert _stored(engine) == [f"s{n}" for n in range(5)]
