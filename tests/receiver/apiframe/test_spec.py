"""framehook's reading of job events against Apiframe's official OpenAPI spec (read from
``../shared/reference``, never copied): every status and webhook event the spec names is one
framehook knows."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from receiver.apiframe.events import Kind, parse_body
from receiver.apiframe.models import MODELS
from receiver.intake.job_state import JobStatus
from receiver.reconcile.jobs import event_body
from tests.support.spec import load_spec

# What each status of a job resource stands for, as a webhook: progress until it has ended.
ENDS = {"COMPLETED": Kind.COMPLETED, "FAILED": Kind.FAILED, "CANCELLED": Kind.CANCELLED}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """Apiframe's official spec (``tests.support.spec``)."""
    return load_spec()


def _job_statuses(spec: dict[str, Any]) -> list[str]:
    statuses: list[str] = spec["components"]["schemas"]["Job"]["properties"]["status"]["enum"]
    return statuses


def _webhook_events(spec: dict[str, Any]) -> set[str]:
    """Every ``webhookEvents`` item enum anywhere in the spec's request bodies."""
    found: set[str] = set()
    stack: list[Any] = [spec]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            events = node.get("properties", {}).get("webhookEvents", {}).get("items", {})
            found.update(events.get("enum", ()))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def test_the_job_statuses_are_the_specs(spec: dict[str, Any]) -> None:
    """JobStatus is exactly the spec's Job.status enum, in the same order."""
    assert [s.value for s in JobStatus] == _job_statuses(spec)


def test_every_webhook_event_the_spec_offers_is_a_job_event(spec: dict[str, Any]) -> None:
    """Each value a caller may put in webhookEvents is parsed as that job event."""
    events = _webhook_events(spec)
    assert events == {"progress", "completed", "failed"}
    for name in events:
        body = orjson.dumps({"event": name, "jobId": "job-1", "progress": 10})
        assert parse_body(body).kind == Kind(name)


@pytest.mark.parametrize("field", ["status", "type"])
def test_a_body_naming_only_a_spec_status_is_read_as_its_event(
    spec: dict[str, Any], field: str
) -> None:
    """A body with a jobId and one of the spec's statuses, but no event, is read as the event
    that status stands for (flagged inferred); ``type`` is read before ``status``."""
    for status in _job_statuses(spec):
        expected = ENDS.get(status, Kind.PROGRESS)
        fields: dict[str, Any] = {"jobId": "job-1", "status": status, "progress": 10}
        if field == "type":
            fields = {"jobId": "job-1", "type": expected.value, "status": "PROCESSING"}
        parsed = parse_body(orjson.dumps(fields))
        assert (parsed.kind, parsed.flags[:1]) == (expected, ("event_inferred",)), status


def test_every_ended_spec_status_found_by_a_poll_becomes_its_event(spec: dict[str, Any]) -> None:
    """Reconciliation turns a job resource in each ended status of the spec into the webhook of
    that end, so no finished job is looked up for ever."""
    for status in _job_statuses(spec):
        body = event_body({"id": "job-1", "status": status, "progress": 50, "model": "flux-pro"})
        if status in ENDS:
            assert body is not None
            assert parse_body(body).kind == ENDS[status]


def _models(spec: dict[str, Any]) -> set[str]:
    """Every ``model`` enum or const anywhere in the spec."""
    found: set[str] = set()
    stack: list[Any] = [spec]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            model = node.get("properties", {}).get("model", {})
            found.update(model.get("enum", ()))
            if "const" in model:
                found.add(model["const"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def test_the_known_models_are_the_ones_the_spec_documents(spec: dict[str, Any]) -> None:
    """receiver.apiframe.models.MODELS (the credits metric's own series) is exactly the set of
    model ids Apiframe's spec documents: a model added there shows up here."""
    assert _models(spec) == MODELS
