"""``framehook demo``: the fake Apiframe, the receiver and a few jobs, offline, in one process.

Both apps are served by uvicorn on loopback in one event loop; the jobs go to the fake through
``ApiframeClient`` like real ones to Apiframe, and the live table reads only framehook's
database: what the webhooks recorded and what the download handler captured.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from receiver.admin import dashboard_url
from receiver.apiframe.client import ApiframeClient, ApiframeError
from receiver.app import create_app
from receiver.db.engine import create_db_engine
from receiver.db.models import TaskStatus
from receiver.dev.fakeapi import Behaviour, create_fake_apiframe
from receiver.dev.live import JobView, jobs_table, read_jobs
from receiver.dev.loopback import Loopback, loopback_settings
from receiver.logs import configure_logging

__all__ = ["DEMO_JOBS", "DemoJob", "run_demo"]


@dataclass(frozen=True, slots=True)
class DemoJob:
    """One job the demo submits: route, model, prompt, and how it should end."""

    route: str
    model: str
    prompt: str
    status: str = "COMPLETED"


DEMO_JOBS = (
    DemoJob("images/generate", "midjourney", "a lighthouse at dusk, cinematic, 35mm"),
    DemoJob("images/generate", "gpt-image-2", "a watercolor fox reading a paper map"),
    DemoJob("videos/generate", "kling-2.6", "a paper boat drifting down a rainy street"),
    DemoJob("videos/generate", "midjourney-video", "neon koi swimming through clouds"),
    DemoJob("music/generate", "suno", "lo-fi beat for a late-night coding session"),
    # The fake fails any job whose prompt says "fail".
    DemoJob("images/generate", "flux-2-pro", "this one is meant to fail", status="FAILED"),
)


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


@dataclass
class _Run:
    """The jobs the demo submitted (by their place in ``DEMO_JOBS``), and what went wrong."""

    ids: dict[int, str]
    error: str | None = None

    def rows(self, views: dict[str, JobView]) -> list[tuple[str, str, JobView | None]]:
        # Every demo job from the start: "-" and "waiting" until it is submitted.
        return [
            (self.ids.get(n, "-"), job.model, views.get(self.ids.get(n, "")))
            for n, job in enumerate(DEMO_JOBS)
        ]

    def done(self, views: dict[str, JobView]) -> bool:
        return len(self.ids) == len(DEMO_JOBS) and all(
            (v := views.get(i)) is not None and v.settled for i in self.ids.values()
        )


async def _submit(client: ApiframeClient, run: _Run, webhook_url: str, gap: float) -> None:
    for number, job in enumerate(DEMO_JOBS):
        payload: dict[str, Any] = {
            "model": job.model,
            "prompt": job.prompt,
            "webhookUrl": webhook_url,
            "webhookEvents": ["progress", "completed", "failed"],
        }
        if job.model == "midjourney-video":
            # Apiframe animates a still: the model requires its start image.
            payload["midjourneyVideoParams"] = {"start_image": "https://example.com/still.png"}
        try:
            run.ids[number] = await client.create(job.route, payload)
        except ApiframeError as exc:
            run.error = f"the fake Apiframe refused a job: {exc}"
            return
        await asyncio.sleep(gap)


async def _follow(
    engine: Engine, run: _Run, console: Console, stop: asyncio.Event, seconds: float
) -> tuple[dict[str, JobView], str | None]:
    """Refresh the live table until every job settles; return the views and what went wrong."""
    deadline = time.monotonic() + seconds
    views: dict[str, JobView] = {}
    with Live(console=console, refresh_per_second=8) as live:
        while True:
            with contextlib.suppress(SQLAlchemyError):
                views = await asyncio.to_thread(read_jobs, engine, list(run.ids.values()))
            live.update(jobs_table(run.rows(views), title="framehook demo"))
            if run.error or run.done(views):
                return views, run.error
            if stop.is_set():
                return views, "interrupted"
            if time.monotonic() > deadline:
                return views, f"timed out after {seconds:g} s before every job was settled"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)


def _problems(run: _Run, views: dict[str, JobView]) -> list[str]:
    problems = []
    for number, job in enumerate(DEMO_JOBS):
        view = views.get(run.ids.get(number, ""))
        if view is None or view.status != job.status:
            got = "no webhook" if view is None else view.status
            problems.append(f"{job.model}: expected {job.status}, got {got}")
        elif view.capture == TaskStatus.DEAD or len(view.files) < view.expected:
            problems.append(f"{job.model}: files not captured ({view.capture_error or 'none'})")
    return problems


def _summary(console: Console, run: _Run, views: dict[str, JobView], directory: Path) -> None:
    console.print(jobs_table(run.rows(views), title="Jobs", final=True))
    files = [f for job_id in run.ids.values() if job_id in views for f in views[job_id].files]
    console.print(f"\n[bold]Files on disk[/] ({len(files)}):")
    for file in files:
        path = _shown(Path(unquote(urlsplit(file.uri).path)))
        console.print(
            f"  {escape(path)}  [dim]{file.content_type}, {file.size:,} B[/]", soft_wrap=True
        )
    database = _shown(directory / "framehook.db")
    console.print(
        "\n[bold]Where to look next[/]\n"
        f"  • the database: [cyan]sqlite3 {database} 'select id, model, status from jobs'[/]"
        " (tables jobs, deliveries, tasks, assets)\n"
        "  • with your own key: [cyan]framehook serve[/], then [cyan]framehook generate "
        "images/generate --model midjourney --prompt '...' --public-url https://<tunnel>[/]\n"
        "  • [cyan]framehook send-test completed[/] posts a signed sample webhook to a receiver;"
        " [cyan]framehook replay --dead[/] runs failed captures again\n"
        "  • README.md: configuration, asset capture, writing your own handlers",
        soft_wrap=True,
    )


async def _demo(
    directory: Path, console: Console, *, seconds: float, keep_running: bool, step: float
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C raises instead
            loop.add_signal_handler(sig, stop.set)
    api_key = f"afk_demo_{secrets.token_hex(16)}"
    # The demo's own admin token, so the dashboard link below signs the browser in.
    admin_token = secrets.token_urlsafe(24)
    behaviour = Behaviour(step_seconds=step, progress_steps=10, webhook_backoff_seconds=0.2)
    try:
        async with Loopback() as loopback:
            api_url = await loopback.serve(create_fake_apiframe(api_key, behaviour=behaviour))
            settings = loopback_settings(
                directory,
                api_key,
                api_url,
                retry_base_seconds=0.5,
                retry_max_seconds=5,
                retry_max_attempts=4,
                grace_seconds=2,
                admin_token=admin_token,
            )
            receiver_url = await loopback.serve(create_app(settings))
            dashboard = dashboard_url(receiver_url, admin_token)
            console.print(
                f"fake Apiframe at [bold]{api_url}[/], framehook at [bold]{receiver_url}[/], "
                f"data in [bold]{escape(_shown(directory))}[/]\n"
                f"dashboard: [bold]{dashboard}[/]",
                soft_wrap=True,
            )
            run = _Run({})
            engine = loopback.dispose_later(create_db_engine(settings.database_url, pool_size=1))
            client = loopback.close_later(ApiframeClient(api_key, api_url, attempts=3))
            webhook_url = f"{receiver_url}/webhooks/apiframe"
            submitting = asyncio.create_task(_submit(client, run, webhook_url, gap=3 * step))
            views, error = await _follow(engine, run, console, stop, seconds)
            submitting.cancel()
            await asyncio.gather(submitting, return_exceptions=True)
            console.print()
            if error == "interrupted":
                console.print("[yellow]interrupted[/]")
                return 130
            _summary(console, run, views, directory)
            problems = [error] if error else _problems(run, views)
            for problem in problems:
                console.print(f"[bold red]error:[/] {escape(problem)}")
            if keep_running and not stop.is_set():
                console.print(
                    f"\n[bold]Still running[/] (Ctrl-C stops both): fake Apiframe {api_url}, "
                    f"framehook {receiver_url}.\n  The dashboard: [bold]{dashboard}[/]\n"
                    f"  Another job:\n  [cyan]APIFRAME_API_KEY={api_key} "
                    f"framehook generate images/generate --model midjourney --prompt 'a red kite' "
                    f"--api-url {api_url} --public-url {receiver_url} "
                    f"--database-url {settings.database_url}[/]",
                    soft_wrap=True,
                )
                await stop.wait()
            return 1 if problems else 0

    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)


def run_demo(
    directory: Path,
    *,
    timeout: float = 120.0,
    keep_running: bool = False,
    step_seconds: float = 0.3,
    console: Console | None = None,
) -> int:
    """Run the demo; return the exit code (0: every job ended as planned, its files on disk).

    Args:
        directory: where the SQLite database and the captured files go (created if missing).
        timeout: seconds to wait for every job to end and its files to be captured.
        keep_running: keep both servers up after the summary, until Ctrl-C or SIGTERM.
        step_seconds: the fake's time between a job's steps (the demo's pace).
        console: where to print (stdout by default).
    """
    console = console or Console(highlight=False)
    directory = directory.resolve()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        console.print(f"[bold red]error:[/] cannot create {escape(str(directory))}: {exc}")
        return 2
    configure_logging("console", "warning")
    demo = _demo(directory, console, seconds=timeout, keep_running=keep_running, step=step_seconds)
    try:
        return asyncio.run(demo)
    except SystemExit:
        # uvicorn exits the process when an app's start-up fails; the log said why.
        console.print("[bold red]error:[/] the demo could not start (see the log above)")
        return 1
