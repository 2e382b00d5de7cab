"""The forward handler against a real loopback "customer app" that verifies every delivery with
the ``standardwebhooks`` library: its settings, the event, the signature, the delivery rules,
``send-test --forward`` and ``doctor``'s check.

``App`` is the customer's app the end-to-end tests (``test_forward_end_to_end.py``) use too.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from standardwebhooks import Webhook
from typer.testing import CliRunner

from handlers import Asset, AssetLink, HandlerContext, JobEvent, PermanentFailure, RetryLater
from handlers.forward import (
    DEFAULT_EVENTS,
    MAX_RETRY_AFTER,
    ForwardHandler,
    ForwardOptions,
    ForwardSettingsError,
    NotDelivered,
    load_options,
    message_id,
)
from handlers.testing import FakeLinks, MemoryAssets, lora_event, sample_event, would_run
from receiver.cli import app as cli
from receiver.cli.config import unknown_variables
from receiver.doctor import Status, check_forward
from receiver.settings import Settings
from storage import MemoryStorage, StorageError
from tests.support.processes import framehook_env, free_port, run_cli
from tests.support.webhooks import API_KEY

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(32, 64))).decode()


# --------------------------------------------------------------------------- the customer's app


@dataclass(frozen=True)
class Delivery:
    """One POST the app verified: its headers, its event, and what its files' links served
    while the request was open (position: status and SHA-256 of the bytes)."""

    msg_id: str
    timestamp: int
    event: dict[str, Any]
    at: float
    served: dict[int, tuple[int, str]] = field(default_factory=dict)

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.event["data"])


@dataclass(frozen=True)
class Reply:
    """How the app answers one POST."""

    status: int = 204
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


class _AppHandler(http.server.BaseHTTPRequestHandler):
    server: _AppServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        app = self.server.app
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            event = app.webhook.verify(body, headers)
        except Exception as exc:  # the library's WebhookVerificationError, or a bad body
            with app.lock:
                app.rejected.append(f"{type(exc).__name__}: {exc}")
            self._reply(Reply(401, body=b"signature refused"))
            return
        served = app.fetch(event) if app.fetch_links else {}
        delivery = Delivery(
            headers["webhook-id"], int(headers["webhook-timestamp"]), event, time.time(), served
        )
        with app.lock:
            app.deliveries.append(delivery)
            plan = app.plans.get(str(event.get("data", {}).get("id")))
            reply = plan.pop(0) if plan else app.default
        self._reply(reply)

    def _reply(self, reply: Reply) -> None:
        time.sleep(reply.delay)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:  # the client stopped reading (a bounded read, a timeout)
            self.close_connection = True


class _AppServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    app: App


class App:
    """A customer's app on 127.0.0.1: verifies each POST with ``standardwebhooks``'
    ``Webhook.verify`` (401 if it fails), records it, and answers as planned per job (or
    LoRA) id, else ``default``. With ``fetch_links``, it downloads each asset's ``url`` while
    the request is open, as an app would on receipt."""

    def __init__(self, secret: str = SECRET, *, fetch_links: bool = False) -> None:
        self.webhook = Webhook(secret)
        self.fetch_links = fetch_links
        self.deliveries: list[Delivery] = []
        self.rejected: list[str] = []
        self.plans: dict[str, list[Reply]] = {}
        self.default = Reply()
        self.lock = threading.Lock()
        self._server = _AppServer(("127.0.0.1", 0), _AppHandler)
        self._server.app = self
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/framehook"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def plan(self, key: str, *replies: Reply) -> None:
        """Answer the next POSTs about ``key`` (a job or LoRA id) with ``replies``, in order."""
        with self.lock:
            self.plans[key] = list(replies)

    def of(self, key: str) -> list[Delivery]:
        """The verified deliveries about ``key``, in arrival order."""
        with self.lock:
            return [d for d in self.deliveries if d.data.get("id") == key]

    def fetch(self, event: dict[str, Any]) -> dict[int, tuple[int, str]]:
        served = {}
        for asset in event.get("data", {}).get("assets", []):
            if asset.get("url"):
                response = httpx.get(asset["url"], timeout=10)
                served[asset["position"]] = (
                    response.status_code,
                    hashlib.sha256(response.content).hexdigest(),
                )
        return served

    def __enter__(self) -> App:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def app() -> Iterator[App]:
    """A customer's app on loopback that verifies with ``SECRET``."""
    with App() as running:
        yield running


