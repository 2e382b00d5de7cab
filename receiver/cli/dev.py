"""Commands for trying framehook without production traffic: ``send-test``, ``demo``,
``generate`` and ``simulate``.

They are the only commands that need the fake Apiframe, the demo and the simulator (and
through them uvicorn): those are imported inside each command, never by the package, so a
``framehook worker`` process does not carry them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from receiver.cli.config import err, fail, load_settings
from receiver.errors import FramehookError

__all__ = ["demo", "generate", "send_test", "simulate"]


def send_test(
    event: Annotated[
        str,
        typer.Argument(
            metavar="EVENT",
            help="progress, completed or failed (with --forward, also lora.ready, lora.failed).",
        ),
    ],
    url: Annotated[
        str | None,
        typer.Option(
            help="Where to POST (default: http://FRAMEHOOK_HOST:FRAMEHOOK_PORT/webhooks/apiframe)."
        ),
    ] = None,
    modality: Annotated[
        str,
        typer.Option(help="image, upscale, midjourney, video, midjourney-video, music or stems."),
    ] = "midjourney",
    model: Annotated[
        str | None, typer.Option(help="The job's model (default: the modality's usual one).")
    ] = None,
    job_id: Annotated[str | None, typer.Option(help="The job's id (default: a new UUID).")] = None,
    progress: Annotated[
        int | None,
        typer.Option(help="A progress event's percentage (default: 45).", min=0, max=100),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="The key to sign with (default: APIFRAME_API_KEY).")
    ] = None,
    asset_base_url: Annotated[
        str | None,
        typer.Option(
            help="Where the result's URLs point (default: https://cdn2.apiframe.ai); made up, "
            "never fetched."
        ),
    ] = None,
    repeat: Annotated[
        int, typer.Option(help="Send the same bytes this many times (a redelivery).", min=1)
    ] = 1,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.", min=0.1)] = 10,
    forward: Annotated[
        bool,
        typer.Option(
            "--forward",
            help="Instead, POST a signed sample of the event the forward handler sends to your "
            "app, to FRAMEHOOK_FORWARD_URL (or --url).",
        ),
    ] = False,
) -> None:
    """Sign and POST a realistic Apiframe webhook, marked as a test, like `stripe trigger`.

    The body is marked as a test event ("framehookTest": true, inside the signed body): the
    receiver records a test job, which counts no credits, and whose files (made-up URLs) are
    not captured: the download task ends at once with "test event: nothing to capture". A
    test event never changes a job that real Apiframe events created.

    Prints each answer's status and JSON, then the job to look at (`framehook jobs show ID`);
    exits 0 if every answer was 2xx, else 1.

    With --forward, your app gets the event framehook forwards (job.completed, ...), signed
    with FRAMEHOOK_FORWARD_SECRET, its data marked "test": true; prints each endpoint's answer.
    """
    if forward:
        mixed = modality != "midjourney" or repeat != 1
        mixed = mixed or any(v is not None for v in (model, job_id, progress, api_key))
        if mixed or asset_base_url is not None:
            raise fail("--forward takes only EVENT, --url and --timeout")
        _send_forward(event, url, timeout)
        return
    import json
    import uuid

    import httpx
    from rich.markup import escape

    from receiver.dev.fakeapi import CDN_BASE_URL, sample_webhook, signature

    if event not in ("progress", "completed", "failed"):
        raise fail(f"unknown event {event!r}: say progress, completed or failed")
    if progress is not None and event != "progress":
        raise fail("--progress goes with the progress event")
    try:
        job_id = None if job_id is None else str(uuid.UUID(job_id))
    except ValueError:
        raise fail(f"--job-id {job_id!r} is not a UUID (Apiframe's job ids are)") from None
    settings = load_settings()
    key = api_key or next(iter(settings.signing_api_keys()), None)
    if not key:
        raise fail("no API key to sign with: pass --api-key or set APIFRAME_API_KEY")
    if url is None:
        # A server bound to every interface is reached on loopback.
        any_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104
        host = any_host.get(settings.host, settings.host)
        url = f"http://{f'[{host}]' if ':' in host else host}:{settings.port}/webhooks/apiframe"
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise fail(f"--url {url!r} is not a URL: {exc}") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise fail(f"--url {url!r} is not an http(s) URL")
    try:
        payload = sample_webhook(
            event,
            modality,
            model=model,
            job_id=job_id,
            progress=progress,
            asset_base_url=asset_base_url or CDN_BASE_URL,
            test=True,
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "framehook-send-test",
        "X-Webhook-Event": event,
        "X-Webhook-Signature": signature(body, key),
    }
    err.print(
        f"POST {escape(url)}: test {event} of job {payload['jobId']} ({payload['model']})",
        soft_wrap=True,
    )
    all_ok, outcomes = True, set()
    with httpx.Client(timeout=timeout) as client:
        for _ in range(repeat):
            try:
                response = client.post(target, content=body, headers=headers)
            except httpx.ConnectError as exc:
                raise fail(f"could not connect to {url} ({exc}): is it running?", 1) from None
            except httpx.HTTPError as exc:
                raise fail(f"no answer from {url}: {type(exc).__name__}: {exc}", 1) from None
            typer.echo(f"{response.status_code} {response.reason_phrase}")
            try:
                answer = response.json()
            except ValueError:
                typer.echo(response.text)
            else:
                typer.echo(json.dumps(answer, indent=2))
                if isinstance(answer, dict):
                    outcomes.add(answer.get("outcome"))
            all_ok = all_ok and response.is_success
    if not all_ok:
        raise typer.Exit(1)
    err.print(_test_note(str(payload["jobId"]), event, outcomes), soft_wrap=True, highlight=False)


def _send_forward(event: str, url: str | None, timeout: float) -> None:
    """``send-test --forward``: a signed sample of what the forward handler posts, to the app's
    endpoints; each answer on standard output, exit 1 unless all were 2xx."""
    import asyncio
    import uuid

    from handlers.forward import Signer, deliver, load_options, sample

    load_settings()  # as every command: the .env, and a warning for a misspelt name
    try:
        options = load_options(**({"url": [url]} if url is not None else {}))
        kind, body = sample(event)
    except ValueError as exc:  # ForwardSettingsError too
        message = str(exc)
        raise fail(message.replace("FRAMEHOOK_FORWARD_URL", "--url") if url else message) from None
    msg_id = f"msg_framehook_test_{uuid.uuid4().hex[:16]}"
    headers = Signer(options.secret_value).headers(msg_id, body)
    endpoints = f"{len(options.url)} endpoints" if len(options.url) > 1 else "the endpoint"
    err.print(
        f"POST a signed sample {kind} (webhook-id {msg_id}, data.test true) to {endpoints}",
        soft_wrap=True,
    )
    answers = asyncio.run(deliver(options.url, body, headers, timeout_seconds=timeout))
    for answer in answers:
        typer.echo(f"{answer.url}: {answer.detail}")
        if answer.body.strip():
            typer.echo(answer.body.strip())
    if not all(answer.ok for answer in answers):
        raise typer.Exit(1)


def _test_note(job_id: str, event: str, outcomes: set[object]) -> str:
    """What ``send-test`` tells after posting: what a test event does, and where to look."""
    if outcomes == {"stale"}:
        return (
            f"The test event changed nothing (stale): job {job_id} has moved past it, or real "
            f"Apiframe events created it (a test event never changes a real job).\n"
            f"See it: framehook jobs show {job_id}"
        )
    from handlers.download import NOTHING_TO_CAPTURE

    files = f' Its files are not captured: its download ends with "{NOTHING_TO_CAPTURE}".'
    if event != "completed":
        files = ""
    return (
        f"Sent as a test event (framehookTest): job {job_id} is a test job and counts no "
        f"credits.{files}\nSee it: framehook jobs show {job_id}"
    )


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo's database and files go.")
    ] = Path("framehook-demo"),
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every job and its files.", min=1)
    ] = 120,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Keep both servers up afterwards (Ctrl-C).")
    ] = False,
    step_seconds: Annotated[
        float, typer.Option(help="The fake Apiframe's seconds between a job's steps.", min=0)
    ] = 0.3,
) -> None:
    """Everything offline in one command: a fake Apiframe, the receiver, a few jobs, their files.

    No API key needed. Exits 0 when every job ended as planned with its files on disk.
    """
    from receiver.dev.demo import run_demo

    code = run_demo(
        directory, timeout=timeout, keep_running=keep_running, step_seconds=step_seconds
    )
    if code:
        raise typer.Exit(code)


def generate(
    route: Annotated[
        str, typer.Argument(metavar="ROUTE", help="images/generate, videos/generate, ...")
    ],
    model: Annotated[str | None, typer.Option(help="The model (e.g. midjourney).")] = None,
    prompt: Annotated[str | None, typer.Option(help="The prompt.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KEY=VALUE", help="Another request field (a JSON value or text); repeatable."
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(help="This receiver's public address, a tunnel's (FRAMEHOOK_PUBLIC_URL)."),
    ] = None,
    api_url: Annotated[
        str | None, typer.Option(help="Apiframe's API (FRAMEHOOK_APIFRAME_URL).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="The receiver's database (FRAMEHOOK_DATABASE_URL).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to follow the job.", min=1)] = 900,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the job, or only submit it.")
    ] = True,
) -> None:
    """Submit a job to Apiframe and follow it live until its files are stored.

    The webhooks go to --public-url + /webhooks/apiframe, where `framehook serve` records
    them. Exits 0 when the job completed with its files, 1 if it failed or timed out.
    """
    from receiver.db.engine import normalize_url
    from receiver.dev.generate import Follow, UsageProblem, build_request, run_generate

    settings = load_settings(public_url=public_url, apiframe_url=api_url, database_url=database_url)
    key = next(iter(settings.signing_api_keys()), None)
    if not key:
        raise fail("no API key: set APIFRAME_API_KEY to your Apiframe key")
    try:
        normalize_url(settings.database_url)
        request = build_request(
            route, model=model, prompt=prompt, params=param or [], public_url=settings.public_url
        )
    except (FramehookError, UsageProblem) as exc:
        raise fail(str(exc)) from None
    code = run_generate(settings, key, request, Follow(timeout) if wait else None)
    if code:
        raise typer.Exit(code)


def simulate(
    jobs: Annotated[int, typer.Option(help="How many jobs.", min=1, max=10_000)] = 30,
    duplicates: Annotated[float, typer.Option(help="Share of webhooks sent twice.")] = 0.2,
    reorder: Annotated[float, typer.Option(help="Share of webhooks sent out of order.")] = 0.2,
    drops: Annotated[float, typer.Option(help="Share of webhooks never sent.")] = 0.1,
    delays: Annotated[float, typer.Option(help="Share of webhooks sent late.")] = 0.1,
    failures: Annotated[float, typer.Option(help="Share of jobs that fail.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of every random choice (repeatable runs).")] = 0,
    step_seconds: Annotated[float, typer.Option(help="The fake's time per job step.")] = 0.05,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Keep the database and files here.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for agreement.")] = 120.0,
    music_results: Annotated[
        Literal["tracks", "array"],
        typer.Option(help="Music results as {tracks: [...]}, or the array itself (the spec's)."),
    ] = "tracks",
    unseen_shapes: Annotated[
        float, typer.Option(help="Share of results in shapes no Apiframe document shows.")
    ] = 0.0,
    event_field: Annotated[
        Literal["event", "type", "status", "mixed"],
        typer.Option(help="Where bodies name their event (status: no event, only the status)."),
    ] = "event",
    reconcile: Annotated[
        bool,
        typer.Option(
            "--reconcile/--no-reconcile",
            help="Let the receiver poll the fake's job API; without it only webhooks count.",
        ),
    ] = True,
) -> None:
    """Run jobs through a misbehaving fake Apiframe into a receiver of its own; print
    expected against actual final states and files; exit 1 on any mismatch."""
    from receiver.dev.simulate import Chaos, run_simulation

    for name, rate in (
        ("duplicates", duplicates),
        ("reorder", reorder),
        ("drops", drops),
        ("delays", delays),
        ("failures", failures),
        ("unseen-shapes", unseen_shapes),
    ):
        if not 0.0 <= rate <= 1.0:
            raise fail(f"--{name} {rate}: a share between 0 and 1")
    chaos = Chaos(
        duplicates,
        reorder,
        drops,
        delays,
        failures,
        step_seconds,
        seed,
        music_results=music_results,
        unseen_shapes=unseen_shapes,
        event_field=event_field,
        reconcile=reconcile,
    )
    code = run_simulation(jobs, chaos, directory=directory, timeout=timeout)
    raise typer.Exit(code)
