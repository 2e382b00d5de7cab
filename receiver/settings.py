"""The one settings object, read once from the environment (and a ``.env`` file)."""

from __future__ import annotations

import sys
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from handlers import FetchPolicy
from receiver.errors import ConfigurationError
from receiver.retry import RetryPolicy

__all__ = ["ENV_PREFIX", "Settings", "setting_variables", "variable_for"]

ENV_PREFIX = "FRAMEHOOK_"
"""What every setting's environment variable starts with (``api_key`` has its own name)."""

CommaList = Annotated[list[str], NoDecode]


def _split(value: object) -> object:
    # Comma-separated in the environment, a real list when built in code.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """framehook's configuration; see the README for every variable.

    Built once at start-up (``Settings()`` reads the environment) and passed explicitly to
    whatever needs it; nothing reads the environment at import time.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("APIFRAME_API_KEY", "api_key")
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    database_url: str = "sqlite:///framehook-data/framehook.db"
    storage_url: str = "framehook-data/assets"
    handlers: CommaList = Field(default_factory=lambda: ["download"])
    admin_token: SecretStr | None = None
    asset_hosts: CommaList = Field(default_factory=lambda: ["*.apiframe.ai"])
    asset_allow_networks: CommaList = Field(default_factory=list)
    asset_allow_http: bool = False
    # How long the links handlers hand out to stored files (``context.links``: presigned URLs,
    # or signed content links) stay valid: at most 7 days, S3's limit for a presigned URL.
    asset_link_seconds: int = Field(default=604_800, ge=60, le=604_800)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    retry_max_attempts: int = Field(default=8, ge=1)
    # A real webhook body is a few KB (the largest fixture is under 1 KB): 64 KiB is ample
    # headroom, and what an unauthenticated client can make the receiver hold per request.
    max_body_bytes: int = Field(default=65_536, ge=1024, le=64 * 1_048_576)
    # Apiframe does not document its LoRA webhook: keys that hold the LoRA id in the real one,
    # if ``receiver.apiframe.loras`` does not recognise it by itself.
    lora_id_fields: CommaList = Field(default_factory=list)
    log_format: Literal["console", "json"] | None = None
    log_level: str = "info"

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    proxy_headers: bool = False
    forwarded_allow_ips: str = "127.0.0.1"
    # Durable intake: how many requests may wait for a commit before new ones get 503, and how
    # long one waits before giving up with 503 (Apiframe retries; a late commit is a duplicate).
    intake_max_pending: int = Field(default=4096, ge=1)
    intake_batch_max: int = Field(default=256, ge=1)
    intake_timeout_seconds: float = Field(default=10.0, gt=0)
    intake_writers: int | None = Field(default=None, ge=1, le=32)
    # What an unauthenticated client can hold (see receiver.server): a request's headers must
    # arrive within ``header_timeout_seconds`` of its first byte and its body within
    # ``body_timeout_seconds`` of its headers; past ``max_connections`` open connections new
    # requests get 503; and unverified webhook bodies held at once (declared or read, before
    # their signature is checked) are capped at ``max_unverified_bytes``: past it, 503 with
    # ``Retry-After`` before a byte of the body is read.
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=3600)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    max_connections: int = Field(default=1000, ge=1)
    max_unverified_bytes: int = Field(default=16 * 1_048_576, ge=1024)
    auto_migrate: bool | None = None

    # Workers (the embedded one in ``serve`` and ``framehook worker``).
    run_worker: bool = True
    worker_concurrency: int = Field(default=8, ge=1, le=1000)
    lease_seconds: float = Field(default=30.0, ge=1)
    poll_seconds: float = Field(default=1.0, gt=0)
    handler_timeout_seconds: float = Field(default=300.0, gt=0)
    grace_seconds: float = Field(default=25.0, ge=0)
    # ``framehook worker`` serves its own /metrics here when set (``serve`` has /metrics on its
    # HTTP port): handler runs, durations and downloaded bytes happen in the workers.
    worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"

    # Apiframe's job API: reconciliation, `framehook generate`, the demo.
    apiframe_url: str = "https://api.apiframe.ai"
    public_url: str | None = None
    """This receiver's address as Apiframe reaches it (a tunnel's URL on a laptop)."""
    reconcile: bool = True
    reconcile_interval_seconds: float = Field(default=60.0, gt=0)
    # A job not finished this long after its last news is looked up (images are quick; videos
    # and music take minutes: polling them sooner only costs requests).
    reconcile_image_seconds: float = Field(default=180.0, gt=0)
    reconcile_video_seconds: float = Field(default=600.0, gt=0)
    reconcile_music_seconds: float = Field(default=300.0, gt=0)
    # A LoRA training takes 15 to 25 minutes (Apiframe's docs).
    reconcile_lora_seconds: float = Field(default=1500.0, gt=0)

    # Retention: raw bodies and finished tasks older than this are pruned (0: never).
    retention_days: float = Field(default=30.0, ge=0)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)

    # The live feed (``/api/events``, the dashboard): how often each open stream looks.
    events_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # Open live streams per process; more are refused with 503 (each one polls the database).
    events_max_streams: int = Field(default=32, ge=1, le=10_000)

    # ``/metrics``: when a token is set, scrapes must send ``Authorization: Bearer <token>``;
    # when a port is set, ``serve`` answers /metrics there (on ``metrics_host``) and no longer
    # on the webhook port.
    metrics_token: SecretStr | None = None
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"

    @field_validator(
        "api_keys",
        "handlers",
        "asset_hosts",
        "asset_allow_networks",
        "lora_id_fields",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split(value)

    @field_validator("asset_hosts", "asset_allow_networks")
    @classmethod
    def _fetch_policy_entries(cls, value: list[str], info: ValidationInfo) -> list[str]:
        # Checked here, as the settings load, so every command stops on one line naming the
        # entry; otherwise the first to notice was the worker's HTTP client, mid-startup.
        try:
            if info.field_name == "asset_hosts":
                FetchPolicy(hosts=tuple(value))
            else:
                FetchPolicy(allow_networks=tuple(value))
        except ValueError as exc:
            # The policy's message names the variable too; the caller names it already.
            reason = str(exc).removeprefix(f"{variable_for(str(info.field_name))}: ")
            raise PydanticCustomError("fetch_policy", reason) from None
        return value

    @field_validator("api_key", "admin_token", "metrics_token", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    def signing_api_keys(self) -> list[str]:
        """Every API key whose derived secret may sign a webhook, primary key first."""
        keys: list[str] = []
        if self.api_key is not None:
            keys.append(self.api_key.get_secret_value().strip())
        keys.extend(k.get_secret_value().strip() for k in self.api_keys)
        # The same key twice (primary also listed in FRAMEHOOK_API_KEYS) verifies once.
        return list(dict.fromkeys(k for k in keys if k))

    def require_api_keys(self) -> list[str]:
        """The signing keys, or a clear error: framehook never accepts unsigned traffic.

        Raises:
            ConfigurationError: neither ``APIFRAME_API_KEY`` nor ``FRAMEHOOK_API_KEYS`` is set.
        """
        keys = self.signing_api_keys()
        if not keys:
            raise ConfigurationError(
                "no Apiframe API key configured: set APIFRAME_API_KEY (or FRAMEHOOK_API_KEYS, "
                "comma-separated) to the key whose SHA-256 signs your webhooks. framehook will "
                "not accept unsigned traffic."
            )
        return keys

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is SQLite (one writer, migrations applied at start)."""
        return self.database_url.startswith("sqlite")

    def retry_policy(self) -> RetryPolicy:
        """The handler retry policy these settings describe."""
        return RetryPolicy(self.retry_base_seconds, self.retry_max_seconds, self.retry_max_attempts)

    def resolved_log_format(self) -> Literal["console", "json"]:
        """``console`` on a terminal, ``json`` elsewhere, unless set explicitly."""
        if self.log_format is not None:
            return self.log_format
        return "console" if sys.stderr.isatty() else "json"


def variable_for(field: str) -> str:
    """The environment variable that sets ``field``: ``FRAMEHOOK_PORT`` for ``port``,
    ``APIFRAME_API_KEY`` for ``api_key`` (what the user wrote, in messages about it)."""
    info = Settings.model_fields.get(field)
    alias = None if info is None else info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    if info is None and field.isupper():  # already a variable's name (an alias)
        return field
    return ENV_PREFIX + field.upper()


def setting_variables() -> frozenset[str]:
    """Every environment variable :class:`Settings` reads."""
    return frozenset(variable_for(field) for field in Settings.model_fields)
