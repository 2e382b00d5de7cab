"""Shared fixtures: databases (SQLite per test, one PostgreSQL database per session), settings,
a running app, and signed requests."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest.nodeid import NodeId
from sqlalchemy import Engine, create_engine, make_url, text
from starlette.testclient import TestClient

from receiver import Settings, create_app
from receiver.db.engine import create_db_engine
from receiver.db.schema import upgrade
from tests.support.database import TABLES, scratch_postgres
from tests.support.mounts import Tmpfs
from tests.support.webhooks import API_KEY


@pytest.hookimpl(tryfirst=True)  # before xdist sends the ids to its scheduler
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test its own node id, or the run stops.

    pytest-xdist tells tests apart by node id alone and runs one test of each id. schemathesis
    gives each API operation's test the test function's id (the operation is only in the name),
    so under xdist all but one operation passed without running. Those get their name in their
    id (pytest 9 keeps the id as a ``NodeId``); an id still shared stops the run."""
    ids = Counter(item.nodeid for item in items)
    for item in items:
        if ids[item.nodeid] > 1 and item.parent is not None:
            item._id = NodeId.parse(f"{item.parent.nodeid}::{item.name}")
    shared = sorted(nodeid for nodeid, n in Counter(item.nodeid for item in items).items() if n > 1)
    if shared:
        raise pytest.UsageError(f"tests share a node id, so xdist would run one of each: {shared}")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """``@pytest.mark.anyio`` tests run on asyncio, the loop the receiver runs on."""
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The PostgreSQL server tests may create databases on; CI fails (not skips) without it."""
    url = os.environ.get("FRAMEHOOK_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI=true but FRAMEHOOK_TEST_POSTGRES_URL is not set")
        pytest.skip("FRAMEHOOK_TEST_POSTGRES_URL not set")
    try:
        engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL unreachable at FRAMEHOOK_TEST_POSTGRES_URL: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    return url


@pytest.fixture(scope="session")
def postgres_database(postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database of this test session's own, dropped afterwards."""
    with scratch_postgres(postgres_server_url, "framehook_test") as (url, _name):
        yield url


def _truncate(url: str) -> None:
    engine = create_db_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL with framehook's schema, empty: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'framehook.db'}"
        engine = create_db_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    url: str = request.getfixturevalue("postgres_database")
    _truncate(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database URL in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'framehook.db'}"


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    """Settings for a test: the test API key, the test database, overrides on top."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "api_key": API_KEY,
            "database_url": database_url,
            "handlers": ["download"],
            "log_format": "json",
            # Receiver tests look at queued tasks; worker tests switch the worker on.
            "run_worker": False,
            "storage_url": "memory://",
            # Hermetic: no lookups on api.apiframe.ai (reconciliation tests point it at a fake).
            "reconcile": False,
        }
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Start the app (lifespan included) with the given setting overrides."""
    clients: list[TestClient] = []

    def factory(registered: tuple[Any, ...] = (), **overrides: Any) -> TestClient:
        client = TestClient(create_app(make_settings(**overrides), handlers=registered))
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """The app with default test settings, running."""
    return make_client()


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    """An engine on the test database, for looking at what was stored."""
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str, int], Tmpfs]]:
    """``tmpfs(name, size)`` mounts a tmpfs of ``size`` bytes at ``tmp_path / name``; every
    one is unmounted after the test. Skips where mounting is not permitted."""
    mounted: list[Tmpfs] = []

    def factory(name: str, size: int) -> Tmpfs:
        mounted.append(Tmpfs(tmp_path / name, size))
        return mounted[-1]

    yield factory
    for fs in reversed(mounted):
        fs.unmount()


@pytest.fixture
def disk(tmpfs: Callable[[str, int], Tmpfs]) -> Path:
    """A 64 KiB tmpfs to fill or make read-only (``tests.support.mounts``), unmounted after."""
    return tmpfs("disk", 65_536).path
