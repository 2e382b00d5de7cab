"""Loading handlers: entry points, module:attr, in-code registration, and clear failures."""

from __future__ import annotations

import pytest

from handlers import HandlerContext, JobEvent
from receiver import RegistryError, Settings, create_app
from receiver.intake.recorder import Subscription
from receiver.queue.registry import import_from_string, load_handlers, subscriptions_for
from tests.support.webhooks import API_KEY


class Recorder:
    name = "recorder"
    events = frozenset({"progress", "completed"})
    models = frozenset({"midjourney"})

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        return None


class Nameless:
    events = frozenset({"completed"})

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        return None


class Exploding:
    name = "exploding"
    events = frozenset({"completed"})

    def __init__(self) -> None:
        raise RuntimeError("no config")


def test_builtin_download_handler_loads_from_its_entry_point() -> None:
    """'download' resolves through the framehook.handlers entry-point group."""
    (handler,) = load_handlers(["download"])
    assert handler.name == "download"
    assert handler.events == frozenset({"completed"})


def test_module_attr_and_in_code_registration() -> None:
    """A class named as module:attr is instantiated; objects registered in code are used as is."""
    in_code = Recorder()
    in_code.name = "second"
    loaded = load_handlers(["tests.receiver.queue.test_registry:Recorder"], [in_code])
    assert [h.name for h in loaded] == ["recorder", "second"]
    assert isinstance(loaded[0], Recorder)
    assert loaded[1] is in_code


def test_subscriptions_carry_events_and_models() -> None:
    """A handler's events and optional models become its subscription."""
    (sub,) = subscriptions_for(load_handlers(["tests.receiver.queue.test_registry:Recorder"]))
    assert sub == Subscription(
        "recorder", frozenset({"progress", "completed"}), frozenset({"midjourney"})
    )
    assert sub.wants("completed", "midjourney")
    assert not sub.wants("completed", "flux-pro")
    assert not sub.wants("failed", "midjourney")


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (
            ["download", "tests.receiver.queue.test_registry:Recorder", "download"],
            'two handlers are named "download"',
        ),
        (["nope"], 'handler "nope" not found'),
        (["tests.receiver.missing_module:X"], 'module "tests.receiver.missing_module" not found'),
        (["tests.receiver.queue.test_registry:Missing"], 'has no attribute "Missing"'),
        (["tests.receiver.queue.test_registry:"], 'expected "<module>:<attribute>"'),
        (["tests.receiver.queue.test_registry:Nameless"], 'has no "name" string attribute'),
        (["tests.receiver.queue.test_registry:Exploding"], "creating Exploding() failed"),
        (["tests.receiver.queue.test_registry:API_KEY"], 'has no "name" string attribute'),
    ],
)
def test_unloadable_or_clashing_handlers_fail_with_their_name(
    names: list[str], message: str
) -> None:
    """Every registry failure is a RegistryError whose message names the culprit."""
    with pytest.raises(RegistryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_handlers(names)


def test_in_code_handler_clashing_with_configured_one_fails_at_start() -> None:
    """create_app refuses two handlers with one name instead of silently overriding."""
    settings = Settings(api_key=API_KEY, handlers=["tests.receiver.queue.test_registry:Recorder"])
    with pytest.raises(RegistryError, match='two handlers are named "recorder"'):
        create_app(settings, handlers=[Recorder()])


def test_import_from_string_reports_errors_inside_the_module() -> None:
    """A module that exists but fails to import is reported as such, not as 'not found'."""
    with pytest.raises(RegistryError, match="importing it failed"):
        import_from_string("tests.receiver.queue.broken_plugin:Handler")
