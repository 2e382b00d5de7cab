"""The SQLite write lock: the intake (urgent) goes before the worker's writers."""

from __future__ import annotations

import threading
import time

import pytest

from receiver.db.writelock import WriteLock


def _waiter(lock: WriteLock, name: str, order: list[str], urgent: bool) -> threading.Thread:
    def take() -> None:
        lock.acquire(urgent=urgent)
        order.append(name)
        lock.release()

    thread = threading.Thread(target=take, name=name)
    thread.start()
    return thread


def _wait_until_waiting(thread: threading.Thread) -> None:
    # A thread blocked in Condition.wait shows no progress; give it time to get there.
    time.sleep(0.05)
    assert thread.is_alive()


def test_an_urgent_waiter_goes_before_ordinary_ones_that_came_first() -> None:
    lock = WriteLock()
    order: list[str] = []
    lock.acquire()
    threads = []
    for n in range(3):
        threads.append(_waiter(lock, f"worker-{n}", order, urgent=False))
        _wait_until_waiting(threads[-1])
    threads.append(_waiter(lock, "intake", order, urgent=True))
    _wait_until_waiting(threads[-1])
    lock.release()
    for thread in threads:
        thread.join(5)
    assert order[0] == "intake"
    assert sorted(order[1:]) == ["worker-0", "worker-1", "worker-2"]
    assert not lock.locked()


def test_ordinary_waiters_are_all_let_in_once_no_urgent_one_waits() -> None:
    lock = WriteLock()
    order: list[str] = []
    with lock:
        threads = [_waiter(lock, f"worker-{n}", order, urgent=False) for n in range(5)]
        time.sleep(0.05)
    for thread in threads:
        thread.join(5)
        assert not thread.is_alive()
    assert len(order) == 5


def test_non_blocking_acquire_and_release_from_another_thread() -> None:
    lock = WriteLock()
    assert lock.acquire(blocking=False)
    assert not lock.acquire(blocking=False)
    releaser = threading.Timer(0.05, lock.release)
    releaser.start()
    assert lock.acquire(urgent=True)  # released by the timer's thread
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()


def test_ordinary_waiters_do_not_jump_an_urgent_waiter_when_asked_not_to_block() -> None:
    lock = WriteLock()
    lock.acquire()
    order: list[str] = []
    intake = _waiter(lock, "intake", order, urgent=True)
    _wait_until_waiting(intake)
    assert not lock.acquire(blocking=False)
    lock.release()
    intake.join(5)
    assert order == ["intake"]
