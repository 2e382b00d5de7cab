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
    settings = {
        "FRAMEHOOK_ADMIN_TOKEN": TOKEN,
        "FRAMEHOOK_DATABASE_URL": f"sqlite:///{tmp_path / 'framehook.db'}",
        "FRAMEHOOK_STORAGE_URL": str(tmp_path / "assets"),
        "FRAMEHOOK_HANDLERS": "download",
        "FRAMEHOOK_ASSET_HOSTS": "localhost",
        "FRAMEHOOK_ASSET_ALLOW_HTTP": "true",
        "FRAMEHOOK_ASSET_ALLOW_NETWORKS": "127.0.0.0/8",
        # One attempt: a 503 kills the task at once, so the test has a dead task to retry.
        "FRAMEHOOK_RETRY_MAX_ATTEMPTS": "1",
        "FRAMEHOOK_EVENTS_POLL_SECONDS": "0.2",
        "FRAMEHOOK_POLL_SECONDS": "0.2",
        "FRAMEHOOK_LOG_LEVEL": "warning",
    }
    process = Server(framehook_env(**{**settings, **extra}), tmp_path)
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
    # Its one file is not stored and nothing is left running: the job's capture says one file
    # is missing, marked as a problem.
    capture = row.locator(".capture")
    expect(capture).to_have_text("0/1 · 1 missing")
    expect(capture).to_have_attribute("data-capture", "missing")
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
    expect(capture).to_have_attribute("data-capture", "complete")
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
    page, with a capture column (— for a job not ended, "no files" once its result names none);
    the credits panel shows its error."""
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
    expect(row.locator(".capture")).to_have_text("no files")
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


# ---- the pages of issue 17: sign-in by link, search, grouped errors, deliveries -----------

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
UUID = "6f1c2a9e-3b7d-4e21-9a55-0c8d2f4b7a10"


def watched(page: Any) -> list[str]:
    """The page's script errors and console errors, as they happen."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    return problems


def fits_a_phone(page: Any) -> None:
    """At a phone's width the page scrolls down only: nothing sticks out sideways."""
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"{page.url}: {widths[0]}px wide in a {widths[1]}px screen"


