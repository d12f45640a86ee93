"""The distributions' layout: the product (pyproject.toml) ships operator/ and connector_runtime/, the
development test bed (testbed/pyproject.toml) ships testbed/, and `operator/` keeps its own name."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _package_name(folder: Path) -> str:
    parts = folder.relative_to(ROOT).parts
    if parts[0] == "operator":
        parts = ("sekoia_intel_operator", *parts[1:])
    return ".".join(parts)


def _folders(*tops: str) -> set[str]:
    return {
        _package_name(init.parent)
        for top in tops
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


@pytest.mark.parametrize(
    ("pyproject", "tops", "package_dir"),
    [
        ("pyproject.toml", ("operator", "connector_runtime"), {"sekoia_intel_operator": "operator"}),
        ("testbed/pyproject.toml", ("testbed",), {"testbed": "."}),
    ],
)
def test_every_package_folder_is_listed_in_its_pyproject(
    pyproject: str, tops: tuple[str, ...], package_dir: dict[str, str]
) -> None:
    config = tomllib.loads((ROOT / pyproject).read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    folders = _folders(*tops)
    assert folders - listed == set(), f"package folders missing from {pyproject} [tool.setuptools] packages"
    assert listed - folders == set(), f"packages listed in {pyproject} without a folder"
    assert config["package-dir"] == package_dir


def test_the_product_lists_no_test_bed() -> None:
    product = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert not [p for p in product["tool"]["setuptools"]["packages"] if p.split(".")[0] == "testbed"]
    assert sorted(product["project"]["scripts"]) == ["connector-runtime", "sekoia-intel-operator"]
    assert "package-data" not in product["tool"]["setuptools"]


@pytest.mark.parametrize("pyproject", ["pyproject.toml", "testbed/pyproject.toml"])
def test_console_scripts_resolve(pyproject: str) -> None:
    import importlib

    scripts = tomllib.loads((ROOT / pyproject).read_text())["project"]["scripts"]
    for target in scripts.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), target
