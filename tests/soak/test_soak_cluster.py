"""A short soak on the real control plane: the same code path as `make soak`, with a few thousand
events and the faults that touch Kubernetes, so that the soak itself cannot rot between runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.soak.faults import Fault
from testbed.soak.report import render
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


def test_short_soak_loses_nothing(tmp_path: Path) -> None:
    settings = SoakSettings(events=2_000, stream_seconds=40, drain_seconds=240, schedule=SHORT_SCHEDULE)
    result = run_and_stop(Soak(tmp_path, settings))
    report = render(result)
    assert result.passed, f"{report}\nlogs: {tmp_path / 'logs'}"
    assert [f.kind for f in result.faults] == [f.kind for f in SHORT_SCHEDULE]
    assert result.runtime_starts >= 3  # first start, after the SIGKILL, after the rotation's rollout
    assert result.verdict is not None and result.verdict.rejected_expected > 0
