"""Errors become HTTP answers in one place (``receiver.responses``): the admin API's
rejections, its 401 challenge, an unreachable database (503 with Retry-After, /readyz
without it), and every FramehookError drawn in ``receiver.errors``' tree."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from starlette.testclient import TestClient

import receiver
from receiver import errors
from receiver.errors import FramehookError, RequestRejected
from tests.receiver.admin.scenario import AUTH, TOKEN

DOWN = {"ok": False, "reason": "database_unavailable", "detail": "database unavailable"}


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    """The app with the test admin token and no worker."""
    return make_client(admin_token=TOKEN)


@pytest.fixture
def database_down(api: TestClient, tmp_path: Path) -> Iterator[TestClient]:
    """The app, its engine swapped for one whose database cannot be opened."""
    state = api.app.state  # type: ignore[attr-defined]
    working = state.engine
    # SQLite cannot create a file in a directory that does not exist: OperationalError.
    broken = create_engine(f"sqlite:///{tmp_path / 'missing' / 'framehook.db'}")
    state.engine = broken
    yield api
    state.engine = working
    broken.dispose()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/jobs"),
        ("GET", "/api/jobs/some-job"),
        ("GET", "/api/deliveries"),
        ("GET", "/api/tasks"),
        ("GET", "/api/credits"),
        ("GET", "/api/assets/1/content"),
        ("POST", "/api/tasks/1/retry"),
        ("POST", "/api/jobs/some-job/replay"),
    ],
)
def test_an_unreachable_database_is_a_503_to_retry_in_a_second(
    database_down: TestClient, method: str, path: str
) -> None:
    """Every admin read or write that cannot reach the database: 503, Retry-After: 1, JSON."""
    answer = database_down.request(method, path, headers=AUTH)
    assert answer.status_code == 503
    assert answer.json() == DOWN
    assert answer.headers["retry-after"] == "1"
    assert answer.headers["content-type"] == "application/json"


def test_readyz_says_503_without_retry_after(database_down: TestClient) -> None:
    """/readyz answers a prober: the same body, no Retry-After (the prober keeps its pace)."""
    answer = database_down.get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == DOWN
    assert "retry-after" not in answer.headers


@pytest.mark.parametrize("path", ["/api/jobs", "/api/events", "/api/assets/1/content"])
def test_the_401_challenge_tells_a_wrong_token_from_none(api: TestClient, path: str) -> None:
    """No token: a plain Bearer challenge; a wrong one: ``error="invalid_token"`` too."""
    missing = api.get(path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="framehook"'
    assert missing.json() == {
        "ok": False,
        "reason": "unauthorized",
        "detail": "send Authorization: Bearer <token>",
    }
    wrong = api.get(path, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == 'Bearer realm="framehook", error="invalid_token"'
    assert wrong.json()["detail"] == "wrong bearer token"


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_framehook_error_is_drawn_in_the_tree_with_its_status() -> None:
    """receiver.errors' docstring draws every FramehookError subclass the receiver defines,
    and each request rejection next to its HTTP status."""
    for module in pkgutil.walk_packages(receiver.__path__, "receiver."):
        if "__main__" not in module.name and ".migrations" not in module.name:
            importlib.import_module(module.name)
    drawn = {
        found[1]: found[2]
        for line in (errors.__doc__ or "").splitlines()
        if (found := re.search(r"[├└]── (\w+)\s+(?:(\d{3}):)?", line))
    }
    defined = {cls for cls in _subclasses(FramehookError) if cls.__module__.startswith("receiver")}
    assert {cls.__name__ for cls in defined} == set(drawn)
    for cls in defined:
        if issubclass(cls, RequestRejected) and cls is not RequestRejected:
            assert drawn[cls.__name__] == str(cls.status_code), cls
