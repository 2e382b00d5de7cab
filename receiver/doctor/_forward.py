"""The forward check: each ``FRAMEHOOK_FORWARD_URL`` takes a signed ping.

Any HTTP answer proves the endpoint is reachable; a 2xx to a signed ``webhook.test`` ping
proves more: the app is there, verifies framehook's signature with the same secret, and takes
event types it does not know (what Standard Webhooks asks of a receiver). So: 2xx is ok; a
redirect (never followed), 401/403 (a signature refused), 410 (the app asks to stop) or no
answer fail; any other answer is a warning.
"""

from __future__ import annotations

import asyncio
import uuid

from handlers.forward import (
    EndpointAnswer,
    ForwardHandler,
    ForwardSettingsError,
    Signer,
    deliver,
    load_options,
    ping,
)
from receiver.doctor._result import Check, Status
from receiver.settings import Settings

__all__ = ["check_forward"]

_REFUSED_SIGNATURE = frozenset({401, 403})


def _forwarding(settings: Settings) -> bool:
    return any(
        name == ForwardHandler.name or name.endswith(f":{ForwardHandler.__name__}")
        for name in settings.handlers
    )


def check_forward(settings: Settings, timeout: float = 5.0) -> list[Check]:
    """One check per forward endpoint, when ``forward`` is in ``FRAMEHOOK_HANDLERS``."""
    if not _forwarding(settings):
        return []
    try:
        options = load_options()
    except ForwardSettingsError as exc:
        return [Check("forward", Status.FAIL, f"not checked: {exc}", "set FRAMEHOOK_FORWARD_*")]
    body = ping()
    headers = Signer(options.secret_value).headers(f"msg_framehook_ping_{uuid.uuid4().hex}", body)
    answers = asyncio.run(deliver(options.url, body, headers, timeout_seconds=timeout))
    return [_judged(answer) for answer in answers]


def _judged(answer: EndpointAnswer) -> Check:
    said = f"POST {answer.url} (a signed webhook.test ping): {answer.detail}"
    status = answer.status
    if answer.ok:
        return Check("forward", Status.OK, f"{said} in {answer.seconds * 1000:.0f} ms")
    if status is None:
        return Check(
            "forward", Status.FAIL, said, "is the app running, and reachable from this machine?"
        )
    if 300 <= status < 400:
        return Check(
            "forward",
            Status.FAIL,
            said,
            "set FRAMEHOOK_FORWARD_URL to the URL the app answers at: redirects are not followed",
        )
    if status in _REFUSED_SIGNATURE:
        return Check(
            "forward",
            Status.FAIL,
            said,
            "the app must verify with the secret in FRAMEHOOK_FORWARD_SECRET",
        )
    if answer.gone:
        return Check(
            "forward",
            Status.FAIL,
            said,
            "410 Gone tells framehook to stop: remove the URL from FRAMEHOOK_FORWARD_URL",
        )
    return Check(
        "forward",
        Status.WARN,
        f"{said}: reachable, but it did not take the ping",
        "check the path in FRAMEHOOK_FORWARD_URL; an app should answer 2xx to an event type "
        "it does not know",
    )
