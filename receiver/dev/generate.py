"""``framehook generate``: submit one job to Apiframe and follow it until its files are stored.

The job is created with ``webhookUrl`` set to this receiver's public address, so the running
``framehook serve`` records its webhooks and captures its files; the live display reads that
database. Should no webhook come, it polls ``GET /v2/jobs/:id`` and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from rich.console import Console, RenderableType
from rich.live import Live
from rich.markup import escape

from receiver.apiframe.client import DEFAULT_API_URL, ApiframeClient, ApiframeError
from receiver.db.models import TaskStatus
from receiver.dev.live import TERMINAL, JobWatch, jobs_table
from receiver.retry import RetryPolicy
from receiver.settings import Settings

__all__ = ["NO_PUBLIC_URL", "Follow", "JobRequest", "UsageProblem", "build_request", "run_generate"]

_WEBHOOK_PATH = "/webhooks/apiframe"
_RESERVED = frozenset({"model", "prompt", "webhookUrl", "webhookEvents"})
_USAGE_STATUSES = frozenset({400, 401, 403, 404, 405, 422})
NO_PUBLIC_URL = (
    "no public URL: Apiframe must reach this receiver to send the job's webhooks. Pass "
    "--public-url (or set FRAMEHOOK_PUBLIC_URL) to the address that forwards to `framehook "
    "serve`; on a laptop, a tunnel's URL (e.g. `cloudflared tunnel --url "
    "http://127.0.0.1:8000` or `ngrok http 8000`)"
)


class UsageProblem(ValueError):
    """The command line cannot make a job request (the message says why)."""


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A job to create: ``POST /v2/<route>`` with ``payload`` (webhook fields included)."""

    route: str
    payload: dict[str, Any]

    @property
    def webhook_url(self) -> str:
        """Where Apiframe sends the job's webhooks."""
        return str(self.payload["webhookUrl"])


def _param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UsageProblem(f"--param {text!r} is not key=value")
    if key.strip() in _RESERVED:
        raise UsageProblem(f"--param {key.strip()} is set by framehook generate itself")
    try:
        value: Any = orjson.loads(raw)  # numbers, booleans, arrays, objects
    except orjson.JSONDecodeError:
        value = raw
    return key.strip(), value