def screenshots(page: Any, name: str) -> list[Path]:
    """The page at a desktop's width and a phone's (checked for sideways overflow), kept in
    the artifacts directory; the page is left at the desktop's width."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kept = []
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        if label == "phone":
            fits_a_phone(page)
        path = ARTIFACTS / f"dashboard-{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        kept.append(path)
    return kept


def test_a_token_link_signs_in_a_tab_already_on_the_sign_in_form(
    browser: Any, server: Server
) -> None:
    """Opening /#token=… in a tab that shows the sign-in form (a same-document navigation:
    only the fragment changes) signs it in, and the token leaves the address bar."""
    page = browser.new_page(viewport=DESKTOP)
    problems = watched(page)
    expect = playwright.expect
    send(server, progress("job-link", 10, "flux"))
    page.goto(server.url + "/")
    expect(page.locator("input[name=token]")).to_be_visible()
    page.set_viewport_size(PHONE)
    fits_a_phone(page)
    page.set_viewport_size(DESKTOP)
    page.evaluate("window.sameDocument = true")

    page.goto(f"{server.url}/#token={TOKEN}")
    expect(page.locator('tr[data-job-id="job-link"]')).to_have_count(1)
    expect(page.locator("#live")).to_have_text("live")
    assert page.evaluate("window.sameDocument") is True
    assert TOKEN not in page.url
    assert page.evaluate("sessionStorage.getItem('framehook.token')") == TOKEN
    assert problems == [], problems


def job(server: Server, job_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{server.url}/api/jobs/{job_id}", headers=AUTH, timeout=10)
    found: dict[str, Any] = answer.json()
    return found


def test_jobs_search_capture_states_copyable_ids_and_grouped_errors(
    browser: Any, tmp_path: Path, cdn: FakeCdn
) -> None:
    """The job list says each job's capture in words (not ended, no files, capturing, all
    stored, N missing), shows ids by their first 8 characters with a copy button, and finds a
    job by the start of its id; a job whose files failed shows each distinct error once, with
    how often and which files, the long ones folded; every page fits a phone's width."""
    server = start(
        tmp_path,
        FRAMEHOOK_RETRY_MAX_ATTEMPTS="3",
        FRAMEHOOK_RETRY_BASE_SECONDS="0.05",
        FRAMEHOOK_RETRY_MAX_SECONDS="0.1",
    )
    try:
        context = browser.new_context(
            viewport=DESKTOP, permissions=["clipboard-read", "clipboard-write"]
        )
        page = context.new_page()
        problems = watched(page)
        expect = playwright.expect

        # A job still running, one whose result names no file, one fully captured, and one
        # (the UUID) whose four files fail the same way every attempt while one is stored.
        send(server, progress("job-running", 30, "flux"))
        send(server, completed("job-empty", {}, "flux"))
        send(server, completed("job-done", {"images": [serve_file(cdn, "grid.png")]}, "flux"))
        good = serve_file(cdn, "cover.jpeg")
        # Nothing is routed at these paths: the CDN answers 404, every time.
        failing = [f"http://localhost:{cdn.port}/gone-{n}.png" for n in range(1, 5)]
        send(server, completed(UUID, {"images": [good, *failing]}, "midjourney"))
        wait_until(lambda: len(tasks(server, "dead")) == 1, timeout=60)

        page.goto(f"{server.url}/#token={TOKEN}")
        expect(page.locator("#live")).to_have_text("live")
        states = {
            "job-running": ("pending", "—"),
            "job-empty": ("none", "no files"),
            "job-done": ("complete", "1/1"),
            UUID: ("missing", "1/5 · 4 missing"),
        }
        for job_id, (state, text) in states.items():
            cell = page.locator(f'tr[data-job-id="{job_id}"] .capture')
            expect(cell).to_have_attribute("data-capture", state)
            expect(cell).to_have_text(text)
        row = page.locator(f'tr[data-job-id="{UUID}"]')
        expect(row.locator(".id a")).to_have_text(UUID[:8] + "…")
        expect(row.locator(".id a")).to_have_attribute("title", UUID)
        row.locator("button.copy").click()
        expect(row.locator("button.copy")).to_have_text("copied")
        assert page.evaluate("navigator.clipboard.readText()") == UUID
        expect(row.locator("button.copy")).to_have_text("copy", timeout=5000)
        # The dead task's long error shows its start, and opens on the whole of it.
        fold = page.locator("#dead td.error details.fold")
        expect(fold.locator("summary")).to_contain_text("4 of 5 files not stored")
        expect(fold.locator("pre.full")).to_be_hidden()
        screenshots(page, "jobs")
        fold.locator("summary").click()
        expect(fold.locator("pre.full")).to_contain_text("gone-4.png")

        # Search: the id's first characters find it alone; a full id too; a miss says so.
        search = page.locator("input[name=jobId]")
        search.fill(UUID[:6])
        search.press("Enter")
        expect(page.locator("#jobs tbody tr")).to_have_count(1)
        expect(page.locator(f'tr[data-job-id="{UUID}"]')).to_have_count(1)
        search.fill(f"  {UUID}  ")
        search.press("Enter")
        expect(page).to_have_url(re.compile(f"jobId={UUID}$"))
        expect(page.locator("#jobs tbody tr")).to_have_count(1)
        search.fill("job-")
        search.press("Enter")
        expect(page.locator("#jobs tbody tr")).to_have_count(3)
        search.fill("nothing-like-it")
        search.press("Enter")
        expect(page.locator("#jobs .empty:not([hidden])").first).to_have_text(
            "No job id starts with \N{LEFT DOUBLE QUOTATION MARK}nothing-like-it"
            "\N{RIGHT DOUBLE QUOTATION MARK}."
        )
        fits_a_phone(page)

        # The job's page: one line per file, and the errors grouped.
        page.goto(f"{server.url}/#/jobs/{UUID}")
        files = page.locator("#assets li.file")
        expect(files).to_have_count(1)
        expect(files.first).to_contain_text("image #1")
        expect(files.first).to_contain_text("image/jpeg")
        expect(files.first.locator("a.open")).to_have_attribute("href", re.compile("^/api/assets/"))
        # Three attempts failed the same four files the same way: one line says so.
        groups = page.locator("#tasks li.error-group")
        expect(groups).to_have_count(len(job(server, UUID)["tasks"][0]["errorGroups"]))
        expect(groups.first.locator(".times")).to_have_text("\N{MULTIPLICATION SIGN}3")
        expect(groups.first.locator(".where")).to_have_text("files 2\N{EN DASH}5")
        expect(groups.first.locator(".error")).to_contain_text("HTTP 404")
        shots = screenshots(page, "job-errors")
        assert all(p.stat().st_size > 0 for p in shots)

        page.goto(f"{server.url}/#/deliveries")
        expect(page.locator("#deliveries tbody tr[data-delivery-id]")).to_have_count(4)
        page.set_viewport_size(PHONE)
        fits_a_phone(page)
        assert problems == [], problems
    finally:
        server.stop()


def post_raw(server: Server, raw: bytes) -> int:
    answer = httpx.post(
        f"{server.url}/webhooks/apiframe", content=raw, headers=signed_headers(raw), timeout=10
    )
    return answer.status_code


