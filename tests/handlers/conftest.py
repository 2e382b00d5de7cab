"""Fixtures for the handler tests: the certificate authority their loopback HTTPS servers use,
and a harness that runs the download handler as a worker would against a loopback CDN."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
import trustme

from handlers import AssetLog, FetchPolicy, HandlerContext, JobEvent, safe_client
from handlers.download import DownloadHandler, DownloadOptions, find_assets
from handlers.testing import MemoryAssets, event_from_payload
from storage import LocalStorage, Storage
from tests.support.cdn import FakeCdn, Route
from tests.support.media import media_bytes

CDN_HOSTS = ("cdn2.apiframe.ai", "cdn.apiframe.ai")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throwaway certificate authority."""
    return trustme.CA()


@pytest.fixture
def cdn(ca: trustme.CA) -> Iterator[FakeCdn]:
    """An https CDN on loopback with a certificate for Apiframe's CDN host names."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*CDN_HOSTS).configure_cert(context)
    yield from FakeCdn(tls=context).serving()


class Capture:
    """Runs the handler as a worker would: local storage (or ``storage``), an asset log (in
    memory, or ``assets``), the safe client; ``attempt`` is the task's attempt number."""

    def __init__(
        self,
        cdn: FakeCdn,
        ca: trustme.CA,
        root: Path,
        *,
        storage: Storage | None = None,
        assets: AssetLog | None = None,
        **options: Any,
    ) -> None:
        self.cdn = cdn
        self.ca = ca
        self.storage = storage if storage is not None else LocalStorage(root)
        self.root = root
        self.assets: Any = assets if assets is not None else MemoryAssets()
        self.handler = DownloadHandler(DownloadOptions(**options))
        self.read_timeout = 5.0
        self.attempt = 1

    def url(self, path: str, host: str = "cdn2.apiframe.ai") -> str:
        return f"https://{host}:{self.cdn.port}{path}"

    def event(self, result: Any, **fields: Any) -> JobEvent:
        body = {"event": "completed", "jobId": "job-1", "model": "m", "result": result}
        return event_from_payload({**body, **fields})

    async def run(self, event: JobEvent) -> None:
        tls = ssl.create_default_context()
        self.ca.configure_trust(tls)
        policy = FetchPolicy(
            hosts=("*.apiframe.ai",),
            allow_networks=("127.0.0.0/8",),
            read_timeout=self.read_timeout,
        )
        # The CDN's names resolve to loopback here, as a hosts file would map them.
        client = safe_client(policy, resolver=lambda _host: ["127.0.0.1"], ssl_context=tls)
        context = HandlerContext(
            task_id=1,
            attempt=self.attempt,
            log=structlog.get_logger("test"),
            storage=self.storage,
            http=client,
            assets=self.assets,
        )
        try:
            await self.handler(event, context)
        finally:
            await client.aclose()

    def files(self) -> dict[str, bytes]:
        """Every file under the store's root (hidden temporary ones included)."""
        return {
            str(p.relative_to(self.root)): p.read_bytes()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }


@pytest.fixture
def capture(cdn: FakeCdn, ca: trustme.CA, tmp_path: Path) -> Capture:
    """The handler against the loopback CDN, storing under ``tmp_path/assets``."""
    return Capture(cdn, ca, tmp_path / "assets")


def serve_result(
    capture: Capture, result: Any, types: dict[str, str] | None = None
) -> tuple[Any, dict[str, bytes]]:
    """Point ``result``'s URLs at the loopback CDN (same host, its port) and serve a real file
    at each path (of the type ``types`` gives for the path, else the URL's extension's, else
    PNG); return the rewritten result and the bytes by URL path."""
    served: dict[str, bytes] = {}
    refs, _ = find_assets(result)
    text = orjson.dumps(result).decode()
    for ref in refs:
        path = "/" + ref.url.split("/", 3)[3]
        ext = (types or {}).get(path) or ref.url_extension or "png"
        served[path] = media_bytes(ext, 50_000 + ref.position, seed=ref.position)
        capture.cdn.route(path, Route(served[path]))
    for host in CDN_HOSTS:
        text = text.replace(f"https://{host}/", f"https://{host}:{capture.cdn.port}/")
    return orjson.loads(text), served
