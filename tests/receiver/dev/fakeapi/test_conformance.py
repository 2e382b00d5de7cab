"""The fake Apiframe against Apiframe's official OpenAPI spec (read from ``../shared/reference``,
never copied), with schemathesis generating the requests: never a 5xx, and every answer's
status, content type and JSON body the ones the spec documents.

The fake runs in process (schemathesis' ASGI transport keeps one lifespan of it for the whole
session); its webhooks go to an ``httpx.MockTransport``, so nothing leaves the process.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette

from receiver.dev.fakeapi import Behaviour, create_fake_apiframe
from tests.support.spec import load_spec

API_KEY = "afk_conformance0000000000000000000000000000"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _spec() -> dict[str, Any]:
    return load_spec(module_level=True)


def _fake() -> Starlette:
    """The fake, fast, with its webhooks answered 204 in process."""
    return create_fake_apiframe(
        API_KEY,
        behaviour=Behaviour(step_seconds=0.001, progress_steps=1),
        webhook_transport=httpx.MockTransport(lambda request: httpx.Response(204)),
    )


schema = schemathesis.openapi.from_dict(
    _spec(),
    config=schemathesis.Config.from_dict(
        # Positive cases carry the key as the spec's ApiKeyAuth scheme (X-API-Key).
        {"auth": {"openapi": {"ApiKeyAuth": {"api_key": API_KEY}}}}
    ),
)
schema.app = _fake()


@pytest.mark.slow  # ~80 s: hypothesis builds strategies for the large oneOf job bodies
@schema.parametrize()
@settings(
    # Six cases an operation: the job-creating bodies (large oneOf schemas) cost most of the
    # time in generation; no shrinking, since a failure's first example already says enough.
    max_examples=6,
    phases=[Phase.explicit, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_answer_conforms_to_the_official_spec(case: Case[Any]) -> None:
    """Generated requests (with the API key) never get a 5xx from the fake, and each answer's
    status, content type and JSON body are ones the official spec documents."""
    response = case.call()
    case.validate_response(response, checks=CHECKS)
