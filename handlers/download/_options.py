"""The download handler's settings (``FRAMEHOOK_ASSET_*``), read once when it is created."""

from __future__ import annotations

import string

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DownloadOptions"]

KEY_FIELDS = frozenset({"job_id", "kind", "n", "position", "ext", "model", "date"})


class DownloadOptions(BaseSettings):
    """How assets are captured.

    Attributes:
        key_template: where a file is stored, from ``{job_id}`` (encoded as one path segment,
            so distinct job ids never share a key: ``handlers.download._keys``), ``{kind}``,
            ``{n}`` (1-based within its kind for a file of a documented shape; for any other,
            its position), ``{position}`` (1-based in the result), ``{ext}``, ``{model}``
            (encoded like the job id) and ``{date}`` (the job's completion date,
            ``YYYY-MM-DD``).
        max_bytes: a larger file fails permanently (declared or counted while streaming).
        concurrency: files downloaded at once by one worker (all jobs together).
        chunk_bytes: read and write size while streaming.
        timeout_seconds: longest a single file may take, start to end.
        job_timeout_seconds: longest one job's capture may take (the task's timeout).
        expiry_hours: a 404 this long after completion means the CDN purged the file: a
            permanent failure. Sooner, it is retried (a CDN can lag behind the webhook).
    """

    model_config = SettingsConfigDict(
        env_prefix="FRAMEHOOK_ASSET_", env_file=".env", extra="ignore", frozen=True
    )

    key_template: str = "{job_id}/{kind}-{n}.{ext}"
    max_bytes: int = Field(default=5 * 1024**3, ge=1)
    concurrency: int = Field(default=4, ge=1, le=256)
    # 512 KiB: the pipeline holds a few chunks (read ahead, being joined, being stored), about
    # 2 MiB at this size against 5 at 1 MiB, which counts towards a worker's 100 MiB budget
    # (bench/download.py). Per-chunk costs are still small here: into local storage, the same
    # CPU time per GiB as 1 MiB chunks, where 256 KiB took a sixth more.
    chunk_bytes: int = Field(default=512 * 1024, ge=4096, le=64 * 1024 * 1024)
    timeout_seconds: float = Field(default=900.0, gt=0)
    job_timeout_seconds: float = Field(default=3600.0, gt=0)
    expiry_hours: float = Field(default=24.0, ge=0)

    @field_validator("key_template")
    @classmethod
    def _known_fields(cls, template: str) -> str:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        unknown = names - KEY_FIELDS
        if unknown or "" in names:
            raise ValueError(
                f"FRAMEHOOK_ASSET_KEY_TEMPLATE uses unknown fields {sorted(unknown) or ['{}']}; "
                f"known: {', '.join('{' + n + '}' for n in sorted(KEY_FIELDS))}"
            )
        if "job_id" not in names:
            raise ValueError(
                "FRAMEHOOK_ASSET_KEY_TEMPLATE must contain {job_id}: without it, two jobs' "
                "files would share keys"
            )
        if "position" not in names and not {"kind", "n"} <= names:
            raise ValueError(
                "FRAMEHOOK_ASSET_KEY_TEMPLATE must contain {position}, or {kind} and {n}: "
                "without them, a job's files would share a key"
            )
        return template
