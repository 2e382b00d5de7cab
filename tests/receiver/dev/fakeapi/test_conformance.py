"""The fake Apiframe against Apiframe's official OpenAPI spec (read from ``../shared/reference``,
never copied), with schemathesis generating the requests: never a 5xx, and every answer's
status, content type and JSON body the ones the spec documents.

The fake runs in process (schemathesis' ASGI transport keeps one lifespan of it for the whole
session); its webhooks go to an ``httpx.MockTransport``, so nothing leaves the process.

The two job-creating bodies ``images/generate`` and ``videos/generate`` are a ``oneOf`` of one
branch per model (~50 and ~40): schemathesis' coverage phase (every boundary, enum value and
wrong type of every property, run as explicit examples whatever ``max_examples`` says) makes
~6,700 and ~5,000 requests of them, 80% of the whole suite's. So the coverage phase sees those
models in rotation (``models_in_rotation``): each run takes one slot of ``SLOTS`` (the UTC day,
or ``FRAMEHOOK_CONFORMANCE_SLOT=<n>|all``), and every model is in exactly one slot, so a week of
daily runs covers every model's schema in full. The random (fuzzing) phase still draws from
every model's branch on every run.
"""

from __future__ import annotations

import datetime
import os
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
GENERATE = ("/v2/images/generate", "/v2/videos/generate")
"""The operations whose body is a ``oneOf`` of one branch per model."""
SLOTS = 7
"""How many runs (days, by default) it takes to cover every model's branch in full."""
SLOT_VARIABLE = "FRAMEHOOK_CONFORMANCE_SLOT"


def _spec() -> dict[str, Any]:
    return load_spec(module_level=True)


def _fake() -> Starlette:
    """The fake, fast, with its webhooks answered 204 in process."""
    return create_fake_apiframe(
        API_KEY,
        behaviour=Behaviour(step_seconds=0.001, progress_steps=1),
        webhook_transport=httpx.MockTransport(lambda request: httpx.Response(204)),
    )


def rotation_slot() -> int | None:
    """This run's slot: ``FRAMEHOOK_CONFORMANCE_SLOT`` (a number, or ``all``: every model,
    ``None``), else the UTC day's, so runs on one day test the same models."""
    chosen = os.environ.get(SLOT_VARIABLE, "").strip().lower()
    if chosen == "all":
        return None
    if chosen.isdigit():
        return int(chosen) % SLOTS
    if chosen:
        pytest.fail(
            f"{SLOT_VARIABLE} must be a slot number or 'all', not {chosen!r}", pytrace=False
        )
    return datetime.datetime.now(datetime.UTC).date().toordinal() % SLOTS


def _body_schema(spec: dict[str, Any], path: str) -> str:
    """The name of the component schema that is ``path``'s JSON request body."""
    body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    ref: str = body["$ref"]
    return ref.rsplit("/", 1)[-1]


def models_in_rotation(spec: dict[str, Any], slot: int | None) -> dict[str, Any]:
    """``spec`` with each ``GENERATE`` body cut to the branches of ``slot`` (branch ``i`` is in
    slot ``i % SLOTS``: neighbours, often one family's models, land in different slots); the
    whole ``oneOf`` for ``None``. Only the two body schemas are copied."""
    if slot is None:
        return spec
    schemas = dict(spec["components"]["schemas"])
    for path in GENERATE:
        name = _body_schema(spec, path)
        branches = schemas[name]["oneOf"]
        schemas[name] = {
            **schemas[name],
            "oneOf": [b for i, b in enumerate(branches) if i % SLOTS == slot],
        }
    return {**spec, "components": {**spec["components"], "schemas": schemas}}


def _model_names(body: dict[str, Any]) -> list[str]:
    """The ``model`` enum values of a body schema's branches."""
    return [name for b in body["oneOf"] for name in b["properties"]["model"]["enum"]]


SPEC = _spec()
SLOT = rotation_slot()
_AUTH = {"openapi": {"ApiKeyAuth": {"api_key": API_KEY}}}

schema = schemathesis.openapi.from_dict(
    SPEC,
    config=schemathesis.Config.from_dict(
        {
            # Positive cases carry the key as the spec's ApiKeyAuth scheme (X-API-Key).
            "auth": _AUTH,
            # The model bodies' coverage runs in rotation, below.
            "operations": [
                {"include-path": path, "phases": {"coverage": {"enabled": False}}}
                for path in GENERATE
            ],
        }
    ),
)
schema.app = _fake()

models = schemathesis.openapi.from_dict(
    models_in_rotation(SPEC, SLOT),
    config=schemathesis.Config.from_dict(
        # Only their coverage phase: the random one runs on the whole oneOf above.
        {"auth": _AUTH, "phases": {"fuzzing": {"enabled": False}}}
    ),
).include(path=list(GENERATE))
models.app = _fake()

CONFORMANCE_SETTINGS = settings(
    # Six random cases an operation; no shrinking, since a failure's first example already says
    # enough. The coverage phase's cases run as explicit examples, whatever max_examples is.
    max_examples=6,
    phases=[Phase.explicit, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _conforms(case: Case[Any]) -> None:
    response = case.call()
    case.validate_response(response, checks=CHECKS)


@pytest.mark.slow  # ~2,800 requests (the coverage phase's), ~10 s on a loaded 2-core machine
@schema.parametrize()
@CONFORMANCE_SETTINGS
def test_every_answer_conforms_to_the_official_spec(case: Case[Any]) -> None:
    """Generated requests (with the API key) never get a 5xx from the fake, and each answer's
    status, content type and JSON body are ones the official spec documents."""
    _conforms(case)


@pytest.mark.slow  # ~1,600 requests a slot (~11,700 with all), ~3 s on a loaded 2-core machine
@models.parametrize()
@CONFORMANCE_SETTINGS
def test_the_models_in_rotation_conform_to_the_official_spec(case: Case[Any]) -> None:
    """Every boundary, enum value and wrong type of this run's models' job bodies gets an
    answer the official spec documents (``FRAMEHOOK_CONFORMANCE_SLOT`` picks the models)."""
    try:
        _conforms(case)
    except Exception as failure:
        failure.add_note(f"rerun these models with {SLOT_VARIABLE}={SLOT}")
        raise


def test_the_rotation_covers_every_model_once() -> None:
    """Over ``SLOTS`` runs the rotation tests every model of both job bodies exactly once, and
    ``all`` tests the whole oneOf."""
    for path in GENERATE:
        name = _body_schema(SPEC, path)
        every = _model_names(SPEC["components"]["schemas"][name])
        rotated = [
            model
            for slot in range(SLOTS)
            for model in _model_names(models_in_rotation(SPEC, slot)["components"]["schemas"][name])
        ]
        assert sorted(rotated) == sorted(every)
        assert len(every) >= SLOTS  # each slot has a model of each body
        whole = models_in_rotation(SPEC, None)["components"]["schemas"][name]
        assert _model_names(whole) == every
