"""The project's shape: import direction between and inside packages, explicit public APIs,
typed packages, modules small enough to read."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("receiver", "handlers", "storage")
# Each package may import only the packages after it: receiver → handlers → storage.
ALLOWED = {
    "receiver": {"receiver", "handlers", "storage"},
    "handlers": {"handlers", "storage"},
    "storage": {"storage"},
}


def _modules_imported(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports, at any depth of its code."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _modules_imported(path)}


def _receiver_parts(path: Path) -> set[str]:
    """The parts of ``receiver`` that ``path`` imports (``receiver.intake.recorder``: intake)."""
    return {
        name.split(".")[1]
        for name in _modules_imported(path)
        if name.startswith("receiver.") and name.count(".") >= 1
    }


def _python_files(*parts: str) -> list[Path]:
    return sorted(ROOT.joinpath(*parts).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_flow_receiver_handlers_storage(package: str) -> None:
    """No module imports a package upstream of its own (storage ↛ handlers ↛ receiver)."""
    offenders = []
    for path in (ROOT / package).rglob("*.py"):
        bad = (_imports(path) & set(PACKAGES)) - ALLOWED[package]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offenders == []


@pytest.mark.parametrize("package", PACKAGES)
def test_public_names_are_exported_sorted_and_importable(package: str) -> None:
    """Each package's __all__ is sorted as ruff's RUF022 sorts it (constants, then classes,
    then functions), unique, and every name in it exists."""
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert names == sorted(names, key=lambda n: (0 if n.isupper() else int(n[0].islower()) + 1, n))
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(module, name), name


@pytest.mark.parametrize("package", ["receiver", "handlers"])
def test_no_public_class_or_function_is_forgotten_in_all(package: str) -> None:
    """Every public class and function re-exported by the package's __init__ is in __all__."""
    module = importlib.import_module(package)
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and callable(value)
        and getattr(value, "__module__", "").startswith(package)
    }
    assert public <= set(module.__all__)


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_ship_py_typed(package: str) -> None:
    """py.typed marks each package as typed for customers' type checkers."""
    assert (ROOT / package / "py.typed").is_file()


# Inside ``receiver``: each stage may import only the stages below it. ``apiframe`` is pure (what
# Apiframe sends and serves), ``db`` is the bottom of everything stateful, and the developer
# tools in ``dev`` are reached only through the CLI.
RECEIVER_RULES = {
    "apiframe": {"apiframe", "errors", "retry"},
    "db": {"db", "apiframe", "errors", "logs", "settings", "retry"},
}


@pytest.mark.parametrize("stage", sorted(RECEIVER_RULES))
def test_receiver_stages_import_only_what_lies_below_them(stage: str) -> None:
    """receiver.apiframe touches no database code, and receiver.db imports no stage above it."""
    offenders = []
    for path in _python_files("receiver", stage):
        if "migrations" in path.parts:
            continue
        bad = _receiver_parts(path) - RECEIVER_RULES[stage]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports receiver.{sorted(bad)}")
    assert offenders == []


def test_hot_path_sql_builds_rows_not_handler_events() -> None:
    """receiver.db.sql imports nothing from handlers: it returns rows; the queue makes events."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in _python_files("receiver", "db", "sql")
        if "handlers" in _imports(path)
    ]
    assert offenders == []


def test_only_the_cli_reaches_the_developer_tools() -> None:
    """receiver.dev (fake Apiframe, demo, simulate) is imported only by receiver.cli, by itself,
    and by the one-line shim that keeps ``receiver.fakeapi`` working: the service never loads it."""
    allowed = {ROOT / "receiver" / "fakeapi.py"}
    offenders = [
        str(path.relative_to(ROOT))
        for path in _python_files("receiver")
        if "dev" in _receiver_parts(path)
        and path not in allowed
        and not path.is_relative_to(ROOT / "receiver" / "cli")
        and not path.is_relative_to(ROOT / "receiver" / "dev")
    ]
    assert offenders == []


def test_the_receiver_top_level_shows_stages_not_a_flat_list() -> None:
    """At most 15 modules sit at receiver/'s top level; everything else lives in its stage."""
    top = sorted(p.name for p in (ROOT / "receiver").glob("*.py"))
    assert len(top) <= 15, top


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_500_lines(package: str) -> None:
    """Modules stay readable: one concept each, none over 500 lines (migrations excepted)."""
    long = {
        str(path.relative_to(ROOT)): length
        for path in _python_files(package)
        if "migrations" not in path.parts and (length := len(path.read_text().splitlines())) > 500
    }
    assert long == {}


def test_the_fake_apiframes_first_documented_path_still_works() -> None:
    """``receiver.fakeapi.create_fake_apiframe``, documented before the fake moved to
    ``receiver.dev``, is the same function, with the same public names beside it."""
    import receiver.dev.fakeapi as canonical
    import receiver.fakeapi as shim

    assert shim.create_fake_apiframe is canonical.create_fake_apiframe
    assert shim.__all__ == canonical.__all__
