"""The dashboard's files as served: no data in them, strict headers, and every script,
module and stylesheet the page loads is one the receiver serves (checked without a browser)."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.testclient import TestClient

import receiver.dashboard
from receiver.intake.job_state import JobStatus

STATIC = Path(receiver.dashboard.__file__).parent / "static"
MODULES = sorted(path.name for path in STATIC.glob("*.js"))


def scripts(client: TestClient) -> dict[str, str]:
    """Every module of the dashboard's script, as served, by name."""
    return {name: client.get(f"/dashboard/{name}").text for name in MODULES}


def test_the_page_and_its_files_are_public_and_locked_down(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    # Only its own origin; no inline script, no framing.
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    referenced = re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', page.text)
    assert sorted(referenced) == ["/dashboard/app.js", "/dashboard/style.css"]
    types = {"/dashboard/app.js": "text/javascript", "/dashboard/style.css": "text/css"}
    for path in referenced:
        answer = client.get(path)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith(types[path])
    # Nothing in the page is data: that needs the token, from /api.
    assert client.get("/api/jobs").status_code == 401


def test_every_module_the_script_imports_is_served_under_the_same_policy(
    client: TestClient,
) -> None:
    """app.js loads the other modules by relative imports; each one it (or they) import is
    served as JavaScript with the page's policy, and no module is left unused."""
    imported = {"app.js"}
    for name, text in scripts(client).items():
        imported |= set(re.findall(r'^import .* from "\./([a-z]+\.js)";$', text, re.MULTILINE))
        answer = client.get(f"/dashboard/{name}")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/javascript")
        assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert imported == set(MODULES)
    assert client.get("/dashboard/nothing.js").status_code == 404


def test_the_script_never_writes_html_from_data(client: TestClient) -> None:
    """Job fields come from the network: every module builds the page with textContent only."""
    for name, text in scripts(client).items():
        lines = text.splitlines()
        script = "\n".join(line for line in lines if not line.lstrip().startswith("//"))
        for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "document.write"):
            assert unsafe not in script, f"{name} uses {unsafe}"


def test_the_status_filter_comes_from_the_served_description(client: TestClient) -> None:
    """The script holds no copy of the job statuses: it reads the JobStatus enum (and the
    delivery outcomes) from /api/openapi.json, which answers without the token and lists the
    domain's statuses."""
    script = "\n".join(scripts(client).values())
    assert "/api/openapi.json" in script
    assert 'described("JobStatus")' in script
    assert 'described("DeliveryOutcome")' in script
    # A copied list would name the statuses the script gives no special treatment.
    assert '"QUEUED"' not in script
    assert '"CANCELLED"' not in script
    spec = client.get("/api/openapi.json")
    assert spec.status_code == 200
    schemas = spec.json()["components"]["schemas"]
    assert schemas["JobStatus"]["enum"] == [s.value for s in JobStatus]
    assert "unrecognized" in schemas["DeliveryOutcome"]["enum"]


def test_a_capture_shortfall_is_styled_by_the_class_the_script_sets(client: TestClient) -> None:
    """The job list's capture cell is marked with the ``problem`` class, and the stylesheet
    makes that class stand out by more than colour (a sign before the count)."""
    script = client.get("/dashboard/jobs.js").text
    style = client.get("/dashboard/style.css").text
    assert '"capture problem"' in script
    rule = re.search(r"\.capture\.problem::before\s*{[^}]*content:\s*\"[^\"]+\"", style)
    assert rule is not None
