"""``framehook_credits_total{model}`` takes its label from webhook content: however many
models arrive, and however long their names, the scrape keeps a bounded set of short labels,
and every credit is still counted."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from receiver.apiframe.models import MODELS
from receiver.metrics import MAX_MODEL_LABEL_LENGTH, MAX_OTHER_MODELS, Metrics
from tests.support.webhooks import signed_headers, webhook_body


def credits_by_label(text: str) -> dict[str, float]:
    return {
        s.labels["model"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "framehook_credits_total"
    }


def test_ten_thousand_models_and_a_megabyte_name_make_a_bounded_set_of_labels() -> None:
    """10,000 made-up models, a 1 MiB name and a name with a newline: the first
    MAX_OTHER_MODELS made-up names keep a series each, the rest count as ``other``; every
    documented model still gets its own after the flood; no label is longer than
    MAX_MODEL_LABEL_LENGTH, and the totals add up."""
    metrics = Metrics()
    for n in range(10_000):
        metrics.credit(f"made-up-{n}", 1)
    metrics.credit("m" * 1_048_576, 5)
    metrics.credit("two\nlines", 7)
    for model in MODELS:
        metrics.credit(model, 2)
    metrics.credit(None, 3)
    body, _content_type = metrics.render()
    found = credits_by_label(body.decode())

    made_up = {f"made-up-{n}" for n in range(MAX_OTHER_MODELS)}
    assert set(found) == made_up | MODELS | {"other", "unknown"}
    assert {model: found[model] for model in MODELS} == dict.fromkeys(MODELS, 2.0)
    assert found["other"] == 10_000 - MAX_OTHER_MODELS + 5 + 7
    assert found["unknown"] == 3
    assert sum(found.values()) == 10_000 + 5 + 7 + 2 * len(MODELS) + 3
    assert max(len(label) for label in found) <= MAX_MODEL_LABEL_LENGTH
    assert len(body) < 32_768


def test_webhooks_naming_many_models_count_under_bounded_labels(
    make_client: Callable[..., TestClient],
) -> None:
    """Through the intake: completed webhooks of more made-up models than the budget, and of
    the longest name the intake keeps (200 characters), are all charged; /metrics shows the
    budget's worth of names and the rest as ``other``, no label over MAX_MODEL_LABEL_LENGTH."""
    client = make_client(handlers=[])
    models = [f"lab-model-{n}" for n in range(MAX_OTHER_MODELS + 8)] + ["y" * 200]
    for n, model in enumerate(models):
        body = orjson.dumps(
            webhook_body("completed", jobId=f"job-{n}", model=model, creditCost=3, result={})
        )
        answer = client.post("/webhooks/apiframe", content=body, headers=signed_headers(body))
        assert answer.status_code == 202, answer.text
    found = credits_by_label(client.get("/metrics").text)
    assert set(found) == {f"lab-model-{n}" for n in range(MAX_OTHER_MODELS)} | {"other"}
    assert found["other"] == 3 * 9
    assert sum(found.values()) == 3 * len(models)
    assert max(len(label) for label in found) <= MAX_MODEL_LABEL_LENGTH
