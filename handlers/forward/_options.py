"""The forward handler's settings (``FRAMEHOOK_FORWARD_*``), read once when it is created.

A ``forward`` handler without an endpoint or a secret cannot do its one job, and a receiver
that started anyway would park every event as dead: creating the handler fails instead, with
one line naming each variable to set, and ``serve``/``worker`` refuse to start on it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import httpx
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from handlers._event import LORA_EVENTS

__all__ = ["DEFAULT_EVENTS", "EVENTS", "ForwardOptions", "ForwardSettingsError", "load_options"]

ENV_PREFIX = "FRAMEHOOK_FORWARD_"
EVENTS = frozenset({"progress", "completed", "failed", *LORA_EVENTS})
"""The events that can be forwarded: a job's (``progress``, ``completed``, ``failed``) and the
LoRA training events (``lora.ready``, ``lora.failed``, ...)."""

DEFAULT_EVENTS = ("completed", "failed", "lora.ready", "lora.failed")
"""Forwarded unless ``FRAMEHOOK_FORWARD_EVENTS`` says otherwise: how a job or a training ended.
``progress`` comes only on request (a job sends several)."""

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
# Standard Webhooks: a secret is 24 to 64 random bytes, base64-encoded.
_SECRET_BYTES = (24, 64)
_MAKE_SECRET = "whsec_ followed by the output of `openssl rand -base64 32`"  # noqa: S105

CommaList = Annotated[list[str], NoDecode]


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ForwardSettingsError(ValueError):
    """``FRAMEHOOK_FORWARD_*`` cannot work; the message names each variable and what to set."""


class ForwardOptions(BaseSettings):
    """Where and how events are forwarded.

    Attributes:
        url: the app's endpoints (``FRAMEHOOK_FORWARD_URL``, comma-separated): each gets every
            event, by ``POST``; http(s) only.
        secret: the Standard Webhooks secret (``whsec_`` + base64) the app verifies with.
        events: the events forwarded: ``completed``, ``failed``, ``progress``, ``lora.ready``,
            ``lora.failed``, ... (``job.completed`` is read as ``completed``).
        timeout_seconds: the longest one endpoint may take to answer, connection included.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True
    )

    # Validated when unset too: a missing endpoint or secret is named at start-up.
    url: CommaList = Field(default_factory=list, validate_default=True)
    secret: SecretStr | None = Field(default=None, validate_default=True)
    events: CommaList = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("url", "events", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split(value)

    @field_validator("url")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        if not urls:
            raise ValueError(
                "not set: name the app's endpoint, https://your.app/webhooks/framehook"
            )
        for url in urls:
            try:
                parsed = httpx.URL(url)
            except httpx.InvalidURL as exc:
                raise ValueError(f"{url} is not a URL: {exc}") from None
            if parsed.scheme not in ("http", "https") or not parsed.host:
                raise ValueError(f"{url} is not an http(s) URL")
        return list(dict.fromkeys(urls))

    @field_validator("secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("secret")
    @classmethod
    def _standard_secret(cls, secret: SecretStr | None) -> SecretStr:
        if secret is None:
            raise ValueError(f"not set: the app's Standard Webhooks secret, {_MAKE_SECRET}")
        text = secret.get_secret_value().strip()
        if not text.startswith(SECRET_PREFIX):
            raise ValueError(f"must start with {SECRET_PREFIX} ({_MAKE_SECRET})")
        try:
            key = base64.b64decode(text.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"is not {SECRET_PREFIX} + base64 ({_MAKE_SECRET})") from None
        low, high = _SECRET_BYTES
        if not low <= len(key) <= high:
            raise ValueError(f"holds {len(key)} bytes, not {low} to {high} ({_MAKE_SECRET})")
        return SecretStr(text)

    @field_validator("events")
    @classmethod
    def _known_events(cls, events: list[str]) -> list[str]:
        names = [e.strip().lower().removeprefix("job.") for e in events]
        unknown = [e for e in names if e not in EVENTS]
        if unknown:
            raise ValueError(
                f"unknown events {', '.join(unknown)}; known: {', '.join(sorted(EVENTS))}"
            )
        if not names:
            raise ValueError("names no event: leave it unset for the default")
        return list(dict.fromkeys(names))

    @property
    def secret_value(self) -> str:
        """The secret, as the signer takes it (``whsec_…``)."""
        assert self.secret is not None  # the validator refuses None
        return self.secret.get_secret_value().strip()


def load_options(**overrides: Any) -> ForwardOptions:
    """The options from the environment (and ``.env``), ``overrides`` on top (``url=[...]``).

    Raises:
        ForwardSettingsError: one line naming every variable that is missing or wrong.
    """
    try:
        return ForwardOptions(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            message = message[:1].lower() + message[1:]  # pydantic's own start with a capital
            problems.append(f"{ENV_PREFIX}{field.upper()} {message}")
        raise ForwardSettingsError("; ".join(problems)) from None