def options(*urls: str, **values: Any) -> ForwardOptions:
    return ForwardOptions(url=list(urls), secret=SECRET, **values)


async def _run(
    handler: ForwardHandler,
    event: JobEvent,
    *,
    task_id: int = 7,
    attempt: int = 1,
    assets: MemoryAssets | None = None,
    links: Any = None,
) -> None:
    """The handler once, with a context as a worker builds it."""
    async with httpx.AsyncClient() as client:
        ctx = HandlerContext(
            task_id=task_id,
            attempt=attempt,
            log=structlog.get_logger("test"),
            storage=MemoryStorage("forward"),
            http=client,
            assets=assets if assets is not None else MemoryAssets(),
            links=links if links is not None else FakeLinks(),
        )
        await handler(event, ctx)


def stored(job_id: str, position: int, kind: str = "image") -> Asset:
    key = f"{job_id}/{kind}-{position}.png"
    return Asset(
        job_id=job_id,
        position=position,
        kind=kind,
        source_url=f"https://cdn2.apiframe.ai/{position}.png",
        key=key,
        storage_uri=f"memory://forward/{key}",
        size=1000 + position,
        content_type="image/png",
        sha256=hashlib.sha256(key.encode()).hexdigest(),
        stored_at=datetime.now(UTC),
    )


# --------------------------------------------------------------------------- settings


@pytest.fixture
def no_forward_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No FRAMEHOOK_FORWARD_* in the environment, and no .env in the working directory."""
    monkeypatch.chdir(tmp_path)
    for name in ("URL", "SECRET", "EVENTS", "TIMEOUT_SECONDS"):
        monkeypatch.delenv(f"FRAMEHOOK_FORWARD_{name}", raising=False)
    return monkeypatch


def test_no_endpoint_and_no_secret_are_named_in_one_line(no_forward_env: Any) -> None:
    """Unset, the handler cannot work: one line names both variables and how to make a secret."""
    with pytest.raises(ForwardSettingsError) as caught:
        load_options()
    message = str(caught.value)
    assert "\n" not in message
    assert "FRAMEHOOK_FORWARD_URL not set" in message
    assert "FRAMEHOOK_FORWARD_SECRET not set" in message
    assert "openssl rand -base64 32" in message


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("URL", "ftp://app.example/hook", "ftp://app.example/hook is not an http(s) URL"),
        ("SECRET", "c2VjcmV0", "must start with whsec_"),
        ("SECRET", "whsec_not base64!", "is not whsec_ + base64"),
        ("SECRET", "whsec_" + base64.b64encode(b"short").decode(), "holds 5 bytes, not 24 to 64"),
        ("EVENTS", "completed,finished", "unknown events finished"),
        ("TIMEOUT_SECONDS", "600", "less than or equal to 120"),
    ],
)
def test_a_wrong_value_is_named_with_its_variable(
    no_forward_env: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    """Each wrong value fails with its variable's name and what is wrong with it."""
    no_forward_env.setenv("FRAMEHOOK_FORWARD_URL", "https://app.example/hook")
    no_forward_env.setenv("FRAMEHOOK_FORWARD_SECRET", SECRET)
    no_forward_env.setenv(f"FRAMEHOOK_FORWARD_{variable}", value)
    with pytest.raises(ForwardSettingsError, match=f"^FRAMEHOOK_FORWARD_{variable} ") as caught:
        load_options()
    assert said in str(caught.value)
    if variable == "SECRET":
        assert value not in str(caught.value)  # a secret is never echoed


