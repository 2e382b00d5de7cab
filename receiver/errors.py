"""Exceptions of the receiver, and the one place where they become HTTP answers.

Tree::

    FramehookError
    ├── ConfigurationError        bad or missing settings; start-up fails with its message
    ├── RegistryError             a handler cannot be loaded, or two share a name
    └── RequestRejected           a webhook answered with a 4xx/5xx and a machine-readable reason
        ├── SignatureRejected     401: signature missing, malformed or wrong
        ├── BodyTooLarge          413: over FRAMEHOOK_MAX_BODY_BYTES
        ├── InvalidPayload        400: verified, but not JSON or not a usable event
        └── Unavailable           503: database down or intake saturated; Apiframe retries
"""

from __future__ import annotations

__all__ = [
    "BodyTooLarge",
    "ConfigurationError",
    "FramehookError",
    "InvalidPayload",
    "RegistryError",
    "RequestRejected",
    "SignatureRejected",
    "Unavailable",
]


class FramehookError(Exception):
    """Base of every error framehook raises on purpose."""


class ConfigurationError(FramehookError):
    """The settings cannot work; the message says which one and how to fix it."""


class RegistryError(FramehookError):
    """A handler named in the configuration cannot be loaded, or two handlers share a name."""


class RequestRejected(FramehookError):
    """A webhook request that gets an error answer.

    Attributes:
        status_code: the HTTP status to answer with.
        reason: a stable, machine-readable token for the JSON body and the metrics.
        detail: a human sentence; never contains secrets.
    """

    status_code: int = 400

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class SignatureRejected(RequestRejected):
    """The ``X-Webhook-Signature`` header is missing, malformed or matches no key."""

    status_code = 401


class BodyTooLarge(RequestRejected):
    """The body is over the configured limit (declared or counted while reading)."""

    status_code = 413


class InvalidPayload(RequestRejected):
    """A verified body that is not JSON, or not an event framehook can act on."""

    status_code = 400


class Unavailable(RequestRejected):
    """The event could not be committed now; answering 503 makes Apiframe try again."""

    status_code = 503

    def __init__(self, reason: str, detail: str, retry_after: int = 1) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after
