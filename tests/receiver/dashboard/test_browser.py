"""The dashboard in a real headless Chromium (Debian's, driven by Playwright), against a real
``framehook serve`` process: sign in, watch a job progress live, see a dead task and its job's
missing file, press Retry, and find the captured image, video and audio on the job's page; the
jobs still show when the credits cannot be read.

Screenshots are kept in ``tests/artifacts/`` (or ``$FRAMEHOOK_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from receiver.dev.fakeapi.media import CONTENT_TYPES, media_file
from receiver.intake.job_state import JobStatus
from tests.support.cdn import FakeCdn, Route
from tests.support.processes import Server, framehook_env
from tests.support.waiting import wait_until
from tests.support.webhooks import signed_headers

playwright = pytest.importorskip("playwright.sync_api")

TOKEN = "dashboard-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ARTIFACTS = Path(
    os.environ.get("FRAMEHOOK_TEST_ARTIFACTS", Path(__file__).parents[2] / "artifacts")
)
# As the machine's notes advise: no first-run work, no calls home (the network is closed).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.slow


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's package)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def cdn() -> Iterator[FakeCdn]:
    with FakeCdn() as server:
        yield server


def start(tmp_path: Path, **extra: str) -> Server:
    """``framehook serve`` for the dashboard, ready; ``extra`` variables on top."""
    env = framehook_env(
        FRAMEHOOK_ADMIN_TOKEN=TOKEN,
        FRAMEHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'framehook.db'}",
        FRAMEHOOK_STORAGE_URL=str(tmp_path / "assets"),
        FRAMEHOOK_HANDLERS="download",
        FRAMEHOOK_ASSET_HOSTS="localhost",
        FRAMEHOOK_ASSET_ALLOW_HTTP="true",
        FRAMEHOOK_ASSET_ALLOW_NETWORKS="127.0.0.0/8",
        # One attempt: a 503 kills the task at once, so the test has a dead task to retry.
        FRAMEHOOK_RETRY_MAX_ATTEMPTS="1",
        FRAMEHOOK_EVENTS_POLL_SECONDS="0.2",
        FRAMEHOOK_POLL_SECONDS="0.2",
        FRAMEHOOK_LOG_LEVEL="warning",
        **extra,
    )
    process = Server(env, tmp_path)
    process.wait_ready()
    return process


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    process = start(tmp_path)
    yield process
    process.stop()


def send(server: Server, body: dict[str, Any]) -> None:
    raw = orjson.dumps(body)
    answer = httpx.post(
        f"{server.url}/webhooks/apiframe", content=raw, headers=signed_headers(raw), timeout=10
    )
    assert answer.status_code in (200, 202), answer.text


def progress(job_id: str, value: int, model: str) -> dict[str, Any]:
    return {
        "event": "progress",
        "jobId": job_id,
        "status": "PROCESSING",
        "progress": value,
        "model": model,
    }


def completed(job_id: str, result: dict[str, Any], model: str) -> dict[str, Any]:
    return {
        "event": "completed",
        "jobId": job_id,
        "status": "COMPLETED",
        "progress": 100,
        "model": model,
        "result": result,
        "creditCost": 4,
    }


def serve_file(cdn: FakeCdn, name: str, **options: Any) -> str:
    extension = name.rsplit(".", 1)[-1]
    body = media_file(name, f"dashboard/{name}")
    cdn.route(f"/{name}", Route(body, content_type=CONTENT_TYPES[extension], **options))
    return f"http://localhost:{cdn.port}/{name}"


def tasks(server: Server, status: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.url}/api/tasks", params={"status": status}, headers=AUTH)
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_sign_in_watch_progress_live_and_retry_a_dead_task(
    browser: Any, server: Server, cdn: FakeCdn
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    expect = playwright.expect

    # Without a token: the sign-in form; a wrong token is refused, the right one opens it.
    page.goto(server.url + "/")
    page.fill("input[name=token]", "not-the-token")
    page.click("button[type=submit]")
    expect(page.locator(".login .problem")).to_contain_text("refused")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    expect(page.locator("#live")).to_have_text("live")
    problems.clear()  # the refused token's 401s, logged by the browser, were expected

    # A job appears and moves while the page stays put (no reload: the marker survives).
    page.evaluate("window.sameDocument = true")
    send(server, progress("job-live", 10, "midjourney"))
    row = page.locator('tr[data-job-id="job-live"]')
    expect(row.locator("progress")).to_have_attribute("value", "10")
    for value in (45, 80):
        send(server, progress("job-live", value, "midjourney"))
        expect(row.locator("progress")).to_have_attribute("value", str(value))
    expect(row).to_contain_text("midjourney")
    assert page.evaluate("window.sameDocument") is True

    # The job completes, but its image answers 503 once: with one attempt allowed, the
    # download task dies and shows up under Dead tasks, live.
    image = serve_file(cdn, "grid.png", fail_first=1)
    send(server, completed("job-live", {"images": [image]}, "midjourney"))
    expect(row.locator(".badge")).to_have_text("COMPLETED")
    # The completed job's creditCost lands in the credits panel, live.
    expect(page.locator("#credits .credit-total strong")).to_have_text("4")
    dead_row = page.locator("#dead tbody tr")
    expect(dead_row).to_have_count(1)
    expect(dead_row).to_contain_text("download")
    expect(dead_row.locator(".error")).to_contain_text("503")
    # Its one file is not stored: the job's capture says 0/1, marked as a problem.
    capture = row.locator(".capture")
    expect(capture).to_have_text("0/1")
    expect(capture).to_have_class(re.compile(r"\bproblem\b"))
    expect(capture).to_have_attribute("title", re.compile("^0 of 1 file stored"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-jobs.png"), full_page=True)

    # Retry: the task is queued again, runs, and succeeds this time; the row goes away, and
    # the stored file turns the job's capture to 1/1, live.
    dead_row.locator("button[data-retry]").click()
    expect(page.locator("#toast")).to_contain_text("queued again")
    expect(dead_row).to_have_count(0)
    wait_until(lambda: len(tasks(server, "succeeded")) == 1)
    assert tasks(server, "dead") == []
    expect(capture).to_have_text("1/1")
    expect(capture).not_to_have_class(re.compile(r"\bproblem\b"))
    expect(page.locator('tr[data-job-id="job-live"]')).to_have_count(1)

    # A second job with a video and a track: every kind of player on the job page.
    video = serve_file(cdn, "clip.mp4")
    song, cover = serve_file(cdn, "song.mp3"), serve_file(cdn, "cover.jpeg")
    send(server, completed("job-av", {"videoUrl": video}, "kling"))
    send(server, completed("job-song", {"tracks": [{"audioUrl": song, "imageUrl": cover}]}, "suno"))
    wait_until(lambda: len(tasks(server, "succeeded")) == 3)

    page.click('a[href="#/jobs/job-live"]')
    image_tag = page.locator("#assets figure img")
    expect(image_tag).to_have_count(1)
    # The browser fetched and decoded it through the signed link (no token on <img>).
    page.wait_for_function("() => document.querySelector('#assets img').naturalWidth > 0")
    timeline = page.locator("#timeline li")
    expect(timeline.filter(has_text="progress 45%")).to_have_count(1)
    expect(timeline.filter(has_text="stored image #")).to_have_count(1)
    expect(page.locator("#tasks .badge")).to_have_text("succeeded")
    expect(page.locator(".facts .capture")).to_have_text("1/1")
    page.screenshot(path=str(ARTIFACTS / "dashboard-job.png"), full_page=True)

    # The fake's MP4 has no tracks, so the player cannot start; that its signed link (no
    # token) serves the video is what the page controls.
    page.goto(server.url + "/#/jobs/job-av")
    video_tag = page.locator("#assets video")
    expect(video_tag).to_have_count(1)
    fetched = page.request.get(server.url + (video_tag.get_attribute("src") or ""))
    assert fetched.status == 200
    assert fetched.headers["content-type"] == "video/mp4"
    page.goto(server.url + "/#/jobs/job-song")
    expect(page.locator("#assets audio")).to_have_count(1)
    page.wait_for_function("() => document.querySelector('#assets audio').readyState >= 1")
    expect(page.locator("#assets img")).to_have_count(1)
    expect(page.locator(".facts .capture")).to_have_text("2/2")
    assert problems == [], problems


def test_the_jobs_show_when_the_credits_cannot_be_read(browser: Any, server: Server) -> None:
    """/api/credits failing (as a SUM overflow once made it) leaves the job list on the front
    page, with a capture column (— for a job not ended); the credits panel shows its error."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    expect = playwright.expect
    failure = {"reason": "database_unavailable", "detail": "the ledger cannot be summed"}
    page.route(
        "**/api/credits*",
        lambda route: route.fulfill(status=503, json=failure),
    )
    send(server, progress("job-running", 30, "flux"))

    page.goto(f"{server.url}/#token={TOKEN}")
    row = page.locator('tr[data-job-id="job-running"]')
    expect(row).to_have_count(1)
    expect(row.locator(".capture")).to_have_text("—")
    expect(page.locator("#credits .problem")).to_contain_text("the ledger cannot be summed")
    expect(page.locator("#live")).to_have_text("live")
    # The panel keeps trying when jobs end; the job list goes on updating meanwhile.
    send(server, completed("job-running", {}, "flux"))
    expect(row.locator(".badge")).to_have_text("COMPLETED")
    expect(row.locator(".capture")).to_have_text("—")
    expect(page.locator("#credits .problem")).to_have_count(1)
    assert errors == [], errors


