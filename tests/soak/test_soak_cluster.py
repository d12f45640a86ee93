"""A short soak on the real control plane: the same code path as `make soak`, with a few thousand
events and the faults that touch Kubernetes, so that the soak itself cannot rot between runs.

It runs twice: with the runtime Pods on the real node (the kubelet restarts the SIGKILLed container
and does the rollout), and with the local stand-in `make soak` falls back to where no real node can
run (SIS_REAL_NODE=0 leaves the first out and says so)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.demo.node import NodeChoice
from testbed.soak.faults import Fault
from testbed.soak.report import render
from testbed.soak.runtimes import ROLLOUT
from testbed.soak.scenario import Soak, SoakSettings, run_and_stop

pytestmark = pytest.mark.cluster

SHORT_SCHEDULE = (
    Fault(0.10, "sekoia-429-storm-with-retry-after", hold=3),
    Fault(0.25, "runtime-sigkill"),
    # Between the kill and the rotation: the harness tells a rollout from a crash by which comes first.
    Fault(0.27, "sekoia-url-redirects", hold=8),
    Fault(0.40, "secret-rotated"),
    Fault(0.60, "kube-apiserver-restart"),
    Fault(0.80, "operator-sigkill"),
    Fault(0.90, "opencti-disconnect"),
)
RUNTIME_LIMIT_BYTES = 512 * 1024 * 1024  # the runtime Deployment's memory limit


@pytest.fixture
def short_run_dir() -> Iterator[Path]:
    """A short directory: containerd's socket path under it must stay below 104 characters."""
    path = Path(tempfile.mkdtemp(prefix="soak-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize(
    "real",
    [pytest.param(True, id="real-node", marks=pytest.mark.real_node), pytest.param(False, id="stand-in")],
)
def test_short_soak_loses_nothing(short_run_dir: Path, real: bool) -> None:
    settings = SoakSettings(events=2_000, stream_seconds=40, drain_seconds=240, schedule=SHORT_SCHEDULE)
    node = None if real else NodeChoice(False, "this test covers the fallback")
    result = run_and_stop(Soak(short_run_dir, settings, node=node))
    report = render(result)
    assert result.passed, f"{report}\nlogs: {short_run_dir / 'logs'}"
    assert [f.kind for f in result.faults] == [f.kind for f in SHORT_SCHEDULE]
    assert result.runtime_starts >= 3  # first start, after the SIGKILL, after the rotation's rollout
    assert result.runtime_ends.get(ROLLOUT, 0) >= 1, report
    assert result.verdict is not None and result.verdict.rejected_expected > 0
    if real:
        assert result.runtime_where.startswith("real node: kubelet v1.35.4"), report
        # The SIGKILL as the kubelet saw it: exit 137, and a restart in the same Pod.
        assert any("code 137" in reason for reason in result.runtime_ends), report
        memory = result.runtime_memory
        assert memory["limit_bytes"] == RUNTIME_LIMIT_BYTES, report
        assert 0 < memory["peak_bytes"] < memory["limit_bytes"], report
    else:
        assert result.runtime_where.startswith("LOCAL STAND-IN FOR A KUBELET"), report
        assert result.runtime_memory == {}
