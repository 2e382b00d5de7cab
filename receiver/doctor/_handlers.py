"""The handlers check: each one in ``FRAMEHOOK_HANDLERS`` loads, and what it subscribes to."""

from __future__ import annotations

from receiver.doctor._result import Check, Status
from receiver.errors import RegistryError
from receiver.queue.registry import load_handlers
from receiver.settings import Settings

__all__ = ["check_handlers"]


def check_handlers(settings: Settings) -> list[Check]:
    """One check per handler in ``FRAMEHOOK_HANDLERS``: does it load, what does it want."""
    if not settings.handlers:
        return [
            Check(
                "handlers",
                Status.WARN,
                "none configured: webhooks are recorded, but nothing captures their files",
                "FRAMEHOOK_HANDLERS=download captures every result's files",
            )
        ]
    checks: list[Check] = []
    for name in settings.handlers:
        try:
            (handler,) = load_handlers([name])
        except RegistryError as exc:
            checks.append(
                Check(
                    f"handler {name}",
                    Status.FAIL,
                    str(exc),
                    "install the package that provides it, or fix FRAMEHOOK_HANDLERS "
                    "(entry-point names or module:attribute, comma-separated)",
                )
            )
            continue
        models = getattr(handler, "models", None)
        wants = f"events {', '.join(sorted(handler.events)) or 'none'}; models "
        wants += "all" if models is None else ", ".join(sorted(models))
        checks.append(Check(f"handler {handler.name}", Status.OK, f"loads ({name}): {wants}"))
    if all(c.status is Status.OK for c in checks):
        # Each loads alone; together they may still clash (two share a name).
        try:
            load_handlers(settings.handlers)
        except RegistryError as exc:
            checks.append(
                Check(
                    "handlers",
                    Status.FAIL,
                    str(exc),
                    "list each handler once in FRAMEHOOK_HANDLERS, or rename one of them",
                )
            )
    return checks
