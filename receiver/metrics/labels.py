"""The ``model`` label of ``framehook_credits_total``, bounded.

The model comes from webhook content (and Apiframe's job API), and each label value is a
series Prometheus keeps for good: unbounded, 10,000 names would be 10,000 series, and a long
name a long label in every scrape (the intake sets aside names over 200 characters, but
``Metrics.credit`` takes whatever it is given).
"""

from __future__ import annotations

import re
import threading

from receiver.apiframe.models import MODELS

__all__ = ["MAX_MODEL_LABEL_LENGTH", "MAX_OTHER_MODELS", "ModelLabels"]

MAX_OTHER_MODELS = 32
"""Models outside Apiframe's documented ones (``receiver.apiframe.models``) that still get a
series of their own: the first ones seen. A model Apiframe added since keeps its own line;
made-up names add at most this many series, then count as ``other``."""
MAX_MODEL_LABEL_LENGTH = 64
"""The longest model name kept as a label (Apiframe's are under 30 characters)."""
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]*")


class ModelLabels:
    """Model names to label values, from a bounded set.

    A documented model is its own label; so is any other plausible name (at most
    :data:`MAX_MODEL_LABEL_LENGTH` characters of letters, digits and ``._:/+-``) among the first
    :data:`MAX_OTHER_MODELS` seen by this process; everything else is ``other``, and no model
    at all is ``unknown``.
    """

    __slots__ = ("_lock", "_seen")

    def __init__(self) -> None:
        self._seen: set[str] = set()
        # Thread-safe like prometheus-client's own children: Metrics may be counted into from
        # any thread.
        self._lock = threading.Lock()

    def __call__(self, model: str | None) -> str:
        """The label that counts ``model``."""
        if not model:
            return "unknown"
        if model in MODELS:
            return model
        if len(model) > MAX_MODEL_LABEL_LENGTH or _MODEL_NAME.fullmatch(model) is None:
            return "other"
        with self._lock:
            if model in self._seen:
                return model
            if len(self._seen) < MAX_OTHER_MODELS:
                self._seen.add(model)
                return model
        return "other"
