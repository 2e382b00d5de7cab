"""Exceptions of the receiver. ``receiver.responses`` turns them into HTTP answers.

Tree (with the HTTP status of each one a request can get)::

    FramehookError
    ├── ConfigurationError        bad or missing settings; start-up fails with its message
    ├── RegistryError             a handler cannot be loaded, or two share a name
    ├── ApiframeError             Apiframe's API refused a call or stayed unavailable (in
    │                             receiver.apiframe.client; reconciliation and the CLI catch it)
    ├── TunnelError               `serve --tunnel`: the client is missing, exited or printed no
    │                             public URL (in receiver.cli.tunnel; `serve` prints it, exit 2)
    └── RequestRejected           a request answered with a 4xx/5xx and a machine-readable reason
        ├── InvalidPayload        400: a webhook verified, but not JSON or not a usable event
        ├── BadQuery              400: an admin API parameter or cursor it cannot use
        ├── SignatureRejected     401: webhook signature missing, malformed or wrong
        ├── Unauthorized          401: no admin (or metrics) token, or the wrong one (with a
        │                         Bearer challenge)
        ├── Forbidden             403: a signed asset link that expired or is not this server's
        ├── NotFound              404: no such job, task or asset (or its file)
        ├── Conflict              409: not in the resource's current state (a running task)
        ├── BodyTooLarge          413: over FRAMEHOOK_MAX_BODY_BYTES
        ├── ClientGone            499: the client left (or was cut off) before its body arrived
        └── Unavailable           503: database down, intake saturated or storage unusable;
                                  Apiframe (or the admin client) tries again
"""

from __future__ import annotations

__all__ = [
    "BadQuery",
    "BodyTooLarge",
    "ClientGone",
    "ConfigurationError",
    "Conflict",
    "Forbidden",
    "FramehookError",
    "InvalidPayload",
    "NotFound",
    "RegistryError",
    "RequestRejected",
    "SignatureRejected",
    "Unauthorized",
    "Unavailable",
]


class FramehookError(Exception):
    """Base of every error framehook raises on purpose."""


class ConfigurationError(FramehookError):
    """The settings cannot work; the message says which one and how to fix it."""


class RegistryError(FramehookError):
    """A handler named in the configuration cannot be loaded, or two handlers share a name."""


class RequestRejected(FramehookError):
    """A request (a webhook, or an admin API call) that gets an error answer.

    Attributes:
        status_code: the HTTP status to answer with.
        reason: a stable, machine-readable token for the JSON body and the metrics.
        detail: a human sentence; never contains secrets.
        unread_body: the request's body was refused before it was read: the answer closes
            the connection, so the server stops reading (and discarding) what still comes.
    """

    status_code: int = 400
    unread_body: bool = False

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


class ClientGone(RequestRejected):
    """The client disconnected, or missed its deadline, before its request was read.

    Nobody reads the answer; 499 (nginx's "client closed request") is for the log line.
    """

    status_code = 499


class InvalidPayload(RequestRejected):
    """A verified body that is not JSON, or not an event framehook can act on."""

    status_code = 400


class BadQuery(RequestRejected):
    """A query parameter, path parameter or cursor the admin API cannot use."""

    status_code = 400


class Unauthorized(RequestRejected):
    """An admin API (or ``/metrics``) request without its token, or an asset request without a
    signed link to it.

    Attributes:
        token_given: an ``Authorization`` header came, so the token in it was wrong (the
            challenge then says ``invalid_token``).
    """

    status_code = 401

    def __init__(self, token_given: bool) -> None:
        detail = "wrong bearer token" if token_given else "send Authorization: Bearer <token>"
        super().__init__("unauthorized", detail)
        self.token_given = token_given


class Forbidden(RequestRejected):
    """A signed link to an asset that has expired or was not signed with this token."""

    status_code = 403


class NotFound(RequestRejected):
    """No such job, task or asset, or the asset's file is not in this server's storage."""

    status_code = 404


class Conflict(RequestRejected):
    """The request cannot be done in the resource's current state (a running task)."""

    status_code = 409


class Unavailable(RequestRejected):
    """The work could not be done now (database, intake or storage); a 503 asks to come back.

    Attributes:
        retry_after: the ``Retry-After`` seconds, or ``None`` for an answer without one (a
            readiness probe is not a client to slow down).
    """

    status_code = 503

    def __init__(self, reason: str, detail: str, retry_after: int | None = 1) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after
