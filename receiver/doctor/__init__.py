"""``framehook doctor``: check a deployment the way its first webhook would find it.

Every check is a plain function returning ``Check`` values (``ok``, ``warn`` or ``fail``, a
detail and a hint for fixing it), one module per kind of check. Checks are isolated: one that
fails, or even crashes, never stops the others, so an operator sees every problem in one run
instead of one per restart. Nothing here prints: ``receiver.cli.doctor`` renders the results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from receiver.doctor._database import check_database
from receiver.doctor._forward import check_forward
from receiver.doctor._handlers import check_handlers
from receiver.doctor._network import check_apiframe, check_public_url
from receiver.doctor._result import Check, Status
from receiver.doctor._settings import (
    MIN_TOKEN_LENGTH,
    check_admin_token,
    check_api_keys,
    check_configuration,
)
from receiver.doctor._storage import check_storage
from receiver.settings import Settings
from storage import PROBE_PREFIX

__all__ = [
    "MIN_TOKEN_LENGTH",
    "PROBE_PREFIX",
    "Check",
    "Status",
    "check_admin_token",
    "check_api_keys",
    "check_apiframe",
    "check_configuration",
    "check_database",
    "check_forward",
    "check_handlers",
    "check_public_url",
    "check_storage",
    "diagnose",
    "run_checks",
]


def _isolated(name: str, check: Callable[[], list[Check]]) -> list[Check]:
    # A bug in one check (or a library raising something unexpected) is that check's failure,
    # reported like any other, never a traceback that hides the rest.
    try:
        return check()
    except Exception as exc:
        return [
            Check(
                name,
                Status.FAIL,
                f"the check itself failed: {type(exc).__name__}: {exc}",
                "please report this to framehook's maintainers",
            )
        ]


def run_checks(settings: Settings, *, apiframe: bool = False, timeout: float = 5.0) -> list[Check]:
    """Every check but the configuration's, on ``settings``, in the order they are shown.

    Args:
        settings: the configuration to check.
        apiframe: also ask Apiframe's job API whether it accepts the key (a real request).
        timeout: seconds each network check (storage, public URL, Apiframe) may take.
    """
    checks: list[tuple[str, Callable[[], list[Check]]]] = [
        ("api keys", lambda: check_api_keys(settings)),
        ("database", lambda: check_database(settings)),
        ("storage", lambda: check_storage(settings, timeout)),
        ("handlers", lambda: check_handlers(settings)),
        ("public url", lambda: check_public_url(settings, timeout)),
        ("forward", lambda: check_forward(settings, timeout)),
        ("admin token", lambda: check_admin_token(settings)),
    ]
    if apiframe:
        checks.append(("apiframe", lambda: check_apiframe(settings, timeout)))
    return [result for name, check in checks for result in _isolated(name, check)]


def diagnose(
    overrides: Mapping[str, Any] | None = None, *, apiframe: bool = False, timeout: float = 5.0
) -> list[Check]:
    """Load the configuration (environment, ``.env``, ``overrides``) and run every check on it.

    Args:
        overrides: settings given in code, on top of the environment.
        apiframe: also ask Apiframe's job API whether it accepts the key (a real request).
        timeout: seconds each network check may take.

    Returns:
        The checks in display order, the configuration's first.
    """
    loaded, settings = check_configuration(overrides)
    if settings is None:
        return [loaded]
    return [loaded, *run_checks(settings, apiframe=apiframe, timeout=timeout)]
