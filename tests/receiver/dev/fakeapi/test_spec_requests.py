"""Spec-driven: every job-creating operation of Apiframe's spec, one body per schema branch."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.receiver.dev.fakeapi.conftest import running_fake
from tests.support.spec import SPEC, load_spec

PARENT_ROUTES = {"MidjourneyActionRequest": "midjourney", "SunoActionRequest": "suno"}


def _spec() -> dict[str, Any]:
    return load_spec()


def _minimal(schema: dict[str, Any]) -> Any:
    """The smallest value ``schema`` allows (required properties only)."""
    if "anyOf" in schema:
        return _minimal(schema["anyOf"][0])
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _minimal(props[name]) for name in schema.get("required", [])}
    if kind == "string":
        if schema.get("format") == "uri":
            return "https://example.com/a.png"
        if schema.get("format") == "uuid":
            return "<parent>"
        return "x" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "array":
        return [_minimal(schema["items"])] * schema.get("minItems", 0)
    raise AssertionError(f"no minimal value for {schema}")


def _cases() -> list[tuple[str, str, dict[str, Any]]]:
    if not SPEC.is_file():
        return []
    spec = orjson.loads(SPEC.read_bytes())
    cases = []
    for path, item in spec["paths"].items():
        post = item.get("post", {})
        if not any(
            p.get("$ref", "").endswith("/IdempotencyKey") for p in post.get("parameters", [])
        ):
            continue
        ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        name = ref.rsplit("/", 1)[-1]
        for branch in spec["components"]["schemas"][name]["oneOf"]:
            body = _minimal(branch)
            if body.get("model") == "flux-lora":
                continue  # needs a READY LoRA: see test_loras
            cases.append((path, name, body))
    return cases


async def _with_parent(
    client: httpx.AsyncClient, schema: str, body: dict[str, Any]
) -> dict[str, Any]:
    if body.get("parentJobId") != "<parent>":
        return body
    model = PARENT_ROUTES[schema]
    route = "/v2/music/generate" if model == "suno" else "/v2/images/generate"
    parent = await client.post(route, json={"model": model, "prompt": "p"})
    return {**body, "parentJobId": parent.json()["jobId"]}


def test_the_spec_is_there() -> None:
    """The spec is readable (else the cases below are empty); CI fails without it."""
    assert _spec()["paths"]


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "schema", "body"), _cases())
async def test_a_minimal_spec_body_is_202_and_its_mutations_400(
    path: str, schema: str, body: dict[str, Any]
) -> None:
    """A branch's minimal body is 202; with an extra property, or without a required one, it
    is 400 with details naming that property."""
    async with running_fake() as (client, _):
        body = await _with_parent(client, schema, body)
        accepted = await client.post(path, json=body)
        assert accepted.status_code == 202, accepted.text
        extra = await client.post(path, json={**body, "notInTheSpec": 1})
        assert extra.status_code == 400
        assert "notInTheSpec" in extra.json()["details"]
        for name in body:
            missing = await client.post(path, json={k: v for k, v in body.items() if k != name})
            assert missing.status_code == 400, name
            assert set(missing.json()) == {"error", "details"}
            assert name in missing.json()["details"], name
