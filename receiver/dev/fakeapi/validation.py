"""Validation of job-creating request bodies, as Apiframe's Zod schemas do it.

A body is checked against its route's table (``receiver.dev.fakeapi.catalogue``): every field
known, the required ones there, each one well-formed. Problems come back keyed by JSON path
(``gptImage2Params.number_of_images``), each with its messages: the ``details`` of Apiframe's
``ValidationError``. Nothing a client sends may raise here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from receiver.apiframe.models import MODELS
from receiver.dev.fakeapi.catalogue import (
    ACTIONS,
    ROUTES,
    WEBHOOK_EVENTS,
    ActionRule,
    ModelRule,
)
from receiver.dev.fakeapi.fields import Choice, Field, Text, Uri, Uuid

__all__ = ["Details", "JobRequest", "job_request"]

Details = dict[str, list[str]]
_WEBHOOK_FIELDS = frozenset({"webhookUrl", "webhookEvents"})
_WEB_URL = Uri(web=True)
_DEFAULT_EVENTS = frozenset({"completed", "failed"})


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A valid request: its model (``None`` on action routes, where the parent's applies),
    the parent job of an action, and where its webhooks go."""

    model: str | None
    parent_job_id: str | None
    webhook_url: str | None
    webhook_events: frozenset[str]


def _check(details: Details, path: str, rule: Field, value: object) -> None:
    if (message := rule.check(value)) is not None:
        details.setdefault(path, []).append(message)


def _fields(
    details: Details,
    prefix: str,
    body: Mapping[str, Any],
    allowed: Mapping[str, Field | None],
    required: tuple[str, ...],
    *,
    closed: bool = True,
) -> None:
    """Check ``body``'s fields: ``required`` there, unknown ones refused when ``closed``, the
    ones with a rule well-formed (``None``: checked elsewhere)."""
    for name in required:
        if name not in body:
            details.setdefault(prefix + name, []).append("Required")
    for name, value in body.items():
        if name not in allowed:
            if closed:
                details.setdefault(prefix + name, []).append("Unrecognized key")
        elif (rule := allowed[name]) is not None:
            _check(details, prefix + name, rule, value)


def _events(details: Details, value: object) -> frozenset[str]:
    if not isinstance(value, list) or not value:
        details["webhookEvents"] = ["Expected a non-empty array"]
        return frozenset()
    member = Choice(WEBHOOK_EVENTS)
    for index, event in enumerate(value):
        _check(details, f"webhookEvents.{index}", member, event)
    return frozenset(e for e in value if isinstance(e, str))


def _model_body(details: Details, operation: str, body: Mapping[str, Any]) -> str | None:
    models = ROUTES[operation]
    model = body.get("model")
    if "model" not in body:
        details["model"] = ["Required"]
    elif not isinstance(model, str) or model not in models:
        # Not ``model in MODELS`` on any value: a JSON object or array is unhashable.
        known = (
            "a model of another route"
            if isinstance(model, str) and model in MODELS
            else "not a model"
        )
        details["model"] = [f"Invalid enum value ({known}); expected one of {', '.join(models)}"]
    if not isinstance(model, str) or model not in models:
        # Without a model there is no schema to check the rest against.
        return None
    rule: ModelRule = models[model]
    allowed: dict[str, Field | None] = {"model": None, rule.params: None}
    allowed.update(dict.fromkeys(_WEBHOOK_FIELDS))
    required = ["model"]
    if rule.prompt is not None:
        allowed["prompt"] = Text(rule.prompt, 1)
        required.append("prompt")
    if rule.params_required:
        required.append(rule.params)
    _fields(details, "", body, allowed, tuple(required))
    params = body.get(rule.params)
    if rule.params in body and not isinstance(params, dict):
        details[rule.params] = ["Expected object"]
    elif isinstance(params, dict):
        # The fake acts on a few params fields only; the others pass unchecked.
        _fields(details, f"{rule.params}.", params, rule.fields, rule.required, closed=False)
    return model


def _action_body(details: Details, operation: str, body: Mapping[str, Any]) -> str | None:
    _, actions = ACTIONS[operation]
    action = body.get("action")
    if not isinstance(action, str) or action not in actions:  # str first: {} is unhashable
        details["action"] = [
            "Required" if action is None else f"Expected one of {', '.join(actions)}"
        ]
        return None
    rule: ActionRule = actions[action]
    allowed: dict[str, Field | None] = {"action": None, "parentJobId": Uuid(), **rule.fields}
    allowed.update(dict.fromkeys(_WEBHOOK_FIELDS))
    _fields(details, "", body, allowed, ("action", "parentJobId", *rule.required))
    parent = body.get("parentJobId")
    return parent if isinstance(parent, str) else None


def job_request(operation: str, body: object) -> JobRequest | Details:
    """The request to ``POST /v2/<operation>`` with ``body`` (decoded JSON), or its problems.

    Args:
        operation: a route of ``ROUTES`` or ``ACTIONS``.
        body: the decoded body, of any JSON type.
    """
    if not isinstance(body, dict):
        return {"": ["Expected object"]}
    details: Details = {}
    model = parent = None
    if operation in ACTIONS:
        parent = _action_body(details, operation, body)
    else:
        model = _model_body(details, operation, body)
    url = body.get("webhookUrl")
    if url is not None:
        _check(details, "webhookUrl", _WEB_URL, url)
    events = _events(details, body["webhookEvents"]) if "webhookEvents" in body else _DEFAULT_EVENTS
    if details:
        return details
    return JobRequest(model, parent, url if isinstance(url, str) else None, events)
