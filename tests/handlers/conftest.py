"""Fixtures for the handler tests: the certificate authority their loopback HTTPS servers use."""

from __future__ import annotations

import pytest
import trustme


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A throwaway certificate authority."""
    return trustme.CA()
