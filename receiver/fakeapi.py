"""The fake Apiframe's first documented path, kept working. Canonical: ``receiver.dev.fakeapi``."""

from receiver.dev.fakeapi import (
    CDN_BASE_URL,
    MODALITIES,
    Behaviour,
    Delivery,
    FakeApiframe,
    Job,
    create_fake_apiframe,
    fake_of,
    media_file,
    sample_webhook,
    signature,
)

__all__ = [
    "CDN_BASE_URL",
    "MODALITIES",
    "Behaviour",
    "Delivery",
    "FakeApiframe",
    "Job",
    "create_fake_apiframe",
    "fake_of",
    "media_file",
    "sample_webhook",
    "signature",
]
