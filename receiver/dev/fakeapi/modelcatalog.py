"""``GET /v2/models``: the fake's model catalogue, every model its routes take, by modality.

Built from the fake's per-route table (``receiver.dev.fakeapi.catalogue.ROUTES``): a model's
modality is its route's family (``images/*`` → ``image``, ``videos/*`` → ``video``,
``music/*`` → ``music``). Apiframe's entries carry a curated label, description and cost range;
the fake makes up only a label, which the catalogue's entry requires beside id and modality.
"""

from __future__ import annotations

from typing import Any

from receiver.dev.fakeapi.catalogue import ROUTES

__all__ = ["MODALITIES", "catalogue", "modality_of"]

MODALITIES = ("image", "video", "music")
_FAMILIES = {"images": "image", "videos": "video", "music": "music"}
_MODALITY_OF = {
    model: _FAMILIES[route.split("/", 1)[0]] for route, models in ROUTES.items() for model in models
}


def modality_of(model: str) -> str | None:
    """The modality of a model one of the fake's routes takes, else ``None``."""
    return _MODALITY_OF.get(model)


def _label(model: str) -> str:
    return " ".join(
        word.upper() if len(word) <= 3 else word.capitalize() for word in model.split("-")
    )


def catalogue(modality: str | None = None) -> list[dict[str, Any]]:
    """The catalogue's entries (``ModelCatalogEntry``), of one modality or all, by id."""
    return [
        {"id": model, "label": _label(model), "modality": kind}
        for model, kind in sorted(_MODALITY_OF.items())
        if modality is None or kind == modality
    ]
