"""What each job-creating route accepts, written from Apiframe's OpenAPI description (v2.0.0).

Per route, the models it takes and, per model, its ``<model>Params`` object: whether it is
required, its required fields and the fields the fake acts on (output counts and formats).
Other params fields are let through unchecked: the fake does nothing with them. The two action
routes take no model but an ``action``, each with its own fields. ``receiver.apiframe.models``
holds the ids Apiframe documents; a test checks these tables name exactly those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from receiver.dev.fakeapi.fields import Choice, Field, Integer, Number, Text, Uri

__all__ = ["ACTIONS", "ROUTES", "WEBHOOK_EVENTS", "ActionRule", "ModelRule"]

WEBHOOK_EVENTS = ("progress", "completed", "failed")


@dataclass(frozen=True, slots=True)
class ModelRule:
    """A model on a route: its params object and what a request for it must hold.

    ``prompt`` is the top-level prompt's maximum length (``None``: the route has none);
    ``count`` names the params field that sets how many outputs come back, ``default`` their
    number when it is absent.
    """

    params: str
    prompt: int | None = 2000
    params_required: bool = False
    required: tuple[str, ...] = ()
    fields: Mapping[str, Field] = field(default_factory=dict)
    count: str | None = None
    default: int = 1


@dataclass(frozen=True, slots=True)
class ActionRule:
    """An action on an action route: its fields (besides ``action``, ``parentJobId`` and the
    webhook ones) and which of them are required."""

    fields: Mapping[str, Field]
    required: tuple[str, ...] = ()


def _formats(*names: str) -> dict[str, Field]:
    return {"output_format": Choice(names)}


def _family(models: str, rule: ModelRule) -> dict[str, ModelRule]:
    return dict.fromkeys(models.split(), rule)


_IMAGE: dict[str, Field] = {"image": Uri()}
_GPT = {"number_of_images": Integer(1, 10), **_formats("png", "jpeg", "webp")}

_IMAGES_GENERATE = {
    "midjourney": ModelRule("midjourneyParams"),
    **_family(
        "nano-banana nano-banana-pro nano-banana-2 nano-banana-2-lite",
        ModelRule("nanoBananaParams", fields=_formats("jpg", "png", "webp")),
    ),
    **_family(
        "flux-1.1-pro flux-1.1-pro-ultra flux-2-pro flux-2-dev flux-2-flex flux-2-max",
        ModelRule("fluxParams", fields=_formats("jpg", "png", "webp")),
    ),
    **_family(
        "seedream-3 seedream-3.1 seedream-4 seedream-4.5 seedream-5-lite seedream-5-pro",
        ModelRule("seedreamParams", fields=_formats("jpg", "png")),
    ),
    **_family(
        "ideogram-v2 ideogram-v2-turbo ideogram-v2a ideogram-v2a-turbo ideogram-v3-balanced "
        "ideogram-v3-turbo ideogram-v3-quality ideogram-v4-balanced ideogram-v4-turbo "
        "ideogram-v4-quality",
        ModelRule("ideogramParams"),
    ),
    "ideogram-character": ModelRule(
        "ideogramParams",
        params_required=True,
        required=("character_reference_image",),
        fields={"character_reference_image": Uri()},
    ),
    **_family(
        "stable-diffusion-3.5-large stable-diffusion-3.5-large-turbo "
        "stable-diffusion-3.5-medium stable-diffusion-3",
        ModelRule("stableDiffusionParams", fields=_formats("webp", "jpg", "png")),
    ),
    **_family(
        "imagen-3 imagen-3-fast imagen-4 imagen-4-ultra imagen-4-fast",
        ModelRule("imagenParams", fields=_formats("jpg", "png")),
    ),
    **_family("dall-e-3 dall-e-2", ModelRule("dalleParams")),
    "gpt-image-1.5": ModelRule("gptImageParams", fields=_GPT, count="number_of_images"),
    "gpt-image-2": ModelRule("gptImage2Params", fields=_GPT, count="number_of_images"),
    "kling-image": ModelRule("klingImageParams", fields={"n": Integer(1, 4)}, count="n"),
    "qwen-image": ModelRule(
        "qwenImageParams",
        fields={"num_images": Integer(1, 4), **_formats("png", "jpeg")},
        count="num_images",
    ),
    **_family("qwen-image-2 qwen-image-2-pro", ModelRule("qwenImage2Params")),
    "wan-image-2.6": ModelRule("wanImageParams"),
    **_family("wan-image-2.7 wan-image-2.7-pro", ModelRule("wanImage27Params", prompt=5000)),
    "grok-imagine-image": ModelRule("grokImagineParams"),
    "reve-create": ModelRule("reveParams"),
    "flux-lora": ModelRule(
        "fluxLoraParams",
        params_required=True,
        required=("loraId",),
        # The spec says uuid, but LoRA ids may be ``lora_<hex>`` too: existence is checked instead.
        fields={"num_outputs": Integer(1, 4), **_formats("png", "jpg", "webp")},
        count="num_outputs",
    ),
}

_VIDEOS_GENERATE = {
    **_family(
        "kling-2.1 kling-2.1-master kling-2.5-turbo-pro kling-2.6 kling-3.0 kling-3.0-omni",
        ModelRule("klingParams", prompt=4000),
    ),
    "kling-3.0-motion-control": ModelRule(
        "klingParams",
        prompt=4000,
        params_required=True,
        required=("image", "video"),
        fields={"image": Uri(), "video": Uri()},
    ),
    **_family("sora-2 sora-2-pro", ModelRule("soraParams", prompt=4000)),
    **_family(
        "seedance-1-lite seedance-1-pro seedance-1-pro-fast seedance-1.5-pro seedance-2 "
        "seedance-2-fast seedance-2-mini seedance-2.5",
        ModelRule("seedanceParams", prompt=4000),
    ),
    "midjourney-video": ModelRule(
        "midjourneyVideoParams",
        prompt=4000,
        params_required=True,
        required=("start_image",),
        fields={"start_image": Uri()},
    ),
    **_family(
        "veo-2 veo-3 veo-3-fast veo-3.1 veo-3.1-fast veo-3.1-lite",
        ModelRule("veoParams", prompt=4000),
    ),
    "grok-imagine-video": ModelRule("grokImagineVideoParams", prompt=5000),
    **_family("hailuo-02 hailuo-2.3 hailuo-2.3-fast hailuo-03", ModelRule("hailuoParams")),
    **_family("luma-ray-2 luma-ray-flash-2", ModelRule("lumaParams", prompt=4000)),
    **_family("wan-2.5 wan-2.5-fast wan-2.6 wan-2.6-flash", ModelRule("wanParams", prompt=4000)),
    "wan-2.7": ModelRule("wan27Params", prompt=5000),
    "wan-2.7-r2v": ModelRule("wan27R2vParams", prompt=5000, params_required=True),
    "happyhorse-1.0": ModelRule("happyhorse10Params", prompt=2500),
    "happyhorse-1.1": ModelRule("happyhorse11Params", prompt=2500),
    **_family("runway-gen4-turbo runway-gen4.5", ModelRule("runwayParams", prompt=4000)),
}

_MUSIC_GENERATE = {
    "suno": ModelRule("sunoParams", prompt=5000, default=2),
    "udio": ModelRule("udioParams", prompt=5000, default=2),
    "producer": ModelRule("producerParams", prompt=5000, default=2),
    **_family("lyria-3-clip lyria-3-pro", ModelRule("lyriaParams", prompt=5000, default=2)),
    "elevenlabs-music": ModelRule(
        "elevenlabsParams",
        prompt=5000,
        default=2,
        fields=_formats(
            "mp3_standard",
            "mp3_high_quality",
            "wav_16khz",
            "wav_22khz",
            "wav_24khz",
            "wav_cd_quality",
        ),
    ),
    "mureka": ModelRule(
        "murekaParams", prompt=1024, fields={"n": Integer(1, 3)}, count="n", default=2
    ),
}


def _required_params(
    params: str, required: dict[str, Field], formats: tuple[str, ...] = ()
) -> ModelRule:
    """A route without a top-level prompt, whose params object (and all of ``required``) must
    be there."""
    fields = {**required, **(_formats(*formats) if formats else {})}
    return ModelRule(
        params, prompt=None, params_required=True, required=tuple(required), fields=fields
    )


ROUTES: Mapping[str, Mapping[str, ModelRule]] = MappingProxyType(
    {
        "images/generate": _IMAGES_GENERATE,
        "images/edit": {
            "flux-fill-pro": _required_params(
                "fluxFillParams",
                {"image": Uri(), "prompt": Text(2000, 1), "mode": Choice(("inpaint", "outpaint"))},
                ("jpg", "png"),
            ),
        },
        "images/upscale": {
            "topaz-image-upscale": _required_params("topazUpscaleParams", _IMAGE, ("jpg", "png")),
            "clarity-upscale": _required_params(
                "clarityUpscaleParams", _IMAGE, ("png", "jpg", "webp")
            ),
        },
        "images/background-remove": {
            "bria-bg-remove": _required_params("briaBgRemoveParams", _IMAGE),
            "851-bg-remove": _required_params("lab851BgRemoveParams", _IMAGE),
        },
        "videos/generate": _VIDEOS_GENERATE,
        "videos/edit": {
            "wan-2.7-videoedit": ModelRule(
                "wan27VideoeditParams",
                prompt=5000,
                params_required=True,
                required=("video",),
                fields={"video": Uri()},
            ),
        },
        "videos/upscale": {
            "topaz-video-upscale": _required_params(
                "topazVideoParams",
                {
                    "video": Uri(),
                    "target_resolution": Choice(("720p", "1080p", "4k")),
                    "target_fps": Choice((24, 30, 60)),
                },
            ),
        },
        "music/generate": _MUSIC_GENERATE,
    }
)
"""Per route (under ``/v2/``), the models it accepts and each one's rule."""

