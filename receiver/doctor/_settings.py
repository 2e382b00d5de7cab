"""Checks on the settings alone: they load, a key can verify webhooks, the admin token."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, ValidationError

from receiver.doctor._result import Check, Status
from receiver.settings import Settings

__all__ = [
    "MIN_TOKEN_LENGTH",
    "check_admin_token",
    "check_api_keys",
    "check_configuration",
    "key_tail",
]

MIN_TOKEN_LENGTH = 16
"""A shorter admin token is reported (``warn``): it guards every job and file."""


def _fields() -> dict[str, tuple[str, str]]:
    """Every name a validation error may give a setting by, to (field, environment variable).

    ``port`` is ``FRAMEHOOK_PORT``; a field with aliases (``api_key``) is read from its first
    (``APIFRAME_API_KEY``), and an error may name it by any of them.
    """
    names: dict[str, tuple[str, str]] = {}
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = (
            [c for c in alias.choices if isinstance(c, str)]
            if isinstance(alias, AliasChoices)
            else []
        )
        variable = choices[0] if choices else f"FRAMEHOOK_{field.upper()}"
        for name in (field, *choices):
            names[name] = (field, variable)
    return names


def check_configuration(
    overrides: Mapping[str, Any] | None = None,
) -> tuple[Check, Settings | None]:
    """Load the settings (environment, ``.env``, ``overrides``) and say what is wrong with them.

    Returns:
        The check, and settings for the other checks: on a validation error, the broken fields
        fall back to their defaults so that, say, a bad ``FRAMEHOOK_PORT`` does not hide a
        database problem. ``None`` only if even that cannot be built.
    """
    given = dict(overrides or {})
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        known = _fields()
        broken = [known.get(str(e["loc"][0])) if e["loc"] else None for e in exc.errors()]
        problems = "; ".join(
            f"{where[1] if where else 'settings'}: {e['msg']}"
            for where, e in zip(broken, exc.errors(), strict=True)
        )
        fields = {where[0] for where in broken if where}
        check = Check(
            "configuration",
            Status.FAIL,
            f"invalid: {problems}",
            "fix these variables in the environment or ./.env (README: Configuration)",
        )
        defaults = {
            name: info.get_default(call_default_factory=True)
            for name, info in Settings.model_fields.items()
            if name in fields
        }
        try:
            return check, Settings(**{**given, **defaults})
        except ValidationError:
            return check, None
    source = "the environment and ./.env" if Path(".env").is_file() else "the environment"
    return Check("configuration", Status.OK, f"loaded from {source}"), settings


def key_tail(key: str) -> str:
    """How a key is shown: its last four characters, enough to tell keys apart (as dashboards
    show them); a short key shows nothing of itself."""
    return f"…{key[-4:]}" if len(key) >= 16 else f"({len(key)} characters)"


def check_api_keys(settings: Settings) -> list[Check]:
    """Whether any key can verify webhooks (``serve`` refuses to start without one)."""
    keys = settings.signing_api_keys()
    if not keys:
        return [
            Check(
                "api keys",
                Status.FAIL,
                "no Apiframe API key: webhooks cannot be verified and `serve` will not start",
                "set APIFRAME_API_KEY to your Apiframe API key (more keys, for rotation, in "
                "FRAMEHOOK_API_KEYS, comma-separated)",
            )
        ]
    count = f"{len(keys)} signing key{'s' if len(keys) != 1 else ''}"
    return [Check("api keys", Status.OK, f"{count}: {', '.join(key_tail(k) for k in keys)}")]


def check_admin_token(settings: Settings) -> list[Check]:
    """Whether ``FRAMEHOOK_ADMIN_TOKEN`` is set (and long enough) for ``/api/*``."""
    hint = (
        "set FRAMEHOOK_ADMIN_TOKEN to a long random value, the same for every replica: "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )
    if settings.admin_token is None:
        return [
            Check(
                "admin token",
                Status.WARN,
                "FRAMEHOOK_ADMIN_TOKEN unset: one is generated at each start, so it changes "
                "with every restart and differs between replicas",
                hint,
            )
        ]
    length = len(settings.admin_token.get_secret_value().strip())
    if length < MIN_TOKEN_LENGTH:
        return [Check("admin token", Status.WARN, f"set, but only {length} characters", hint)]
    return [Check("admin token", Status.OK, f"set ({length} characters)")]
