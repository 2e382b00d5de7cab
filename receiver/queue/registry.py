"""Finding handlers: entry points, ``module:attr`` strings and objects registered in code.

Every failure is a ``RegistryError`` at start-up naming the handler and what went wrong: a
receiver that silently runs without a handler its operator asked for would lose work.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from typing import Any

from handlers import Handler
from receiver.errors import RegistryError
from receiver.intake.recorder import Subscription
from receiver.queue.order import check_order, read_after

__all__ = ["ENTRY_POINT_GROUP", "import_from_string", "load_handlers", "subscriptions_for"]

ENTRY_POINT_GROUP = "framehook.handlers"


def import_from_string(spec: str) -> Any:
    """Import ``"package.module:attribute"`` (dotted attributes allowed).

    Raises:
        RegistryError: with one precise message per way it can fail.
    """
    module_name, sep, attrs = spec.partition(":")
    if not sep or not module_name or not attrs:
        raise RegistryError(f'handler "{spec}": expected "<module>:<attribute>"')
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name and not module_name.startswith(f"{exc.name}."):
            raise RegistryError(f'handler "{spec}": importing it failed: {exc}') from exc
        raise RegistryError(f'handler "{spec}": module "{module_name}" not found') from exc
    except Exception as exc:
        raise RegistryError(f'handler "{spec}": importing it failed: {exc!r}') from exc
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise RegistryError(
                f'handler "{spec}": module "{module_name}" has no attribute "{attrs}"'
            ) from None
    return obj


def _from_entry_point(name: str) -> Any:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        known = sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})
        raise RegistryError(
            f'handler "{name}" not found: no entry point of that name in the group '
            f'"{ENTRY_POINT_GROUP}" (installed: {", ".join(known) or "none"}); '
            'install the package that provides it, or name it as "module:attribute"'
        )
    if len({ep.value for ep in found}) > 1:
        sources = ", ".join(sorted(ep.value for ep in found))
        raise RegistryError(f'handler "{name}" is provided by several packages: {sources}')
    try:
        return found[0].load()
    except Exception as exc:
        raise RegistryError(f'handler "{name}" ({found[0].value}) failed to load: {exc!r}') from exc


def _instantiate(obj: Any, origin: str) -> Handler:
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:
            raise RegistryError(
                f'handler "{origin}": creating {obj.__name__}() failed: {_reason(exc)}'
            ) from exc
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        raise RegistryError(f'handler "{origin}": has no "name" string attribute')
    events = getattr(obj, "events", None)
    if isinstance(events, str) or not isinstance(events, Iterable):
        raise RegistryError(f'handler "{origin}": "events" must be a set of event names')
    if not callable(obj):
        raise RegistryError(f'handler "{origin}": is not callable (define async __call__)')
    read_after(obj, origin)
    return obj  # type: ignore[no-any-return]


def load_handlers(names: Sequence[str], registered: Sequence[Any] = ()) -> tuple[Handler, ...]:
    """Load the handlers named in ``FRAMEHOOK_HANDLERS`` plus any registered in code.

    Args:
        names: entry-point names or ``module:attr`` strings.
        registered: handler objects (or classes) passed to ``create_app`` directly.

    Raises:
        RegistryError: a name cannot be loaded, is not a handler, two handlers share a name,
            or handlers run ``after`` each other in a cycle (``receiver.queue.order``).
    """
    loaded: dict[str, tuple[Handler, str]] = {}
    sources = [(n, import_from_string(n) if ":" in n else _from_entry_point(n)) for n in names]
    sources += [(repr(obj), obj) for obj in registered]
    for origin, obj in sources:
        handler = _instantiate(obj, origin)
        if handler.name in loaded:
            first = loaded[handler.name][1]
            raise RegistryError(
                f'two handlers are named "{handler.name}": {first} and {origin}; '
                "each handler needs a unique name"
            )
        loaded[handler.name] = (handler, origin)
    handlers = tuple(h for h, _ in loaded.values())
    check_order(handlers)
    return handlers


def subscriptions_for(handlers: Iterable[Handler]) -> list[Subscription]:
    """What each handler wants, as the intake needs it to create tasks (``after`` keeps
    only the handlers among ``handlers``)."""
    handlers = list(handlers)
    loaded = {h.name for h in handlers}
    subs = []
    for handler in handlers:
        models = getattr(handler, "models", None)
        after = frozenset(getattr(handler, "after", None) or ())
        subs.append(
            Subscription(
                name=handler.name,
                events=frozenset(handler.events),
                models=None if models is None else frozenset(models),
                after=after & loaded,
            )
        )
    return subs


def _reason(exc: Exception) -> str:
    # A handler's own configuration error already says what to change: its message alone;
    # anything else keeps its type, which is the clue.
    return str(exc) if isinstance(exc, ValueError) and str(exc) else repr(exc)
