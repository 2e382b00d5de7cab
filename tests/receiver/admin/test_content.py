"""``/api/assets/{id}/content``: captured files served back to the token or a signed link,
from local storage (with Range) and from a store read as a stream."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from receiver.admin.auth import AdminToken
from receiver.admin.content import AssetLinks
from receiver.db.engine import writing
from tests.receiver.admin.scenario import AUTH, TOKEN, Timeline, build_timeline


@pytest.fixture(params=["local", "memory"])
def timeline(
    request: pytest.FixtureRequest, make_client: Callable[..., TestClient], tmp_path: Path
) -> Timeline:
    """A job with two captured PNGs, in local storage (a file) or memory (a stream)."""
    storage = str(tmp_path / "assets") if request.param == "local" else "memory://"
    return build_timeline(make_client, storage_url=storage)


def assets(timeline: Timeline) -> list[dict[str, Any]]:
    job = timeline.client.get(f"/api/jobs/{timeline.job_id}", headers=AUTH).json()
    found: list[dict[str, Any]] = job["assets"]
    return found


def test_a_signed_link_opens_the_file_without_the_token(timeline: Timeline) -> None:
    """Each asset's contentUrl answers its exact bytes, typed as recorded, never sniffed and
    sandboxed; the bearer token opens it too."""
    client = timeline.client
    for asset, (_, body) in zip(assets(timeline), timeline.files, strict=True):
        answer = client.get(asset["contentUrl"])
        assert answer.status_code == 200, answer.text
        assert answer.content == body
        assert answer.headers["content-type"] == "image/png"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"].startswith("sandbox")
        with_token = client.get(f"/api/assets/{asset['id']}/content", headers=AUTH)
        assert with_token.content == body


def test_without_the_token_or_a_good_link_nothing_is_served(timeline: Timeline) -> None:
    """No credentials: 401; a link for another asset, a tampered, expired or differently
    signed one: 403; all as JSON with a reason."""
    client = timeline.client
    first, second = assets(timeline)
    bare = client.get(f"/api/assets/{first['id']}/content")
    assert (bare.status_code, bare.json()["reason"]) == (401, "unauthorized")
    query = first["contentUrl"].split("?", 1)[1]
    borrowed = client.get(f"/api/assets/{second['id']}/content?{query}")
    assert (borrowed.status_code, borrowed.json()["reason"]) == (403, "bad_signature")
    tampered = first["contentUrl"][:-4] + "0000"
    assert client.get(tampered).json()["reason"] == "bad_signature"
    expired = AssetLinks(AdminToken(TOKEN)).link(first["id"], now=time.time() - 7200)
    answer = client.get(expired)
    assert (answer.status_code, answer.json()["reason"]) == (403, "link_expired")
    other = AssetLinks(AdminToken("another-token")).link(first["id"])
    assert client.get(other).status_code == 403


def test_missing_and_foreign_objects_are_404s(timeline: Timeline, db: Engine) -> None:
    """An unknown id, an asset recorded in another store, and a bad id each get their answer."""
    client = timeline.client
    first, _ = assets(timeline)
    assert client.get("/api/assets/999999/content", headers=AUTH).json()["reason"] == "not_found"
    assert client.get("/api/assets/abc/content", headers=AUTH).status_code == 400
    with writing(db) as connection:
        connection.execute(
            text("UPDATE assets SET storage_uri = 's3://elsewhere/x.png' WHERE id = :id"),
            {"id": first["id"]},
        )
    answer = client.get(f"/api/assets/{first['id']}/content", headers=AUTH)
    assert (answer.status_code, answer.json()["reason"]) == (404, "stored_elsewhere")


def test_local_files_answer_ranges_and_a_deleted_file_is_a_404(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    """A video player seeks with Range: a local file answers 206 with the bytes asked for; a
    file deleted behind framehook's back is a 404, not a 500."""
    timeline = build_timeline(make_client, storage_url=str(tmp_path / "assets"))
    client = timeline.client
    first, _ = assets(timeline)
    body = timeline.files[0][1]
    part = client.get(first["contentUrl"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == body[100:200]
    for path in (tmp_path / "assets").rglob("*.png"):
        path.unlink()
    gone = client.get(first["contentUrl"])
    assert (gone.status_code, gone.json()["reason"]) == (404, "object_missing")


@pytest.mark.parametrize(
    "expires",
    ["9" * 5000, "١٢٣", "²", "9" * 13, "-1", "1e9", " 123", "123\n", ""],
    ids=[
        "5000-digits",
        "arabic-indic",
        "superscript",
        "13-digits",
        "negative",
        "float",
        "space",
        "newline",
        "empty",
    ],
)
def test_a_link_whose_expiry_is_not_unix_seconds_is_a_400(
    make_client: Callable[..., TestClient], expires: str
) -> None:
    """An ``expires`` that is not 1 to 12 ASCII digits (one too long for ``int``, digits of
    another script, a superscript) is refused as a bad parameter before anything reads it."""
    client = make_client(admin_token=TOKEN)
    answer = client.get("/api/assets/1/content", params={"expires": expires, "signature": "ab"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["reason"] == "bad_expires"
    assert "Traceback" not in answer.text
