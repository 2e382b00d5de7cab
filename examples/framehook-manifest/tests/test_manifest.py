"""The example plugin, tested the way a customer would: handlers.testing, no framehook running."""

from __future__ import annotations

import json

import pytest
from framehook_manifest import ManifestHandler

from handlers import PermanentFailure
from handlers.testing import run, sample_event
from storage import MemoryStorage


def test_completed_midjourney_job_gets_a_manifest_of_its_five_urls() -> None:
    """Four images and the grid are listed, with model and cost."""
    storage = MemoryStorage()
    run(ManifestHandler(), sample_event("completed-midjourney"), storage=storage)
    data, content_type = storage.objects["6f1c2a9e-3b7d-4e21-9a55-0c8d2f4b7a10/manifest.json"]
    manifest = json.loads(data)
    assert content_type == "application/json"
    assert (manifest["model"], manifest["creditCost"], len(manifest["urls"])) == (
        "midjourney",
        16,
        5,
    )


def test_suno_tracks_list_audio_and_covers() -> None:
    """Track audio and cover URLs inside nested objects are found; nulls are skipped."""
    storage = MemoryStorage()
    run(ManifestHandler(), sample_event("completed-suno"), storage=storage)
    ((data, _),) = storage.objects.values()
    assert len(json.loads(data)["urls"]) == 3


def test_a_job_without_urls_fails_permanently() -> None:
    """Nothing to list is not worth retrying."""
    with pytest.raises(PermanentFailure):
        run(ManifestHandler(), sample_event("completed-gpt-image-2", result={}))


def test_the_handler_is_not_run_for_progress_events() -> None:
    """It subscribes to completed only."""
    with pytest.raises(ValueError, match="would not run"):
        run(ManifestHandler(), sample_event("progress-midjourney-45"))