def test_events_default_to_how_jobs_and_trainings_end(no_forward_env: pytest.MonkeyPatch) -> None:
    """By default completed, failed, lora.ready and lora.failed; progress only on request, and
    job.* names are read as framehook's."""
    assert ForwardHandler(options("https://a.example")).events == set(DEFAULT_EVENTS)
    progress = sample_event("progress-midjourney-45")
    assert not would_run(ForwardHandler(options("https://a.example")), progress)
    chosen = ForwardHandler(options("https://a.example", events=["job.progress", "completed"]))
    assert chosen.events == {"progress", "completed"}
    assert would_run(chosen, progress)


def test_forward_settings_are_not_reported_as_unknown() -> None:
    """The CLI's warning about unknown FRAMEHOOK_* names knows FRAMEHOOK_FORWARD_*, and still
    catches a typo in one."""
    found = unknown_variables(
        ["FRAMEHOOK_FORWARD_URL", "FRAMEHOOK_FORWARD_SECRET", "FRAMEHOOK_FORWARD_SECRT"]
    )
    assert found == [("FRAMEHOOK_FORWARD_SECRT", "FRAMEHOOK_FORWARD_SECRET")]


@pytest.mark.parametrize("command", [["serve"], ["worker"]])
def test_serve_and_worker_refuse_to_start_without_a_secret(
    command: list[str], tmp_path: Path
) -> None:
    """`forward` in FRAMEHOOK_HANDLERS and no secret: the process exits 2 at once with one
    line naming FRAMEHOOK_FORWARD_SECRET, and no traceback (a real process)."""
    env = framehook_env(
        FRAMEHOOK_HANDLERS="download,forward",
        FRAMEHOOK_FORWARD_URL="http://127.0.0.1:9/hook",
        FRAMEHOOK_PORT=str(free_port()),
    )
    done = run_cli(command, env, tmp_path)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "FRAMEHOOK_FORWARD_SECRET not set" in errors[0]
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------- the event


def test_a_completed_job_reaches_the_app_signed_with_its_files_and_links(app: App) -> None:
    """The app verifies the POST with standardwebhooks; the body is the job as the admin API
    shows it, each stored file with its link, and the file not stored under `missing`."""
    event = sample_event("completed-midjourney")
    assets = MemoryAssets()
    for position in (1, 2, 3, 4):  # of 5: the grid is not stored
        assets.records[(event.job_id, position)] = stored(event.job_id, position)
    links = FakeLinks("https://files.example")
    asyncio.run(_run(ForwardHandler(options(app.url)), event, assets=assets, links=links))

    [delivery] = app.deliveries
    assert app.rejected == []
    assert delivery.msg_id == message_id(7, event.job_id, "completed")
    assert abs(delivery.timestamp - time.time()) < 10
    assert delivery.event["type"] == "job.completed"
    assert delivery.event["timestamp"].endswith("Z")
    data = delivery.data
    assert {k: data[k] for k in ("id", "status", "model", "progress", "creditCost", "error")} == {
        "id": event.job_id,
        "status": "COMPLETED",
        "model": event.job.model,
        "progress": 100,
        "creditCost": event.payload["creditCost"],
        "error": None,
    }
    assert data["result"] == event.payload["result"]
    assert (data["test"], data["files"]) == (False, {"expected": 5, "stored": 4})
    first = data["assets"][0]
    asset = stored(event.job_id, 1)
    assert first == {
        "position": 1,
        "kind": "image",
        "contentType": "image/png",
        "size": asset.size,
        "sha256": asset.sha256,
        "storageUri": asset.storage_uri,
        "sourceUrl": asset.source_url,
        "url": f"https://files.example/{asset.key}",
        "urlExpiresAt": first["urlExpiresAt"],
    }
    expires = datetime.fromisoformat(first["urlExpiresAt"])
    assert expires - datetime.now(UTC) > timedelta(days=6)
    [missing] = data["missing"]
    assert (missing["position"], missing["kind"]) == (5, "grid")
    assert missing["sourceUrl"] == event.payload["result"]["gridUrl"].split("?")[0]
    assert "not stored" in missing["reason"]


