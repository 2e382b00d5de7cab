"""The plugin API: what a framehook handler is, what it receives and what it may raise."""

from handlers._context import HandlerContext
from handlers._event import JobEvent, JobSnapshot
from handlers._handler import Handler
from handlers._signals import HandlerSignal, PermanentFailure, RetryLater

__all__ = [
    "Handler",
    "HandlerContext",
    "HandlerSignal",
    "JobEvent",
    "JobSnapshot",
    "PermanentFailure",
    "RetryLater",
]
