"""The links handlers hand out (``context.links``): presigned by a store that signs, else
framehook's signed content links under ``FRAMEHOOK_PUBLIC_URL``, which the receiver serves
without the admin token, also when a worker in another process made them."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from handlers import Asset, AssetLink, AssetLinker, HandlerContext, JobEvent
from receiver.db.engine import create_db_engine
from receiver.links import ContentSigner, asset_linker
from receiver.queue.assets import DatabaseAssets
from receiver.queue.worker import Worker
from receiver.services import build_worker, http_client
from receiver.settings import Settings
from storage import LocalStorage, Storage, from_url
from tests.receiver.admin.scenario import QUICK_WORKER, completed, post

# nanio_endpoint: the storage tests' S3 server (session-wide), made visible here.
from tests.storage.conftest import _s3_prefix, nanio_endpoint, stream  # noqa: F401
from tests.support.processes import Server, framehook_env
from tests.support.waiting import wait_until

TOKEN = "links-test-token-0123456789abcdef"
BODY = b"\x89PNG link test " * 200


async def stored(storage: Storage, engine: Engine, job_id: str = "job-links") -> Asset:
    """A PNG stored in ``storage`` and recorded as the download handler records it."""
    key = f"{job_id}/image-1.png"
    put = await storage.put(key, stream(BODY), "image/png")
    asset = Asset(
        job_id=job_id,
        position=1,
        kind="image",
        source_url="https://cdn.apiframe.ai/1.png",
        key=key,
        storage_uri=put.uri,
        size=put.size,
        content_type="image/png",
        sha256=put.sha256,
        stored_at=datetime.now(UTC),
    )
    return await DatabaseAssets(engine, "download").record(asset)


def settings(database_url: str, storage_url: str, **overrides: object) -> Settings:
    """A standalone worker's settings: no admin token, no public URL unless given."""
    values: dict[str, object] = {
        "database_url": database_url,
        "storage_url": storage_url,
        "log_format": "json",
        "reconcile": False,
    }
    return Settings(**{**values, **overrides})


def standalone_worker(engine: Engine, config: Settings) -> Worker:
    """A worker built as ``framehook worker`` builds it (no receiver in its process)."""
    return build_worker(engine, [], config, http_client(config))


