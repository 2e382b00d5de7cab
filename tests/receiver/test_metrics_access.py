"""Who may read ``/metrics``: with FRAMEHOOK_METRICS_TOKEN, only a scraper sending it; with
FRAMEHOOK_METRICS_PORT, only on that port (a real ``framehook serve``), never on the webhook
port; the exporter the standalone worker uses honours the token too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
from pydantic import SecretStr
from starlette.testclient import TestClient

from receiver.metrics import Metrics
from receiver.services import serving_metrics
from tests.support.processes import Server, framehook_env, free_port
from tests.support.webhooks import sample

SCRAPE_TOKEN = "scrape-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"


def test_with_a_metrics_token_a_scrape_needs_it(make_client: Callable[..., TestClient]) -> None:
    """No token, the wrong one, or the admin token: a 401 with a Bearer challenge and no
    metric in it; the metrics token: the exposition."""
    client = make_client(metrics_token=SCRAPE_TOKEN, admin_token=ADMIN_TOKEN)
    bare = client.get("/metrics")
    assert bare.status_code == 401
    assert bare.json()["reason"] == "unauthorized"
    assert bare.headers["www-authenticate"] == 'Bearer realm="framehook"'
    assert "framehook_" not in bare.text
    for wrong in ("nope", ADMIN_TOKEN, SCRAPE_TOKEN[:-1], SCRAPE_TOKEN + "x"):
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {wrong}"})
        assert answer.status_code == 401
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    basic = client.get("/metrics", headers={"Authorization": f"Basic {SCRAPE_TOKEN}"})
    assert basic.status_code == 401
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert scraped.status_code == 200
    assert "# TYPE framehook_deliveries_total counter" in scraped.text


def test_the_exporter_serves_on_its_own_port_behind_the_token() -> None:
    """``serving_metrics`` (the standalone worker's exporter, and ``serve``'s own port): a free
    port when asked for 0, a 401 without the token, the registry with it, closed on exit."""
    metrics = Metrics()
    metrics.delivery("completed", "accepted")
    with serving_metrics(metrics, 0, "127.0.0.1", SecretStr(SCRAPE_TOKEN)) as port:
        assert port
        url = f"http://127.0.0.1:{port}/metrics"
        refused = httpx.get(url, timeout=5)
        assert refused.status_code == 401
        assert refused.json()["reason"] == "unauthorized"
        assert refused.headers["www-authenticate"] == 'Bearer realm="framehook"'
        wrong = httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
        assert wrong.status_code == 401
        answer = httpx.get(url, headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"}, timeout=5)
        assert answer.status_code == 200
        assert 'framehook_deliveries_total{event="completed",outcome="accepted"} 1.0' in answer.text
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("the exporter still answers after its block ended")


def test_serve_answers_metrics_on_the_metrics_port_and_not_on_the_webhook_port(
    tmp_path: Path,
) -> None:
    """``framehook serve`` with FRAMEHOOK_METRICS_PORT and a token: the webhook port answers
    /metrics with a 404, the metrics port with the receiver's own counts (to the token)."""
    metrics_port = free_port()
    env = framehook_env(
        FRAMEHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'framehook.db'}",
        FRAMEHOOK_STORAGE_URL=str(tmp_path / "assets"),
        FRAMEHOOK_HANDLERS="",
        FRAMEHOOK_METRICS_PORT=str(metrics_port),
        FRAMEHOOK_METRICS_TOKEN=SCRAPE_TOKEN,
    )
    server = Server(env, tmp_path, ["--no-worker"])
    try:
        server.wait_ready()
        assert server.post_webhook(sample("completed-midjourney")).status_code == 202
        public = httpx.get(f"{server.url}/metrics", timeout=5)
        assert public.status_code == 404
        assert "framehook_" not in public.text
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        assert httpx.get(url, timeout=5).status_code == 401
        answer = httpx.get(url, headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"}, timeout=5)
        assert answer.status_code == 200
        assert 'framehook_deliveries_total{event="completed",outcome="accepted"} 1.0' in answer.text
        log = [
            orjson.loads(line) for line in server.log.read_bytes().splitlines() if line[:1] == b"{"
        ]
        assert any(entry.get("event") == "metrics served" for entry in log)
    finally:
        server.stop()