def test_the_webhook_id_stays_the_same_on_every_attempt(app: App) -> None:
    """Two attempts of one task carry one webhook-id (each signed afresh); another task's
    event has another."""
    event = sample_event("failed-content-policy")
    handler = ForwardHandler(options(app.url))
    asyncio.run(_run(handler, event, attempt=1))
    asyncio.run(_run(handler, event, attempt=2))
    asyncio.run(_run(handler, event, task_id=8))
    ids = [d.msg_id for d in app.deliveries]
    assert ids[0] == ids[1] != ids[2]
    assert app.deliveries[0].event["type"] == "job.failed"
    assert app.deliveries[0].data["error"] == event.job.error
    assert app.deliveries[0].data["files"] == {"expected": 0, "stored": 0}


def test_a_lora_event_carries_the_lora(app: App) -> None:
    """lora.ready is forwarded with the LoRA as Apiframe names its fields."""
    asyncio.run(_run(ForwardHandler(options(app.url)), lora_event("READY", lora_id="lora_1")))
    [delivery] = app.deliveries
    assert delivery.event["type"] == "lora.ready"
    assert delivery.data["id"] == "lora_1"
    assert (delivery.data["status"], delivery.data["triggerWord"]) == ("READY", "TOKPN")


def test_a_test_event_is_forwarded_marked_as_a_test(app: App) -> None:
    """send-test's events reach the app too, saying `test: true`, with no file missing."""
    event = sample_event("completed-midjourney", test=True)
    asyncio.run(_run(ForwardHandler(options(app.url)), event))
    [delivery] = app.deliveries
    assert delivery.data["test"] is True
    assert (delivery.data["missing"], delivery.data["files"]["expected"]) == ([], 0)


class _BrokenLinks:
    async def link(self, asset: Asset) -> AssetLink | None:
        raise StorageError("the signer is down")


def test_links_the_storage_cannot_make_are_retried_before_anything_is_sent(app: App) -> None:
    """A storage signing error is a retry, and the app gets nothing without its links."""
    event = sample_event("completed-midjourney")
    assets = MemoryAssets()
    assets.records[(event.job_id, 1)] = stored(event.job_id, 1)
    handler = ForwardHandler(options(app.url))
    with pytest.raises(RetryLater, match="making download links failed: the signer is down"):
        asyncio.run(_run(handler, event, assets=assets, links=_BrokenLinks()))
    assert app.deliveries == []


# --------------------------------------------------------------------------- delivery rules


def _outcome(app: App, *replies: Reply, **values: Any) -> BaseException | None:
    event = sample_event("failed-content-policy")
    app.plan(event.job_id, *replies)
    try:
        asyncio.run(_run(ForwardHandler(options(app.url, **values)), event))
    except Exception as exc:
        return exc
    return None


def test_a_2xx_is_success(app: App) -> None:
    """Any 2xx: the task succeeds."""
    assert _outcome(app, Reply(200)) is None
    assert _outcome(app, Reply(202, body=b"queued")) is None


def test_a_5xx_or_429_is_retried_after_its_retry_after(app: App) -> None:
    """5xx and 429 retry, honouring Retry-After in seconds or as an HTTP date, capped."""
    failed = _outcome(app, Reply(503, {"Retry-After": "7"}, b"deploying"))
    assert isinstance(failed, NotDelivered)
    assert failed.delay == 7
    assert "503 Service Unavailable: deploying" in failed.reason
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    limited = _outcome(app, Reply(429, {"Retry-After": later}))
    assert isinstance(limited, NotDelivered)
    assert limited.delay is not None
    assert 100 < limited.delay <= 120
    absurd = _outcome(app, Reply(500, {"Retry-After": "9999999"}))
    assert isinstance(absurd, NotDelivered)
    assert absurd.delay == MAX_RETRY_AFTER
    plain = _outcome(app, Reply(502))
    assert isinstance(plain, NotDelivered)
    assert plain.delay is None  # the usual backoff