def build_request(
    route: str,
    *,
    model: str | None,
    prompt: str | None,
    params: Sequence[str],
    public_url: str | None,
) -> JobRequest:
    """The job request the command line describes.

    Raises:
        UsageProblem: no public URL, a bad ``--param``, or a route without its prompt.
    """
    route = route.strip().strip("/").removeprefix("v2/")
    if not route or " " in route:
        raise UsageProblem(f"ROUTE {route!r} is not a route like images/generate")
    if prompt is None and route.endswith("/generate"):
        raise UsageProblem(f"{route} needs --prompt")
    if not public_url:
        raise UsageProblem(NO_PUBLIC_URL)
    try:
        url = httpx.URL(public_url.strip())
    except httpx.InvalidURL as exc:
        raise UsageProblem(f"--public-url {public_url!r} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise UsageProblem(f"--public-url {public_url!r} is not an http(s) URL")
    base = str(url).rstrip("/")
    payload: dict[str, Any] = dict(_param(p) for p in params)
    if model:
        payload["model"] = model
    if prompt is not None:
        payload["prompt"] = prompt
    payload["webhookUrl"] = base if base.endswith(_WEBHOOK_PATH) else base + _WEBHOOK_PATH
    payload["webhookEvents"] = ["progress", "completed", "failed"]
    return JobRequest(route, payload)


def _unreachable_by_apiframe(webhook_url: str) -> bool:
    host = httpx.URL(webhook_url).host
    with contextlib.suppress(ValueError):
        return not ipaddress.ip_address(host).is_global
    return host == "localhost" or host.endswith(".localhost")


def _display(watch: JobWatch, model: str, request: JobRequest) -> RenderableType:
    notes = [f"[yellow]{escape(problem)}[/]" for problem in watch.problems.values()]
    view = watch.view
    if view is None:
        notes.append(f"waiting for the first webhook at {escape(request.webhook_url)}")
    elif view.capturing:
        notes.append(f"capturing files: {len(view.files)} of {view.expected} stored")
    if watch.polling and watch.api is not None:
        notes.append(
            f"[yellow]no webhook for {watch.quiet:.0f} s: polling Apiframe, which says "
            f"{escape(watch.api_status or '?')} {watch.api.get('progress') or 0}%[/]"
        )
    return jobs_table([(watch.job_id, model, view)], notes=notes)


def _outcome(watch: JobWatch, out: Console, err: Console, request: JobRequest) -> int | None:
    """The exit code once the job has settled (``None`` while it has not)."""
    view = watch.view
    if view is not None and view.status == "COMPLETED" and view.settled:
        if view.capture == TaskStatus.DEAD:
            err.print(
                f"[bold red]completed, but capturing its files failed:[/] "
                f"{escape(view.capture_error or 'unknown error')}; "
                f"`framehook replay --job {watch.job_id}` tries again",
                soft_wrap=True,
            )
            return 1
        for file in view.files:
            out.print(file.uri, soft_wrap=True, markup=False)
        if view.capture is None:
            err.print("completed; no download handler captured files (FRAMEHOOK_HANDLERS)")
        else:
            err.print(f"[green]completed:[/] {len(view.files)} files stored")
        return 0
    if view is not None and view.terminal and view.status != "COMPLETED":
        err.print(f"[bold red]job {view.status}:[/] {escape(view.error or 'no error given')}")
        return 1
    if (view is None or not view.terminal) and watch.api is not None:
        status = watch.api_status or ""
        if status not in TERMINAL:
            return None
        error = watch.api.get("error") or "no error given"
        done = f"job {status}: {error}" if status != "COMPLETED" else "Apiframe completed the job"
        err.print(
            f"[bold red]{escape(done)}[/], but no {status.lower()} webhook reached framehook's "
            f"database: is `framehook serve` reachable at {escape(request.webhook_url)} and "
            "using this FRAMEHOOK_DATABASE_URL?",
            soft_wrap=True,
        )
        return 1
    return None


@dataclass(frozen=True, slots=True)
class Follow:
    """How patiently to follow a job (seconds).

    Attributes:
        timeout: how long to follow it at all.
        poll_seconds: how often to ask Apiframe while no webhook comes.
        quiet_seconds: how long the database may go without news before polling starts.
        grace_seconds: how long to wait for the webhook once Apiframe says the job ended.
    """

    timeout: float = 900.0
    poll_seconds: float = 5.0
    quiet_seconds: float = 10.0
    grace_seconds: float = 30.0


def _finished(watch: JobWatch, grace_seconds: float) -> bool:
    view = watch.view
    if view is not None and view.settled:
        return True
    # Apiframe says the job ended, and its webhook is still not here after a grace period.
    ended = watch.api_ended_at
    stuck = view is None or not view.terminal
    return stuck and ended is not None and time.monotonic() - ended > grace_seconds


async def _follow(watch: JobWatch, request: JobRequest, how: Follow, err: Console) -> None:
    model = str(request.payload.get("model", request.route))
    poller = asyncio.create_task(watch.poll(how.poll_seconds))
    deadline = time.monotonic() + how.timeout
    try:
        with Live(_display(watch, model, request), console=err, refresh_per_second=4) as live:
            while not _finished(watch, how.grace_seconds) and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                await asyncio.to_thread(watch.read)
                live.update(_display(watch, model, request))
        if not err.is_terminal:
            err.line()  # rich ends a live display's last frame without one there
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        await asyncio.to_thread(watch.close)


async def _generate(
    settings: Settings,
    api_key: str,
    request: JobRequest,
    how: Follow | None,
    out: Console,
    err: Console,
) -> int:
    if settings.apiframe_url.rstrip("/") == DEFAULT_API_URL and _unreachable_by_apiframe(
        request.webhook_url
    ):
        err.print(
            f"[yellow]warning:[/] Apiframe cannot reach {escape(request.webhook_url)}; "
            "webhooks need a public URL (a tunnel) and will not arrive",
            soft_wrap=True,
        )
    # Few, quick retries: a person is waiting, and a lost answer to a POST may mean a job.
    policy = RetryPolicy(0.5, 4.0, 100)
    client = ApiframeClient(api_key, settings.apiframe_url, attempts=3, policy=policy)
    try:
        try:
            job_id = await client.create(request.route, request.payload)
        except ApiframeError as exc:
            reached = "" if exc.status is not None else f"could not reach {settings.apiframe_url}: "
            err.print(f"[bold red]error:[/] {escape(reached + str(exc))}", soft_wrap=True)
            return 2 if exc.status in _USAGE_STATUSES else 1
        out.print(f"job {job_id}", markup=False)
        err.print(f"webhooks to {escape(request.webhook_url)}", soft_wrap=True)
        if how is None:
            return 0
        watch = JobWatch(job_id, settings.database_url, client, how.quiet_seconds)
        await _follow(watch, request, how, err)
    finally:
        await client.aclose()
    code = _outcome(watch, out, err, request)
    if code is None:
        status = watch.view.status if watch.view else watch.api_status or "unknown"
        if watch.view is not None and watch.view.capturing:
            status += ", its files still being captured"
        err.print(
            f"[bold red]timed out[/] after {how.timeout:g} s; the job is {status}. framehook "
            "keeps recording its webhooks: look again later",
            soft_wrap=True,
        )
        return 1
    return code


def run_generate(
    settings: Settings,
    api_key: str,
    request: JobRequest,
    follow: Follow | None = None,
    *,
    out: Console | None = None,
    err: Console | None = None,
) -> int:
    """Create the job and, unless ``follow`` is ``None``, follow it; return the exit code.

    0: completed with its files recorded (their storage URIs printed on ``out``), or only
    submitted; 1: failed, cancelled, timed out, capture failed, API unreachable; 2: the API
    refused the request or the key; 130: interrupted.

    Args:
        settings: its ``apiframe_url`` and ``database_url`` are used.
        api_key: sent to Apiframe.
        request: what to create (see :func:`build_request`).
        follow: how to follow the job; ``None`` only submits it.
        out: the job id and storage URIs (stdout by default).
        err: the live display and messages (stderr by default).

    Raises:
        ConfigurationError: the database URL is unusable.
    """
    out = out or Console(highlight=False)
    err = err or Console(stderr=True, highlight=False)
    try:
        return asyncio.run(_generate(settings, api_key, request, follow, out, err))
    except KeyboardInterrupt:
        err.print("stopped watching; the job goes on at Apiframe and framehook records it")
        return 130
