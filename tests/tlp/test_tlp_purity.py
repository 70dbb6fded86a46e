"""tlp/ is pure: no imports of hub or connectors, no I/O modules; its examples run."""

from __future__ import annotations

import ast
import doctest
import importlib
from pathlib import Path

import pytest

import tlp

PACKAGE = Path(tlp.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
FORBIDDEN_PROJECT = {"hub", "connectors"}
# Anything that reads or writes outside the process, or reaches the network, a database or a web
# framework. tlp decides on plain data only.
FORBIDDEN_IO = {
    "asyncio", "builtins", "glob", "http", "importlib", "io", "logging", "mmap", "os", "pathlib",
    "pickle", "requests", "shelve", "shutil", "socket", "sqlite3", "ssl", "subprocess", "sys",
    "tempfile", "urllib", "httpx", "sqlalchemy", "fastapi", "pydantic", "orjson", "pymisp",
    "stix2", "taxii2client", "misp_stix_converter",
}  # fmt: skip
FORBIDDEN_CALLS = {"open", "exec", "eval", "compile", "__import__", "input", "print"}


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import stays inside tlp
                continue
            names.add((node.module or "").split(".")[0])
    return names


def test_the_package_has_modules():
    assert {m.name for m in MODULES} >= {"__init__.py", "labels.py", "decide.py", "markings.py"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_project_or_io_imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    imported = _imports(tree)
    assert not imported & FORBIDDEN_PROJECT, f"{path.name} imports {imported & FORBIDDEN_PROJECT}"
    assert not imported & FORBIDDEN_IO, f"{path.name} imports {imported & FORBIDDEN_IO}"
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not calls & FORBIDDEN_CALLS, f"{path.name} calls {calls & FORBIDDEN_CALLS}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_docstring_examples_run(path):
    module = importlib.import_module("tlp" if path.stem == "__init__" else f"tlp.{path.stem}")
    assert module.__doc__, f"{path.name} has no module docstring"
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_public_api_is_documented_with_examples():
    doc = tlp.__doc__ or ""
    for name in ("decide", "filter_misp_event", "filter_stix_bundle", "parse_label"):
        assert f"{name}(" in doc, name
        assert getattr(tlp, name).__doc__, name
    assert len(set(tlp.__all__)) == len(tlp.__all__)
    assert all(hasattr(tlp, name) for name in tlp.__all__)