def test_a_410_stops(app: App) -> None:
    """410 Gone: a permanent failure, no retry."""
    gone = _outcome(app, Reply(410))
    assert isinstance(gone, PermanentFailure)
    assert "410 Gone" in gone.reason


def test_another_4xx_is_a_failure_retried_with_backoff(app: App) -> None:
    """400, 401, 404...: retried with the usual backoff (dead after the attempts); a
    Retry-After on them is not honoured."""
    refused = _outcome(app, Reply(400, {"Retry-After": "30"}, b"bad event"))
    assert isinstance(refused, NotDelivered)
    assert refused.delay is None
    assert "400 Bad Request: bad event" in refused.reason


def test_a_redirect_is_a_failure_and_never_followed(app: App) -> None:
    """A 3xx is not followed: the task fails saying where it pointed and why."""
    with App() as elsewhere:
        moved = _outcome(app, Reply(308, {"Location": elsewhere.url}))
        assert isinstance(moved, NotDelivered)
        assert f"308 Permanent Redirect to {elsewhere.url}" in moved.reason
        assert "does not follow redirects" in moved.reason
        assert elsewhere.deliveries == []


def test_a_slow_app_is_cut_off_at_the_timeout(app: App) -> None:
    """An app that does not answer within FRAMEHOOK_FORWARD_TIMEOUT_SECONDS is a retry, and
    the attempt ends then, not when the app answers."""
    started = time.monotonic()
    slow = _outcome(app, Reply(200, delay=3), timeout_seconds=0.5)
    assert time.monotonic() - started < 2.5
    assert isinstance(slow, NotDelivered)
    assert "0.5 s" in slow.reason


def test_a_long_answer_is_read_only_in_part(app: App) -> None:
    """A 500 with a megabyte of body: the error keeps its start, the rest is never read."""
    failed = _outcome(app, Reply(500, body=b"x" * 1_000_000))
    assert isinstance(failed, NotDelivered)
    assert len(failed.reason) < 1000


def test_nothing_listening_is_a_retry(tmp_path: Path) -> None:
    """A refused connection: retried (the app may be restarting)."""
    event = sample_event("failed-content-policy")
    handler = ForwardHandler(options(f"http://127.0.0.1:{free_port()}/hook"))
    with pytest.raises(NotDelivered, match="ConnectError"):
        asyncio.run(_run(handler, event))


def test_several_endpoints_each_get_every_attempt_with_one_id(app: App) -> None:
    """Two apps: every attempt goes to both with the same webhook-id (the one that took it
    drops the copy); a 410 from one does not stop the other's retries; 410 from all stops."""
    event = sample_event("failed-content-policy")
    with App() as second:
        handler = ForwardHandler(options(app.url, second.url))
        second.plan(event.job_id, Reply(500), Reply(410), Reply(410))
        app.plan(event.job_id, Reply(204), Reply(500), Reply(410))
        with pytest.raises(NotDelivered, match=r"1 of 2 endpoints .* 500 Internal Server Error"):
            asyncio.run(_run(handler, event))
        with pytest.raises(NotDelivered, match="2 of 2 endpoints"):
            asyncio.run(_run(handler, event, attempt=2))
        with pytest.raises(PermanentFailure, match="410 Gone"):
            asyncio.run(_run(handler, event, attempt=3))
        assert len({d.msg_id for d in app.deliveries + second.deliveries}) == 1
        assert (len(app.deliveries), len(second.deliveries)) == (3, 3)


def test_an_app_with_another_secret_refuses_the_event() -> None:
    """The signature is real: an app verifying with another secret refuses it (401)."""
    with App(OTHER_SECRET) as stranger:
        event = sample_event("failed-content-policy")
        with pytest.raises(NotDelivered, match="401"):
            asyncio.run(_run(ForwardHandler(options(stranger.url)), event))
        assert stranger.deliveries == []
        assert len(stranger.rejected) == 1