@pytest.mark.slow
def test_a_standalone_workers_link_opens_the_file_on_the_receiver(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A real ``framehook serve`` (no embedded worker) with a configured admin token serves a
    link made in another process with the same token and FRAMEHOOK_PUBLIC_URL: the exact bytes
    to a plain GET, until it expires; a tampered, expired or differently signed link is 403."""
    assets_dir = tmp_path / "assets"
    env = framehook_env(
        FRAMEHOOK_DATABASE_URL=sqlite_url,
        FRAMEHOOK_STORAGE_URL=str(assets_dir),
        FRAMEHOOK_ADMIN_TOKEN=TOKEN,
        FRAMEHOOK_RUN_WORKER="false",
    )
    server = Server(env, tmp_path)
    try:
        server.wait_ready()
        config = settings(
            sqlite_url,
            str(assets_dir),
            admin_token=TOKEN,
            public_url=server.url + "/",
            asset_link_seconds=3600,
        )
        engine = create_db_engine(sqlite_url)
        try:
            worker = standalone_worker(engine, config)
            asset = anyio.run(stored, worker.storage, engine)
            before = datetime.now(UTC)
            link = anyio.run(worker.links.link, asset)
            wrong = config.model_copy(update={"admin_token": SecretStr("x" * 32)})
            foreign = anyio.run(standalone_worker(engine, wrong).links.link, asset)
        finally:
            engine.dispose()
        assert link is not None
        assert foreign is not None
        assert link.url.startswith(f"{server.url}/api/assets/")
        assert before + timedelta(seconds=3598) <= link.expires_at
        assert link.expires_at <= datetime.now(UTC) + timedelta(seconds=3600)

        answer = httpx.get(link.url)
        assert answer.status_code == 200, answer.text
        assert answer.content == BODY
        assert answer.headers["content-type"] == "image/png"

        tampered = httpx.get(link.url[:-4] + ("0000" if not link.url.endswith("0000") else "1111"))
        assert (tampered.status_code, tampered.json()["reason"]) == (403, "bad_signature")
        assert httpx.get(foreign.url).status_code == 403
        asset_id = int(link.url.split("/api/assets/", 1)[1].split("/", 1)[0])
        expired = server.url + ContentSigner(TOKEN).path(asset_id, int(time.time()) - 1)
        answer = httpx.get(expired)
        assert (answer.status_code, answer.json()["reason"]) == (403, "link_expired")
    finally:
        server.stop()


@pytest.mark.anyio
async def test_without_public_url_or_token_there_is_no_link(tmp_path: Path, db: Engine) -> None:
    """Local storage and no FRAMEHOOK_PUBLIC_URL, or a standalone worker without
    FRAMEHOOK_ADMIN_TOKEN: ``None``, and the log says why, once, naming the variable."""
    storage_url = str(tmp_path / "assets")
    database_url = db.url.render_as_string(hide_password=False)
    cases = {
        "FRAMEHOOK_PUBLIC_URL": settings(database_url, storage_url, admin_token=TOKEN),
        "FRAMEHOOK_ADMIN_TOKEN": settings(database_url, storage_url, public_url="http://x"),
    }
    asset = await stored(LocalStorage(tmp_path / "assets"), db)
    for variable, config in cases.items():
        linker = asset_linker(config, from_url(storage_url), db)
        with capture_logs() as logs:
            assert await linker.link(asset) is None
            assert await linker.link(asset) is None
        told = [entry for entry in logs if entry["log_level"] == "warning"]
        assert len(told) == 1
        assert variable in told[0]["reason"]


@pytest.mark.anyio
async def test_an_asset_stored_elsewhere_has_no_link(tmp_path: Path, db: Engine) -> None:
    """An asset a plugin stored in a store of its own: the worker's storage cannot serve it."""
    database_url = db.url.render_as_string(hide_password=False)
    config = settings(database_url, str(tmp_path / "a"), admin_token=TOKEN, public_url="http://x")
    asset = await stored(LocalStorage(tmp_path / "elsewhere"), db)
    assert await asset_linker(config, from_url(str(tmp_path / "a")), db).link(asset) is None


def test_the_embedded_worker_signs_with_the_generated_token(
    make_client: Callable[..., TestClient], tmp_path: Path, db: Engine
) -> None:
    """``serve`` with a generated admin token: its own worker's links open the file on it."""
    client = make_client(
        storage_url=str(tmp_path / "assets"), run_worker=True, public_url="http://testserver"
    )
    worker: Worker = client.app.state.worker  # type: ignore[attr-defined]
    assert isinstance(worker.links, AssetLinker)
    asset = anyio.run(stored, worker.storage, db)
    with capture_logs() as logs:
        link = anyio.run(worker.links.link, asset)
    assert isinstance(link, AssetLink)
    assert any("FRAMEHOOK_ADMIN_TOKEN" in str(entry.get("reason")) for entry in logs)
    answer = client.get(link.url)
    assert answer.status_code == 200, answer.text
    assert answer.content == BODY


@pytest.fixture
def s3_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """An ``s3://`` URL of an empty prefix on nanio, the environment pointing there."""
    return _s3_prefix(request.getfixturevalue("nanio_endpoint"), monkeypatch)


@pytest.mark.anyio
async def test_a_store_that_signs_gives_its_presigned_url(s3_url: str, db: Engine) -> None:
    """S3 storage: the link is the bucket's presigned URL (no public URL or token needed),
    valid FRAMEHOOK_ASSET_LINK_SECONDS, and a plain GET reads the bytes from the bucket."""
    database_url = db.url.render_as_string(hide_password=False)
    config = settings(database_url, s3_url, asset_link_seconds=600)
    storage = from_url(s3_url)
    asset = await stored(storage, db)
    link = await asset_linker(config, storage, db).link(asset)
    assert link is not None
    assert "X-Amz-Signature=" in link.url
    assert "X-Amz-Expires=600" in link.url
    assert link.expires_at <= datetime.now(UTC) + timedelta(seconds=600)
    async with httpx.AsyncClient() as http:
        answer = await http.get(link.url)
    assert answer.status_code == 200, answer.text
    assert answer.content == BODY


@pytest.mark.parametrize("seconds", [0, 59, 604_801])
def test_the_link_validity_is_bounded(seconds: int) -> None:
    """FRAMEHOOK_ASSET_LINK_SECONDS: from a minute to 7 days (S3's presigned URL limit)."""
    with pytest.raises(ValueError, match="asset_link_seconds"):
        Settings(asset_link_seconds=seconds)


class SeesLinks:
    """A handler that keeps the linker its context carries."""

    name = "sees-links"
    events = frozenset({"completed"})

    def __init__(self) -> None:
        self.seen: list[AssetLinker] = []

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        self.seen.append(ctx.links)


def test_every_handler_run_gets_the_workers_linker(
    make_client: Callable[..., TestClient],
) -> None:
    """The worker hands its linker to each handler run as ``context.links``."""
    handler = SeesLinks()
    client = make_client(registered=(handler,), handlers=[], **QUICK_WORKER)
    post(client, completed("job-sees-links", {"images": []}))
    wait_until(lambda: bool(handler.seen))
    assert handler.seen[0] is client.app.state.worker.links  # type: ignore[attr-defined]
