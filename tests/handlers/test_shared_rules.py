"""The rules both framehook's receiver and handlers.testing apply, written once in handlers."""

from __future__ import annotations

from datetime import UTC, datetime

from handlers import LoraEvent, LoraSnapshot, wants
from handlers._event import LORA_ENDED as HANDLERS_LORA_ENDED
from receiver.apiframe.loras import LORA_ENDED, LoraStatus
from receiver.intake.arrivals import Subscription

MOMENT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_wants_filters_job_events_by_model_and_lora_events_by_name_only() -> None:
    """A models filter narrows job events; LoRA events, which have no model, pass it."""
    events = frozenset({"completed", "lora.ready"})
    models = frozenset({"midjourney"})
    assert wants(events, "completed", models=models, model="midjourney")
    assert not wants(events, "completed", models=models, model="flux-pro")
    assert not wants(events, "completed", models=models, model=None)
    assert wants(events, "completed", model=None)
    assert wants(events, "lora.ready", models=models)
    assert not wants(events, "failed", model="midjourney")


def test_the_intakes_subscription_answers_as_wants_does() -> None:
    """Subscription.wants (the receiver's task fan-out) is handlers.wants for its fields."""
    sub = Subscription("d", frozenset({"completed", "lora.failed"}), frozenset({"kling-2.6"}))
    for event in ("completed", "failed", "lora.failed", "lora.ready"):
        for model in ("kling-2.6", "midjourney", None):
            expected = wants(sub.events, event, models=sub.models, model=model)
            assert sub.wants(event, model) is expected


def test_a_lora_event_describes_the_training_as_a_job() -> None:
    """from_lora: the job carries the LoRA's id, status, error and end, at 100% once ended."""
    failed = LoraSnapshot(id="lora_1", status="FAILED", error="too few faces", completed_at=MOMENT)
    event = LoraEvent.from_lora(
        failed, event="lora.failed", payload={"loraId": "lora_1"}, delivery_id=7, received_at=MOMENT
    )
    assert (event.job_id, event.lora, event.source) == ("lora_1", failed, "webhook")
    assert (event.job.id, event.job.status, event.job.progress) == ("lora_1", "FAILED", 100)
    assert (event.job.error, event.job.completed_at, event.model) == ("too few faces", MOMENT, None)
    training = LoraSnapshot(id="lora_2", status="TRAINING")
    assert (
        LoraEvent.from_lora(
            training, event="lora.training", payload={}, delivery_id=8, received_at=MOMENT
        ).job.progress
        == 0
    )


def test_handlers_and_the_receiver_agree_on_when_a_lora_has_ended() -> None:
    """handlers' string copy of the ended LoRA statuses is the receiver's LORA_ENDED."""
    assert {s.value for s in LORA_ENDED} == HANDLERS_LORA_ENDED
    assert LoraStatus.UNKNOWN not in LORA_ENDED
