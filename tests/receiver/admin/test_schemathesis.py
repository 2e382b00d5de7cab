"""The admin API against its own OpenAPI description, with schemathesis generating the
requests: never a 5xx, every answer documented and shaped as described."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from starlette.testclient import TestClient

from receiver.admin.openapi import OPENAPI
from tests.receiver.admin.scenario import TOKEN, completed, post, progress

HOST = "http://testserver"


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    """The running app, holding a few jobs, deliveries and tasks to list."""
    client = make_client(admin_token=TOKEN)
    body = progress("6f1c2a9e-3b7d-4e21-9a55-0c8d2f4b7a10", 40)
    for payload in (body, body, completed("job-s", "https://x.test/s.png"), progress("job-s", 5)):
        post(client, payload)
    return client


# The description the app serves (test_api checks it is this one). Loaded from the module, not
# through schemathesis.pytest.from_fixture: that one sets a pytest-internal attribute pytest 9
# no longer has.
schema = schemathesis.openapi.from_dict(
    OPENAPI,
    config=schemathesis.Config.from_dict(
        {
            # Positive cases carry the token; negative ones may leave it out (then: 401).
            "auth": {"openapi": {"bearer": {"bearer": TOKEN}}},
            # This check probes through schemathesis' own transport, which would start a second
            # lifespan of the app; test_api checks every route's 401s instead.
            # receiver.responses drops the Allow header of Starlette's 405 (a TRACE, say);
            # not the admin API's to fix.
            "checks": {
                "ignored_auth": {"enabled": False},
                "unsupported_method": {"enabled": False},
            },
        }
    ),
)


# The event stream never ends by itself; test_feed reads it over a real connection instead.
@schema.exclude(path="/api/events").parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_answer_conforms_to_the_openapi_description(case: Case, api: TestClient) -> None:
    """Generated requests (with the token) never get a 5xx, and each answer's status, content
    type and JSON body are the ones the description gives."""
    # Any string is a schema-valid cursor, but only the ones the API handed out are usable (a
    # made-up one is a 400, as test_api checks): the generated ones are left out.
    if case.query:
        case.query.pop("cursor", None)
    response = api.request(
        case.method,
        HOST + case.formatted_path,
        params=case.query,
        headers=case.headers,
    )
    assert response.status_code < 500, response.text
    case.validate_response(response)
