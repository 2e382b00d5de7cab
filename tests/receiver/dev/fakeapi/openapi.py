"""Checks a fake's answer against Apiframe's official OpenAPI spec, read from
``../shared/reference`` (never copied into the repository): under CI a missing spec fails,
locally it skips."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest

from tests.support.spec import load_spec


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """Apiframe's official spec (``tests.support.spec``)."""
    return load_spec()


def conforms(spec: dict[str, Any], path: str, method: str, response: httpx.Response) -> None:
    """Assert ``response`` is one the spec lists for the operation, in its JSON schema."""
    answers = spec["paths"][path][method.lower()]["responses"]
    status = str(response.status_code)
    assert status in answers, f"{method} {path} may not answer {status}: {response.text}"
    content = answers[status].get("content")
    if content is None:
        assert response.content == b"", response.text
        return
    schema = {**content["application/json"]["schema"], "components": spec["components"]}
    validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(response.json())]
    assert not errors, errors
