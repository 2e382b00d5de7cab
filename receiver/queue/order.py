"""Ordering handlers for one delivery: a handler's ``after`` names handlers it runs after.

The rule, in full:

* At intake, a task of a handler whose ``after`` names handlers that also get a task for the
  same delivery is created ``waiting``, and ``tasks.waits_for`` records those names; with none
  of them subscribed to the event (or the model), it is ``queued`` at once. Tasks of one
  delivery are all created together, so this is decided once, from the subscriptions.
* A ``waiting`` task is queued, in the transaction that ends the last of them, when none of
  its delivery's tasks it names is unfinished (``waiting``, ``queued``, ``running``): they all
  ``succeeded``, went ``dead`` or were ``superseded``. It runs after them whatever their
  outcome (``receiver.db.sql.waiting``).
* Re-queueing (a replay, a retry) applies the same rule to what it re-queues: a task waits
  again when a task it names is unfinished afterwards (being re-queued with it, say), and is
  queued at once otherwise (``receiver.queue.replay``).

Why store ``waits_for`` rather than look handlers up when releasing: a task's order is decided
by the configuration that created it, and every process (a worker that runs only some
handlers, ``framehook replay`` with none loaded) then releases and replays it the same way.

At start, names of handlers that are not loaded are dropped with a warning (``forward`` runs
after ``download`` when both are configured, and at once when only it is); a cycle is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from handlers import Handler
from receiver.errors import RegistryError
from receiver.logs import get_logger

__all__ = ["after_of", "check_order", "read_after"]

_log = get_logger("framehook.registry")


def read_after(obj: Any, origin: str) -> frozenset[str]:
    """A handler object's ``after`` attribute as a set of names (empty when it has none).

    Raises:
        RegistryError: ``after`` is not a set of handler names.
    """
    after = getattr(obj, "after", None)
    if after is None:
        return frozenset()
    if isinstance(after, str) or not isinstance(after, Iterable):
        raise RegistryError(f'handler "{origin}": "after" must be a set of handler names')
    names = frozenset(after)
    if not all(isinstance(n, str) and n for n in names):
        raise RegistryError(f'handler "{origin}": "after" must be a set of handler names')
    return names


def after_of(handler: Handler) -> frozenset[str]:
    """The names a loaded handler runs after (validated by ``read_after`` at load)."""
    return frozenset(getattr(handler, "after", None) or ())


def check_order(handlers: Iterable[Handler]) -> dict[str, frozenset[str]]:
    """Each handler's ``after``, restricted to the loaded handlers; warns once per name that
    is not loaded.

    Raises:
        RegistryError: handlers run after each other (a cycle), naming them in order.
    """
    loaded = {h.name: after_of(h) for h in handlers}
    order: dict[str, frozenset[str]] = {}
    for name, after in loaded.items():
        if name in after:
            raise RegistryError(f'handler "{name}" names itself in "after"; remove it')
        for missing in sorted(after - loaded.keys()):
            _log.warning(
                f'handler "{name}" runs after "{missing}", which is not loaded: '
                "its tasks do not wait for it",
                handler=name,
                after=missing,
            )
        order[name] = after & loaded.keys()
    cycle = _cycle(order)
    if cycle:
        path = " -> ".join(f'"{n}"' for n in (*cycle, cycle[0]))
        raise RegistryError(
            f"handlers run after each other in a cycle ({path}, each after the next); "
            'remove one name from an "after"'
        )
    return order


def _cycle(order: Mapping[str, frozenset[str]]) -> list[str]:
    """One cycle of the "runs after" graph, as the names along it; empty when there is none."""
    done: set[str] = set()
    for start in sorted(order):
        path: list[str] = []
        on_path: set[str] = set()
        stack = [(start, iter(sorted(order[start])))]
        path.append(start)
        on_path.add(start)
        while stack:
            node, rest = stack[-1]
            step = next(rest, None)
            if step is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif step in on_path:
                return path[path.index(step) :]
            elif step not in done:
                stack.append((step, iter(sorted(order[step]))))
                path.append(step)
                on_path.add(step)
        done.add(start)
    return []