_MJ_INDEX = {"index": Choice((1, 2, 3, 4))}
_SUNO_COMMON: dict[str, Field] = {
    "index": Choice((1, 2)),
    "negative_tags": Text(500),
    "prompt": Text(5000),
    "style": Text(1000),
    "title": Text(80),
    "trackId": Text(200, 1),
}

ACTIONS: Mapping[str, tuple[str, Mapping[str, ActionRule]]] = MappingProxyType(
    {
        "images/midjourney/action": (
            "midjourney",
            {
                "upsample": ActionRule(_MJ_INDEX, ("index",)),
                "variation": ActionRule(_MJ_INDEX, ("index",)),
                "inpaint": ActionRule(
                    {"mask": Text(12_000_000, 1), "prompt": Text(2000)}, ("mask",)
                ),
                "outpaint": ActionRule({"zoomRatio": Choice((1.5, 2))}, ("zoomRatio",)),
                "pan": ActionRule(
                    {"direction": Choice(("up", "down", "left", "right"))}, ("direction",)
                ),
            },
        ),
        "music/suno/action": (
            "suno",
            {
                "extend": ActionRule({**_SUNO_COMMON, "continueAt": Number(above=0)}),
                "cover": ActionRule({**_SUNO_COMMON, "audio_weight": Number(0, 1)}),
                "add_vocals": ActionRule({**_SUNO_COMMON, "prompt": Text(5000, 1)}, ("prompt",)),
                "stems": ActionRule({"index": Choice((1, 2)), "trackId": Text(200, 1)}),
            },
        ),
    }
)
"""Per action route, the model its parent job must be of and the actions it takes."""
