"""Shared fixtures: one real control plane per test session, a fresh namespace per test.

The cluster is started lazily (only by tests that ask for it). When it cannot be built or does
not come up, the tests that need it fail with the reason; they never skip.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.controlplane.cluster import LocalCluster
from testbed.processes import wait_until


def _interrupt(*_: object) -> None:
    # SIGTERM (a CI time-out, a killed run) would otherwise skip fixture teardown and leave the
    # control plane's processes running; pytest tears everything down on KeyboardInterrupt.
    raise KeyboardInterrupt


signal.signal(signal.SIGTERM, _interrupt)

# pycti and requests honour proxy variables even for loopback.
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

_CLUSTER: LocalCluster | None = None
_CLUSTER_ERROR: BaseException | None = None


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """The session's local Kubernetes control plane (started on first use)."""
    global _CLUSTER, _CLUSTER_ERROR
    if _CLUSTER_ERROR is not None:
        pytest.fail(f"the local control plane did not come up: {_CLUSTER_ERROR}")
    run_dir = os.environ.get("SIS_CLUSTER_RUN_DIR")
    instance = LocalCluster(run_dir=Path(run_dir) if run_dir else None)
    try:
        instance.start()
    except BaseException as exc:
        _CLUSTER_ERROR = exc
        raise
    _CLUSTER = instance
    print(f"\nlocal control plane up in {instance.startup_seconds:.1f}s at {instance.server}")
    try:
        yield instance
    finally:
        _CLUSTER = None
        instance.cleanup()


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace (with its default ServiceAccount), deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.kubectl("create", "namespace", name)
    wait_until(
        lambda: cluster.kubectl("-n", name, "get", "serviceaccount", "default", check=False).returncode == 0,
        60,
        f"the default ServiceAccount in {name}",
    )
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the control plane's component logs to the report of a failing cluster test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and _CLUSTER is not None and "cluster" in getattr(item, "fixturenames", ()):
        dead = _CLUSTER.dead_components()
        header = f"dead components: {', '.join(dead)}\n" if dead else ""
        report.sections.append(("control plane logs", header + _CLUSTER.logs_text(2000)))


_LEFT_OUT: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``SIS_REAL_NODE=0`` (a machine that must not get system packages or cannot run containers):
    the tests marked ``real_node`` are deselected, and the run says which (never a silent skip)."""
    if os.environ.get("SIS_REAL_NODE", "1") != "0":
        return
    left = [item for item in items if item.get_closest_marker("real_node")]
    if not left:
        return
    _LEFT_OUT[:] = [item.nodeid for item in left]
    config.hook.pytest_deselected(items=left)
    items[:] = [item for item in items if item not in left]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name what ``SIS_REAL_NODE=0`` left out, at the end of the run where it is seen."""
    if _LEFT_OUT:
        terminalreporter.write_sep("=", "left out by SIS_REAL_NODE=0 (the image is not built, no Pod runs)")
        for nodeid in _LEFT_OUT:
            terminalreporter.write_line(f"NOT RUN: {nodeid}")
