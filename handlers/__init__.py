"""The plugin API: what a framehook handler is, what it receives and what it may raise."""

from handlers._assets import Asset, AssetLog, AssetRepair
from handlers._context import HandlerContext
from handlers._event import (
    TEST_MARKER,
    JobEvent,
    JobSnapshot,
    LoraEvent,
    LoraSnapshot,
    is_test_body,
)
from handlers._handler import Handler, wants
from handlers._links import AssetLink, AssetLinker, NoLinks
from handlers._safety import FetchPolicy, UnsafeURL
from handlers._signals import HandlerSignal, PermanentFailure, RetryLater, retry_after
from handlers._transport import safe_client

__all__ = [
    "TEST_MARKER",
    "Asset",
    "AssetLink",
    "AssetLinker",
    "AssetLog",
    "AssetRepair",
    "FetchPolicy",
    "Handler",
    "HandlerContext",
    "HandlerSignal",
    "JobEvent",
    "JobSnapshot",
    "LoraEvent",
    "LoraSnapshot",
    "NoLinks",
    "PermanentFailure",
    "RetryLater",
    "UnsafeURL",
    "is_test_body",
    "retry_after",
    "safe_client",
    "wants",
]
