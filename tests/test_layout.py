"""The distribution's layout: every package folder is shipped, and `operator/` keeps its own name."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _package_name(folder: Path) -> str:
    parts = folder.relative_to(ROOT).parts
    if parts[0] == "operator":
        parts = ("sekoia_intel_operator", *parts[1:])
    return ".".join(parts)


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    folders = {
        _package_name(init.parent)
        for top in ("operator", "connector_runtime", "testbed")
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert folders - listed == set(), "package folders missing from [tool.setuptools] packages"
    assert listed - folders == set(), "packages listed in pyproject.toml without a folder"
    assert config["package-dir"] == {"sekoia_intel_operator": "operator"}


def test_console_scripts_resolve() -> None:
    import importlib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for target in scripts.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), target
