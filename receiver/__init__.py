"""framehook's receiver: verifies, dedupes and durably records Apiframe webhooks."""

import importlib.metadata
from typing import TYPE_CHECKING, Any

from receiver.apiframe.signatures import Derivation, SignatureMatch, Verifier, sign
from receiver.errors import (
    BodyTooLarge,
    ConfigurationError,
    FramehookError,
    InvalidPayload,
    RegistryError,
    RequestRejected,
    SignatureRejected,
    Unavailable,
)
from receiver.settings import Settings

if TYPE_CHECKING:
    from receiver.app import create_app

__all__ = [
    "BodyTooLarge",
    "ConfigurationError",
    "Derivation",
    "FramehookError",
    "InvalidPayload",
    "RegistryError",
    "RequestRejected",
    "Settings",
    "SignatureMatch",
    "SignatureRejected",
    "Unavailable",
    "Verifier",
    "__version__",
    "create_app",
    "sign",
]

try:
    __version__ = importlib.metadata.version("framehook")
except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"


def __getattr__(name: str) -> Any:
    # ``create_app`` pulls in the whole web app (Starlette, the admin API, uvicorn through
    # sse-starlette): loaded on first use, so ``framehook worker`` and the CLI's other commands
    # do not pay for it (measured: about 35 MiB of a worker's idle memory).
    if name == "create_app":
        from receiver.app import create_app

        return create_app
    raise AttributeError(f"module 'receiver' has no attribute {name!r}")
