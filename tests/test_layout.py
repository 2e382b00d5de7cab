"""The project's shape: import direction, explicit public APIs, typed packages."""

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


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


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
    """Each package's __all__ is sorted, unique, and every name in it exists."""
    module = importlib.import_module(package)
    names = list(module.__all__)
    assert names == sorted(names)
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