def test_the_deliveries_page_shows_outcomes_filters_them_and_opens_raw_bodies(
    browser: Any, server: Server
) -> None:
    """Every delivery is listed with its outcome; filtering by outcome finds the bodies
    framehook did not take for job events (unrecognized), and a row opens on its raw body,
    JSON pretty-printed or text as it came; the page fits a phone's width."""
    page = browser.new_page(viewport=DESKTOP)
    problems = watched(page)
    expect = playwright.expect
    first = orjson.dumps(progress(UUID, 30, "flux"))
    assert post_raw(server, first) == 202
    assert post_raw(server, first) == 200  # the same bytes again: duplicate
    send(server, completed(UUID, {}, "flux"))
    send(server, progress(UUID, 60, "flux"))  # after the end: stale
    ping = {"event": "account.ping", "note": "not a job event", "nested": {"n": [1, 2, 3]}}
    send(server, ping)
    assert post_raw(server, b"{not json") == 400  # malformed

    page.goto(f"{server.url}/#token={TOKEN}")
    page.click('nav a[data-nav="deliveries"]')
    rows = page.locator("#deliveries tbody tr[data-delivery-id]")
    expect(rows).to_have_count(6)
    outcomes = [rows.nth(i).get_attribute("data-outcome") for i in range(6)]
    assert outcomes == ["malformed", "unrecognized", "stale", "accepted", "duplicate", "accepted"]
    expect(page.locator('nav a[data-nav="deliveries"]')).to_have_attribute("aria-current", "page")

    # The outcome filter offers what the API describes; unrecognized leaves the ping alone.
    page.select_option('select[aria-label="Outcome"]', "unrecognized")
    expect(rows).to_have_count(1)
    expect(page.locator("#deliveries .hint")).to_contain_text("Not a job event")
    rows.first.click()
    body = page.locator("#deliveries tr.opened pre.body")
    expect(body).to_be_visible()
    assert orjson.loads(body.inner_text()) == ping
    expect(page.locator("#deliveries tr.opened")).to_contain_text("Request")
    screenshots(page, "deliveries-body")

    # A malformed body is kept as the text it was.
    page.select_option('select[aria-label="Outcome"]', "malformed")
    expect(rows).to_have_count(1)
    rows.first.locator("button[data-body]").click()
    expect(body).to_have_text("{not json")
    expect(body).to_have_attribute("data-format", "text")

    # From a job's timeline to its deliveries, the one clicked already open.
    page.goto(f"{server.url}/#/jobs/{UUID}")
    page.locator("#timeline a.what").first.click()
    expect(rows).to_have_count(4)
    expect(page.locator("#deliveries tr.opened:not([hidden]) pre.body")).to_contain_text(
        '"progress": 30'
    )
    page.set_viewport_size(PHONE)
    fits_a_phone(page)
    assert problems == [], problems


def test_the_admin_api_serves_one_delivery_with_its_body(server: Server) -> None:
    """GET /api/deliveries/{id} answers the delivery with its raw body; an unknown id is a
    404, a non-number a 400, and no token a 401."""
    body = {"event": "account.ping", "note": "hello"}
    send(server, body)
    listed = httpx.get(f"{server.url}/api/deliveries", headers=AUTH).json()["items"]
    one = httpx.get(f"{server.url}/api/deliveries/{listed[0]['id']}", headers=AUTH)
    assert one.status_code == 200
    assert one.json() == {**listed[0], "body": body, "bodyFormat": "json"}
    assert httpx.get(f"{server.url}/api/deliveries/999", headers=AUTH).status_code == 404
    wrong = httpx.get(f"{server.url}/api/deliveries/abc", headers=AUTH)
    assert (wrong.status_code, wrong.json()["reason"]) == (400, "bad_delivery_id")
    assert httpx.get(f"{server.url}/api/deliveries/1").status_code == 401


def test_a_job_whose_tasks_have_not_run_is_capturing_not_missing(
    browser: Any, tmp_path: Path
) -> None:
    """With no worker, a completed job's download stays queued: its files are "capturing",
    not "missing" (nothing failed yet); a test job (send-test) carries a "test" badge."""
    server = start(tmp_path, FRAMEHOOK_RUN_WORKER="false")
    try:
        page = browser.new_page(viewport=DESKTOP)
        problems = watched(page)
        expect = playwright.expect
        send(
            server,
            completed(UUID, {"images": [f"http://localhost:9/{n}.png" for n in "ab"]}, "flux"),
        )
        send(server, {**progress("job-test", 50, "flux"), "framehookTest": True})
        page.goto(f"{server.url}/#token={TOKEN}")
        cell = page.locator(f'tr[data-job-id="{UUID}"] .capture')
        expect(cell).to_have_attribute("data-capture", "capturing")
        expect(cell).to_have_text("0/2 capturing")
        expect(cell).not_to_have_class(re.compile(r"\bproblem\b"))
        # Where the Clipboard API is missing (plain http on a LAN address), copying still works.
        page.evaluate("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
        copy = page.locator(f'tr[data-job-id="{UUID}"] button.copy')
        copy.click()
        expect(copy).to_have_text("copied")
        expect(copy).to_have_attribute("data-state", "copied")
        assert job(server, "job-test")["test"] is True
        expect(page.locator('tr[data-job-id="job-test"] .badge.test')).to_have_text("test")
        expect(page.locator(f'tr[data-job-id="{UUID}"] .badge.test')).to_have_count(0)
        assert problems == [], problems
    finally:
        server.stop()
