"""docker-compose.yml and the Dockerfile, checked without a Docker engine: the services a
deployment at scale needs, the order they start in, commands the CLI accepts, and settings
framehook actually reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from handlers.download import DownloadOptions
from receiver import Settings
from receiver.cli import app

ROOT = Path(__file__).resolve().parents[3]
yaml = pytest.importorskip("yaml")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml, parsed (anchors and merge keys resolved)."""
    parsed: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return parsed


def known_variables() -> set[str]:
    """Every environment variable framehook's settings read."""
    names = {"APIFRAME_API_KEY"}
    names |= {f"FRAMEHOOK_{field.upper()}" for field in Settings.model_fields}
    names |= {f"FRAMEHOOK_ASSET_{field.upper()}" for field in DownloadOptions.model_fields}
    return names


def test_the_services_of_a_deployment_at_scale_are_there(compose: dict[str, Any]) -> None:
    """Receivers and workers (several of each), PostgreSQL, an S3-compatible store, a one-shot
    migration and a balancer in front of the receivers."""
    services = compose["services"]
    assert {"receiver", "worker", "postgres", "minio", "migrate", "balancer"} <= services.keys()
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["minio"]["image"].startswith("minio/minio")
    assert services["receiver"]["deploy"]["replicas"] >= 2
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert "receiver:8000" in compose["configs"]["balancer"]["content"]


def test_receivers_and_workers_start_only_after_the_migration_succeeded(
    compose: dict[str, Any],
) -> None:
    """`framehook db upgrade` runs once, after PostgreSQL is healthy; receivers and workers
    wait for it to complete successfully (and for the bucket to exist)."""
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["framehook", "db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for role in ("receiver", "worker"):
        depends = services[role]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}
        assert depends["bucket"] == {"condition": "service_completed_successfully"}


def test_one_image_serves_both_roles_with_commands_the_cli_accepts(
    compose: dict[str, Any],
) -> None:
    """Receivers run `serve --no-worker --host 0.0.0.0`, workers `worker`, from the same build;
    each command parses (its `--help` exits 0 only if every option before it exists)."""
    services = compose["services"]
    receiver, worker = services["receiver"], services["worker"]
    assert receiver["build"] == worker["build"] == services["migrate"]["build"] == "."
    assert receiver["command"][:3] == ["framehook", "serve", "--no-worker"]
    assert receiver["command"][3:5] == ["--host", "0.0.0.0"]  # noqa: S104 - a container listens on all
    assert worker["command"] == ["framehook", "worker"]
    for command in (receiver["command"], worker["command"], services["migrate"]["command"]):
        parsed = CliRunner().invoke(app, [*command[1:], "--help"])
        assert parsed.exit_code == 0, f"{command}: {parsed.output}"
    # A worker has no /healthz: its check connects to the metrics server it is told to run
    # (a connect, not a scrape, which FRAMEHOOK_METRICS_TOKEN would refuse).
    port = worker["environment"]["FRAMEHOOK_WORKER_METRICS_PORT"]
    assert f"('127.0.0.1', {port})" in " ".join(worker["healthcheck"]["test"])
    assert worker["environment"]["FRAMEHOOK_WORKER_METRICS_HOST"] == "0.0.0.0"  # noqa: S104
    # SIGTERM lets running handlers finish (FRAMEHOOK_GRACE_SECONDS): the stop must wait longer.
    grace = int(worker["stop_grace_period"].removesuffix("s"))
    assert grace > Settings().grace_seconds


def test_every_setting_named_is_one_framehook_reads(compose: dict[str, Any]) -> None:
    """No misspelt variable: every FRAMEHOOK_* name in the compose file and the Dockerfile is
    a setting, and the object store's AWS_* names are the ones the README documents."""
    known = known_variables()
    named: set[str] = set()
    for service in compose["services"].values():
        named |= set(service.get("environment", {}))
    dockerfile = (ROOT / "Dockerfile").read_text()
    named |= set(re.findall(r"\b(FRAMEHOOK_[A-Z_]+)=", dockerfile))
    framehook = {n for n in named if n.startswith(("FRAMEHOOK_", "APIFRAME_"))}
    assert framehook - known == set()
    assert {"FRAMEHOOK_DATABASE_URL", "FRAMEHOOK_STORAGE_URL", "APIFRAME_API_KEY"} <= framehook
    readme = (ROOT / "README.md").read_text()
    aws = {n for n in named if n.startswith("AWS_")}
    assert aws
    assert all(re.search(rf"`{n}\b", readme) for n in aws)


def test_the_image_has_the_drivers_the_compose_file_uses(compose: dict[str, Any]) -> None:
    """PostgreSQL and S3 URLs in the compose file; the image installs both extras."""
    env = compose["services"]["receiver"]["environment"]
    assert env["FRAMEHOOK_DATABASE_URL"].startswith("postgresql://")
    assert env["FRAMEHOOK_STORAGE_URL"].startswith("s3://")
    extras = re.search(r"^ARG EXTRAS=(\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert extras is not None
    assert {"postgres", "s3"} <= set(extras.group(1).split(","))