def test_the_status_filter_offers_the_statuses_the_api_describes(
    browser: Any, server: Server
) -> None:
    """The job-status choices are read from /api/openapi.json (the script holds no list);
    picking one narrows the jobs to that status."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    expect = playwright.expect
    send(server, progress("job-running", 30, "flux"))
    send(server, completed("job-done", {}, "flux"))

    page.goto(f"{server.url}/#token={TOKEN}")
    expect(page.locator("#live")).to_have_text("live")
    options = page.locator('select[aria-label="Status"] option')
    expect(options).to_have_text(["every status", *(s.value for s in JobStatus)])
    expect(page.locator("#jobs tbody tr")).to_have_count(2)

    page.select_option('select[aria-label="Status"]', "COMPLETED")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    expect(page.locator('tr[data-job-id="job-done"]')).to_have_count(1)
    expect(page.locator('select[aria-label="Status"]')).to_have_value("COMPLETED")
    assert problems == [], problems


def test_a_page_refused_the_live_feed_still_lists_jobs_and_goes_live_later(
    browser: Any, tmp_path: Path
) -> None:
    """With the server's one live stream (FRAMEHOOK_EVENTS_MAX_STREAMS=1) held by another
    client, the page says it is not live and still lists the jobs; once that client leaves,
    the page goes live by itself (after Retry-After) and follows the job again."""
    server = start(tmp_path, FRAMEHOOK_EVENTS_MAX_STREAMS="1")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        expect = playwright.expect
        send(server, progress("job-busy", 20, "flux"))
        row = page.locator('tr[data-job-id="job-busy"]')
        with httpx.stream("GET", f"{server.url}/api/events", headers=AUTH, timeout=30) as held:
            assert held.status_code == 200
            page.goto(f"{server.url}/#token={TOKEN}")
            expect(row.locator("progress")).to_have_attribute("value", "20")
            expect(page.locator("#live")).to_have_text("not live: server busy")
            expect(page.locator("#live")).to_have_attribute("data-state", "busy")
        # The held stream is closed: its slot is free, and the page takes it when told to.
        expect(page.locator("#live")).to_have_text("live", timeout=20_000)
        send(server, progress("job-busy", 70, "flux"))
        expect(row.locator("progress")).to_have_attribute("value", "70")
        assert errors == [], errors
    finally:
        server.stop()
