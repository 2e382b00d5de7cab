"""What the endpoints' answers mean for the task: done, try again later, or stop.

With several endpoints, every attempt posts to all of them with the same ``webhook-id`` (a
task keeps no state per endpoint, so it cannot know which took the event last time): one that
did sees the id again and drops the copy. The task succeeds when every endpoint answered 2xx.
Otherwise, by the failures:

- only 410 Gone: the apps asked to stop; the task is dead at once (a replay sends again);
- any 408, 425, 429 or 5xx, or no answer: retried, after the longest ``Retry-After`` they
  asked for (capped at :data:`MAX_RETRY_AFTER`), else after the usual backoff;
- any other 4xx, or a redirect: retried with the usual backoff, dead after the attempts
  (``FRAMEHOOK_RETRY_MAX_ATTEMPTS``): a 400 or 401 may be an app being deployed, or a secret
  being changed.
"""

from __future__ import annotations

from collections.abc import Sequence

from handlers._signals import PermanentFailure, RetryLater
from handlers.forward._delivery import EndpointAnswer

__all__ = ["MAX_RETRY_AFTER", "NotDelivered", "raise_for"]

MAX_RETRY_AFTER = 3600.0
"""The longest wait an endpoint's ``Retry-After`` can ask for; a longer one is cut to this."""


class NotDelivered(RetryLater):
    """Some endpoint did not take the event; the task runs again (see the module docstring).

    A :class:`RetryLater`, so the attempt is one log line naming each endpoint and its answer,
    not a traceback: an app that is down is an expected outcome.
    """


def raise_for(answers: Sequence[EndpointAnswer]) -> None:
    """Return if every endpoint took the event; else raise what the task should do.

    Raises:
        PermanentFailure: every endpoint that did not take it answered 410 Gone.
        NotDelivered: anything else.
    """
    failed = [answer for answer in answers if not answer.ok]
    if not failed:
        return
    summary = f"{len(failed)} of {len(answers)} endpoints did not take the event: " + "; ".join(
        str(answer) for answer in failed
    )
    if all(answer.gone for answer in failed):
        raise PermanentFailure(f"{summary} (410 Gone: the app asks not to be sent more)")
    waits = [a.retry_after for a in failed if a.transient and a.retry_after is not None]
    delay = min(max(waits), MAX_RETRY_AFTER) if waits else None
    raise NotDelivered(delay, summary)
