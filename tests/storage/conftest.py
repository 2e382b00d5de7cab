"""Storage fixtures: emulators started once per session, and a fresh bucket prefix per test."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from storage import Storage
from tests.support import servers

BUCKET = "framehook-test"


async def stream(*chunks: bytes) -> AsyncIterator[bytes]:
    """The chunks, as the async stream ``put`` takes."""
    for chunk in chunks:
        yield chunk


async def read(store: Storage, key: str) -> bytes:
    """The whole object under ``key``."""
    return b"".join([chunk async for chunk in store.open(key)])


def _clear_cloud_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's real credentials or endpoints must never reach the tests (nor the tests
    # reach a real cloud).
    for name in list(os.environ):
        if name.startswith(("AWS_", "AZURE_", "AZURITE_", "GOOGLE_")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server with the test bucket, for the whole session."""
    with servers.moto_server(tmp_path_factory.mktemp("moto")) as endpoint:
        servers.create_s3_bucket(endpoint, BUCKET)
        yield endpoint


@pytest.fixture(scope="session")
def nanio_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nanio S3 server with the test bucket, for the whole session.

    A second S3 implementation beside moto: it checks request signatures and keeps objects on
    disk, so what passes on both is less likely to lean on one emulator's leniency.
    """
    with servers.nanio_server(tmp_path_factory.mktemp("nanio")) as endpoint:
        servers.create_s3_bucket(endpoint, BUCKET)
        yield endpoint


@pytest.fixture(scope="session")
def azurite_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An Azurite blob server with the test container, for the whole session.

    Skipped where node/npm are missing; an npm failure fails under CI=true, else skips.
    """
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("Azure tests run on Azurite, which needs node and npm: not on PATH")
    try:
        script = servers.install_azurite(npm)
    except servers.EmulatorUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    with servers.azurite_server(script, tmp_path_factory.mktemp("azurite")) as endpoint:
        servers.create_azure_container(endpoint, BUCKET)
        yield endpoint


def _s3_prefix(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    _clear_cloud_environment(monkeypatch)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", servers.S3_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", servers.S3_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    return f"s3://{BUCKET}/{uuid.uuid4().hex}"


@pytest.fixture
def s3_url(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An ``s3://`` URL of an empty prefix on moto, with the environment pointing there."""
    return _s3_prefix(moto_endpoint, monkeypatch)


@pytest.fixture
def nanio_url(nanio_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An ``s3://`` URL of an empty prefix on nanio, with the environment pointing there."""
    return _s3_prefix(nanio_endpoint, monkeypatch)


@pytest.fixture
def azure_url(azurite_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An ``az://`` URL of an empty prefix on Azurite, with the environment pointing there."""
    _clear_cloud_environment(monkeypatch)
    monkeypatch.setenv("AZURE_STORAGE_USE_EMULATOR", "true")
    monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", azurite_endpoint)
    return f"az://{BUCKET}/{uuid.uuid4().hex}"
