"""framehook's receiver: verifies, dedupes and durably records Apiframe webhooks."""

from receiver.app import create_app
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
from receiver.signatures import Derivation, SignatureMatch, Verifier, sign

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
    "create_app",
    "sign",
]
