"""Group commit: batching, isolation of a bad item, load shedding, timeouts, shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from receiver import Unavailable
from receiver.db.engine import create_db_engine, write_lock
from receiver.db.schema import upgrade
from receiver.intake.group_commit import Committer
from receiver.queue.tasks import TaskQueue

Work = Callable[[Connection, Sequence[str]], list[str]]


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    """A SQLite database with one table of names."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE items (name TEXT PRIMARY KEY)"))
    return engine


def insert(batches: list[list[str]], gate: threading.Event | None = None) -> Work:
    """Work that inserts each item (failing on "bad"), after waiting at ``gate`` if given."""

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


def stored(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(r[0] for r in connection.execute(text("SELECT name FROM items")))


@pytest.mark.anyio
@pytest.mark.parametrize("inline", [True, False])
async def test_waiting_requests_share_one_transaction(engine: Engine, inline: bool) -> None:
    """Items submitted together are committed in fewer transactions; each gets its result."""
    batches: list[list[str]] = []
    committer: Committer[str, str] = Committer(insert(batches), inline=inline)
    await committer.start(engine)
    results = await asyncio.gather(*(committer.submit(f"i{n}") for n in range(40)))
    await committer.stop()
    assert results == [f"ok:i{n}" for n in range(40)]
    assert len(batches) < 40
    assert max(len(b) for b in batches) > 1
    assert len(stored(engine)) == 40


@pytest.mark.anyio
async def test_a_bad_item_fails_alone(engine: Engine) -> None:
    """One failing item in a batch makes the batch retry item by item; only it fails."""
    committer: Committer[str, str] = Committer(insert([]), inline=True)
    await committer.start(engine)
    tasks = [committer.submit(n) for n in ("a", "b", "bad", "c")]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await committer.stop()
    assert results[:2] == ["ok:a", "ok:b"]
    assert results[3] == "ok:c"
    assert isinstance(results[2], Unavailable)
    assert results[2].reason == "intake_failed"
    assert stored(engine) == ["a", "b", "c"]


@pytest.mark.anyio
async def test_full_queue_sheds_load_with_503(engine: Engine) -> None:
    """Past max_pending waiting items, submit raises Unavailable('overloaded') at once."""
    gate = threading.Event()
    committer: Committer[str, str] = Committer(insert([], gate), max_pending=2, batch_max=1)
    await committer.start(engine)
    first = asyncio.create_task(committer.submit("held"))
    await asyncio.sleep(0.1)  # the writer now holds "held"; two more fill the queue
    queued = [asyncio.create_task(committer.submit(n)) for n in ("q1", "q2")]
    await asyncio.sleep(0.05)
    with pytest.raises(Unavailable) as caught:
        await committer.submit("one too many")
    gate.set()
    results = [caught.value.reason, *await asyncio.gather(first, *queued)]
    await committer.stop()
    assert results == ["overloaded", "ok:held", "ok:q1", "ok:q2"]
    assert "one too many" not in stored(engine)


@pytest.mark.anyio
async def test_slow_commit_times_out_with_503(engine: Engine) -> None:
    """A commit that takes longer than wait_seconds answers Unavailable('commit_timeout')."""
    gate = threading.Event()
    committer: Committer[str, str] = Committer(insert([], gate), wait_seconds=0.2)
    await committer.start(engine)
    with pytest.raises(Unavailable) as caught:
        await committer.submit("slow")
    gate.set()
    await committer.stop()
    assert caught.value.reason == "commit_timeout"
    assert stored(engine) == ["slow"]  # it did commit, late: a retry will be a duplicate


@pytest.mark.anyio
@pytest.mark.parametrize("inline", [True, False])
async def test_each_request_times_out_at_its_own_deadline(engine: Engine, inline: bool) -> None:
    """Requests queued behind a stuck commit each get commit_timeout wait_seconds after they
    came (the committer's one timer re-armed for each), not all at the first one's; after
    the commit frees up, later requests commit and the timed-out items are stored too."""
    lock = write_lock(engine)  # taken: BEGIN waits for it on the writer's thread
    assert lock is not None
    lock.acquire()
    committer: Committer[str, str] = Committer(
        insert([]), inline=inline, wait_seconds=0.3, batch_max=1
    )
    await committer.start(engine)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def timed(item: str) -> tuple[str, float]:
        with pytest.raises(Unavailable) as caught:
            await committer.submit(item)
        return caught.value.reason, loop.time() - started

    first = asyncio.create_task(timed("first"))
    await asyncio.sleep(0.15)
    second = asyncio.create_task(timed("second"))
    (reason_1, at_1), (reason_2, at_2) = await asyncio.gather(first, second)
    lock.release()
    assert await committer.submit("after") == "ok:after"
    await committer.stop()
    assert reason_1 == reason_2 == "commit_timeout"
    assert at_1 >= 0.29  # not before its deadline
    assert at_2 - at_1 >= 0.1  # at its own deadline, not with the first
    assert stored(engine) == ["after", "first", "second"]


@pytest.mark.anyio
async def test_a_request_that_gives_up_still_commits(engine: Engine) -> None:
    """A waiting request whose task is cancelled (it gave up) does not fail the batch: its
    item commits, and the others get their results."""
    lock = write_lock(engine)
    assert lock is not None
    lock.acquire()
    committer: Committer[str, str] = Committer(insert([]), inline=True)
    await committer.start(engine)
    leaving = asyncio.create_task(committer.submit("left"))
    staying = asyncio.create_task(committer.submit("stayed"))
    await asyncio.sleep(0.05)
    leaving.cancel()
    lock.release()
    assert await staying == "ok:stayed"
    await committer.stop()
    assert leaving.cancelled()
    assert stored(engine) == ["left", "stayed"]


@pytest.mark.anyio
@pytest.mark.parametrize("inline", [True, False])
async def test_unreachable_database_is_unavailable(inline: bool) -> None:
    """A database that refuses connections gives Unavailable('database_unavailable')."""
    engine = create_db_engine("postgresql://nobody@127.0.0.1:1/none")
    committer: Committer[str, str] = Committer(insert([]), inline=inline)
    await committer.start(engine)
    with pytest.raises(Unavailable) as caught:
        await committer.submit("x")
    await committer.stop()
    assert caught.value.reason == "database_unavailable"


@pytest.mark.anyio
async def test_stop_commits_what_was_queued_then_refuses(engine: Engine) -> None:
    """stop() lets queued items commit; later submits are refused as shutting down."""
    gate = threading.Event()
    committer: Committer[str, str] = Committer(insert([], gate), batch_max=1)

    await committer.start(engine)
    tasks = [asyncio.create_task(committer.submit(f"s{n}")) for n in range(5)]
    await asyncio.sleep(0.1)
    stopping = asyncio.create_task(committer.stop())
    await asyncio.sleep(0.05)
    with pytest.raises(Unavailable, match="shutting_down"):
        await committer.submit("late")
    gate.set()
    assert await asyncio.gather(*tasks) == [f"ok:s{n}" for n in range(5)]
    await stopping
    assert stored(engine) == [f"s{n}" for n in range(5)]


def test_sqlite_writers_in_one_process_queue_instead_of_failing(tmp_path: Path) -> None:
    """With SQLite's busy timeout at zero, concurrent in-process writers all succeed: they
    wait on framehook's write lock, never on SQLite's busy handler."""
    from sqlalchemy import event

    from receiver.db.engine import writing

    engine = create_db_engine(f"sqlite:///{tmp_path / 'w.db'}")

    @event.listens_for(engine, "connect")
    def no_waiting(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[attr-defined]

    with writing(engine) as connection:
        connection.execute(text("CREATE TABLE n (v INTEGER)"))
    errors: list[BaseException] = []

    def write(value: int) -> None:
        try:
            for _ in range(20):
                with writing(engine) as connection:
                    connection.execute(text("INSERT INTO n VALUES (:v)"), {"v": value})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(v,)) for v in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM n")).scalar() == 120


def test_task_claims_queue_on_the_same_write_lock(tmp_path: Path) -> None:
    """A worker's claim on SQLite waits for the process's write lock like every other writer."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'q.db'}")
    upgrade(engine)
    lock = write_lock(engine)
    assert lock is not None
    lock.acquire()
    releaser = threading.Timer(0.3, lock.release)
    releaser.start()
    started = time.monotonic()
    assert TaskQueue(engine, "w").claim(["h"], 1, datetime.now(UTC)) == []
    assert time.monotonic() - started >= 0.25
    releaser.join()
