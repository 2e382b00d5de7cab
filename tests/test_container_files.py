"""The Dockerfile and docker-compose.yml, checked without an engine: hadolint, the Compose
Specification's schema, and what they say about framehook itself (commands, options and
variables that exist). tests/system/test_container.py builds and runs the image."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from ruamel.yaml import YAML

from receiver import Settings
from receiver.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
# The variables framehook reads (the rest, AWS_* for one, are its libraries').
OURS = re.compile(r"\b((?:FRAMEHOOK|APIFRAME)_\w+)")


def _tool(name: str) -> str:
    """A console script of the test environment (a test dependency), wherever it is on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found is not None, f"{name} is missing: pip install -e '.[test]'"
    return found


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(COMPOSE.read_text())
    return data


def _framehook_services() -> Iterator[tuple[str, dict[str, Any]]]:
    """The compose services that run the project's own image."""
    for name, service in _compose()["services"].items():
        if service.get("image") == _compose()["x-framehook"]["image"]:
            yield name, service


def _dockerfile_cmd() -> list[str]:
    """The Dockerfile's exec-form CMD (the image's default command)."""
    found = re.search(r"^CMD (\[.*\])$", DOCKERFILE.read_text(), re.MULTILINE)
    assert found is not None, "the Dockerfile has no exec-form CMD"
    command: list[str] = json.loads(found.group(1))
    return command


def _commands() -> list[list[str]]:
    """Every framehook command line the image is run with: its CMD and compose's commands."""
    commands = [_dockerfile_cmd()]
    commands += [service["command"] for _, service in _framehook_services() if "command" in service]
    return commands


def _options(words: list[str]) -> set[str]:
    """The options ``framehook WORDS`` accepts (``words``: the subcommand's path)."""
    # Typer's own click (vendored in recent releases): walked by duck typing.
    command: Any = typer.main.get_command(app)
    for word in words:
        command = getattr(command, "commands", {}).get(word)
        assert command is not None, f"framehook {' '.join(words)}: no such command"
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def _variables() -> dict[str, str]:
    """framehook's variables the Dockerfile and compose file set, with where each is set."""
    found = dict.fromkeys(OURS.findall(re.sub(r"#.*", "", DOCKERFILE.read_text())), "Dockerfile")
    for name, service in _compose()["services"].items():
        for variable in service.get("environment", {}):
            if OURS.fullmatch(variable):
                found[variable] = f"docker-compose.yml service {name}"
    return found


def test_the_dockerfile_passes_hadolint() -> None:
    """hadolint finds nothing in the Dockerfile, not even at the info level."""
    linted = subprocess.run(
        [_tool("hadolint"), "--no-color", "--failure-threshold=info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_compose_file_matches_the_compose_specification() -> None:
    """docker-compose.yml validates against the Compose Specification's JSON schema."""
    checked = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema=vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_compose_file_refers_only_to_what_it_declares() -> None:
    """Every service named in depends_on, volume and config used is declared in the file."""
    compose = _compose()
    services = set(compose["services"])
    for name, service in compose["services"].items():
        assert set(service.get("depends_on", {})) <= services, name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(("/", ".")) or source in compose["volumes"], (name, volume)
        for config in service.get("configs", []):
            assert config["source"] in compose["configs"], (name, config)


def test_every_command_the_image_runs_is_a_framehook_command() -> None:
    """The image's CMD and compose's commands name real subcommands and options."""
    commands = _commands()
    assert len(commands) >= 4  # the CMD, migrate, receiver, worker
    for command in commands:
        assert command[0] == "framehook", command
        # The subcommand's words come first, then its options and their values.
        words = [*itertools.takewhile(lambda word: not word.startswith("-"), command[1:])]
        unknown = {word for word in command if word.startswith("--")} - _options(words)
        assert not unknown, f"{' '.join(command)}: no such options {sorted(unknown)}"


def test_every_framehook_variable_set_is_a_setting() -> None:
    """Every FRAMEHOOK_* (or APIFRAME_*) variable the Dockerfile and compose file set is one
    that Settings reads: a misspelt one would be ignored without a word."""
    known = {f"FRAMEHOOK_{name.upper()}" for name in Settings.model_fields}
    for field in Settings.model_fields.values():
        known.update(str(alias) for alias in getattr(field.validation_alias, "choices", []))
    variables = _variables()
    assert "APIFRAME_API_KEY" in variables  # the pattern finds what it should
    unknown = {name: where for name, where in variables.items() if name not in known}
    assert not unknown, f"not framehook settings: {unknown}"