# --------------------------------------------------------------------------- send-test, doctor


def _forward_env(*urls: str) -> dict[str, str | None]:
    return {
        "APIFRAME_API_KEY": API_KEY,
        "FRAMEHOOK_FORWARD_URL": ",".join(urls),
        "FRAMEHOOK_FORWARD_SECRET": SECRET,
    }


@pytest.mark.parametrize("event", ["completed", "failed", "progress", "lora.ready", "lora.failed"])
def test_send_test_forward_fires_a_signed_sample_at_the_app(
    app: App, event: str, no_forward_env: Any
) -> None:
    """`send-test EVENT --forward` posts a sample the app verifies, marked as a test, and
    prints the answer."""
    result = CliRunner().invoke(cli, ["send-test", event, "--forward"], env=_forward_env(app.url))
    assert result.exit_code == 0, result.output
    [delivery] = app.deliveries
    expected = event if event.startswith("lora.") else f"job.{event}"
    assert delivery.event["type"] == expected
    assert delivery.data["test"] is True
    assert delivery.msg_id.startswith("msg_framehook_test_")
    assert f"{app.url}: 204 No Content" in result.stdout
    if event == "completed":
        assert delivery.data["assets"]
        assert all(a["url"] for a in delivery.data["assets"])


def test_send_test_forward_exits_1_when_the_app_refuses(no_forward_env: Any) -> None:
    """An app that refuses (here: another secret) makes the command exit 1, printing why."""
    with App(OTHER_SECRET) as stranger:
        result = CliRunner().invoke(
            cli, ["send-test", "completed", "--forward"], env=_forward_env(stranger.url)
        )
    assert result.exit_code == 1, result.output
    assert "401 Unauthorized" in result.stdout
    assert "signature refused" in result.stdout


def test_send_test_forward_names_what_is_missing(no_forward_env: Any) -> None:
    """No secret: one line naming the variable, exit 2; a webhook option with --forward is a
    usage error."""
    result = CliRunner().invoke(
        cli,
        ["send-test", "completed", "--forward", "--url", "http://127.0.0.1:9/h"],
        env={"APIFRAME_API_KEY": API_KEY},
    )
    assert result.exit_code == 2
    assert "FRAMEHOOK_FORWARD_SECRET not set" in result.stderr
    mixed = CliRunner().invoke(
        cli, ["send-test", "completed", "--forward", "--repeat", "2"], env=_forward_env("x")
    )
    assert mixed.exit_code == 2
    assert "--forward takes only EVENT, --url and --timeout" in mixed.stderr


def test_doctor_pings_each_forward_endpoint(app: App, no_forward_env: pytest.MonkeyPatch) -> None:
    """One check per endpoint: ok for an app that takes the signed ping, FAIL for one that
    refuses its signature or does not answer; none when forward is not configured."""
    with App(OTHER_SECRET) as stranger:
        nowhere = f"http://127.0.0.1:{free_port()}/hook"
        no_forward_env.setenv("FRAMEHOOK_FORWARD_URL", f"{app.url},{stranger.url},{nowhere}")
        no_forward_env.setenv("FRAMEHOOK_FORWARD_SECRET", SECRET)
        settings = Settings(api_key=API_KEY, handlers=["download", "forward"])
        checks = check_forward(settings, timeout=2)
        assert check_forward(Settings(api_key=API_KEY, handlers=["download"])) == []
    assert [c.status for c in checks] == [Status.OK, Status.FAIL, Status.FAIL]
    assert f"POST {app.url}" in checks[0].detail
    assert "401" in checks[1].detail
    assert checks[1].hint is not None
    assert "FRAMEHOOK_FORWARD_SECRET" in checks[1].hint
    assert "ConnectError" in checks[2].detail
    [ping] = app.deliveries
    assert ping.event["type"] == "webhook.test"
