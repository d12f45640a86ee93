"""`make demo`'s scenario, run the way `make demo < /dev/null` runs it: a subprocess without a terminal.

The demo brings up its own control plane, emulators, operator and runtime, so these tests do not
use the session's cluster fixture; they are marked ``cluster`` because they need its binaries.
One run is on the real node (kubelet + containerd + runc, marked ``real_node``); the others run the
kubelet stand-in, as on a machine that cannot run a real node (``SIS_REAL_NODE=0``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from connector_runtime.conversion import convert_indicator
from testbed.node.realnode import BRIDGE
from testbed.processes import wait_until

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
DATA_FILE = ROOT / "testbed" / "data" / "sekoia-apt31-indicators.jsonl"
COMMON = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
EMULATORS_AND_OPERATOR = {"opencti-emulator", "sekoia-emulator", "operator"}
STAND_IN_COMPONENTS = COMMON | EMULATORS_AND_OPERATOR | {"kwok", "connector-runtime"}
REAL_NODE_COMPONENTS = COMMON | EMULATORS_AND_OPERATOR | {"containerd", "kubelet", "kube-proxy"}
STAND_IN_ENV = {**os.environ, "SIS_REAL_NODE": "0"}
STAND_IN_LINE = "LOCAL STAND-IN FOR A KUBELET — because SIS_REAL_NODE=0 asked for it"
# What the demo shows whichever node runs the runtime.
SHOWN = (
    "secretKeyRef sis-credentials/sekoia-api-key",
    "$ kubectl -n intel get sekoiaintelsyncs -o wide",
    "CollectionClaimed",
    "Sharing guardrail: the TLP:RED indicators stay in OpenCTI",
    'sis_values_skipped_total{reason="marking-not-allowed"} = 2.0',
    "status.budget (its share of the Sekoia host's budget",
    "requestsPerSecond: 3\n",  # the demo sync's own spec.push ceiling, within the budget of 5
    "revoked",
    "Resync on demand: empty the collection by hand, ask for a resync in the spec",
    "the operator rolled the runtime: RUNTIME_RESYNC_FROM / RUNTIME_RESYNC_TOKEN in its Pod",
    "runtime metric sis_resync_in_progress = 0.0",
    "all stopped.",
)


def _demo(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-P", "-m", "testbed.demo", "--run-dir", str(run_dir), *extra]


def _run_demo(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """One whole demo without a terminal; its output and its JSON report."""
    run_dir, report = tmp_path / "run", tmp_path / "report.json"
    done = subprocess.run(
        _demo(run_dir, "--report", str(report)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    return done, json.loads(report.read_text())


def _expected_values() -> set[str]:
    """Computed here from the data file, independently of the demo's own expectation."""
    indicators = [json.loads(line) for line in DATA_FILE.read_text().splitlines() if line.strip()]
    return {v.value for ind in indicators for v in convert_indicator(ind).values}


def _process_table(run_dir: Path) -> list[dict[str, Any]]:
    return list(json.loads((run_dir / "processes.json").read_text()))


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _assert_nothing_left(run_dir: Path, components: set[str]) -> None:
    table = _process_table(run_dir)
    assert {row["name"] for row in table} >= components
    left = [row for row in table if _running(row["pid"])]
    assert left == [], f"processes left running: {left}"
    # Nothing else that names the run directory either (a grandchild the table would not list).
    strays = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(run_dir).encode() in cmdline.read_bytes():
                strays.append(cmdline.parent.name)
        except OSError:
            continue
    assert strays == [], f"stray processes mention {run_dir}: {strays}"


def _assert_outcome(outcome: dict[str, Any], out: str) -> None:
    """The demo's promises, whichever node ran the runtime."""
    every = _expected_values()
    # Two indicators are marked TLP:RED: their values stay out, everything else goes in.
    refused = set(outcome["refused_values"])
    assert len(every) == 107 and len(refused) == 2 and refused <= every
    expected = every - refused
    assert set(outcome["expected"]) == expected
    assert not refused & (set(outcome["active"]) | set(outcome["revoked"])), "TLP:RED values reached Sekoia"
    deleted = set(outcome["deleted_values"])
    assert len(deleted) >= 3
    assert set(outcome["active"]) == expected - deleted, "every pushable value not deleted is active"
    assert deleted <= set(outcome["revoked"]), "the deleted indicators are revoked in Sekoia"

    conditions = {c["type"]: c for c in outcome["conditions"]}
    assert conditions["Ready"]["status"] == "True" and conditions["Ready"]["reason"] == "Synchronizing"
    assert conditions["Stalled"]["status"] == "False"
    progress = outcome["progress"]  # written by the runtime under its own ServiceAccount
    # The last report comes from the runtime the resync rolled: its counters start again at zero,
    # and it pushes what is active (the deleted indicators' revocations were the first runtime's).
    assert progress["valuesPushed"] >= len(expected - deleted)
    assert progress["pendingEvents"] == 0
    resync = outcome["resync"]  # the collection was emptied by hand, then refilled by a resync
    assert resync["state"] == "Completed" and resync["token"] == "demo-refill-1" and resync["endedAt"]
    identity = outcome["runtime_identity"]
    assert "status: yes" in identity and "get secrets: no" in identity

    for text in (*SHOWN, f"{len(expected)}/{len(expected)} values in the collection"):
        assert text in out, f"{text!r} missing from the demo's output"
    # The credentials only travel through the Secret: never printed.
    assert "demo-sekoia-" not in out and "demo-opencti-" not in out


def test_demo_syncs_the_data_set_and_revokes_deleted_indicators(tmp_path: Path) -> None:
    """The kubelet stand-in, as on a machine that cannot run the real node: it says so and why."""
    done, outcome = _run_demo(tmp_path, STAND_IN_ENV)
    _assert_outcome(outcome, done.stdout)
    assert outcome["node"] == "stand-in" and outcome["node_reason"] == "SIS_REAL_NODE=0 asked for it"
    for text in (STAND_IN_LINE, "LOCAL STAND-IN FOR A KUBELET: run the runtime Pod", "RUNTIME_HTTP_PORT="):
        assert text in done.stdout, f"{text!r} missing from the demo's output"
    assert "real node: kubelet" not in done.stdout
    _assert_nothing_left(tmp_path / "run", STAND_IN_COMPONENTS)


@pytest.mark.real_node
def test_demo_runs_the_runtime_pod_on_the_real_node(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Where the machine can (root, the node packages): the kubelet runs the operator's Pod from the
    image built here, and the resync's roll is the kubelet's, not the demo's."""
    # A short directory: containerd's socket lives below it, and unix socket paths are short.
    tmp_path = tmp_path_factory.mktemp("demo")
    done, outcome = _run_demo(tmp_path, {**os.environ, "SIS_REAL_NODE": "1"})
    out = done.stdout
    _assert_outcome(outcome, out)
    assert outcome["node"] == "real" and outcome["node_reason"] == ""
    assert "LOCAL STAND-IN" not in out, out[:3000]
    for text in (
        "real node: kubelet v1.",
        " + containerd ",
        " + runc ",
        "Real node: the kubelet runs the runtime Pod the operator wrote",
        "namespace/intel enforces the restricted Pod Security profile",
        "(resolved by the kubelet)",
    ):
        assert text in out, f"{text!r} missing from the demo's output"
    # The first Pod and the one the resync rolled, each seen from the host as its context says.
    pods = outcome["runtime_pods"]
    assert len(pods) == 2 and pods[0]["name"] != pods[1]["name"]
    for pod in pods:
        assert pod["image"].startswith("localhost/sekoia-intel-sync:")
        assert pod["uid"] == "10001" and pod["rootMount"] == "ro" and int(pod["capEff"], 16) == 0
    _assert_nothing_left(tmp_path / "run", REAL_NODE_COMPONENTS)
    assert not any(_running(pod["hostPid"]) for pod in pods), "a runtime container outlived the demo"
    assert not Path("/sys/class/net", BRIDGE).exists(), "the Pod bridge outlived the demo"


def _exit_report(proc: subprocess.Popen[str]) -> str:
    """Why a demo that should still be running is not: its exit status and the end of its output."""
    if proc.poll() is None:
        return ""
    out = proc.stdout.read() if proc.stdout else ""
    return f"demo exited with {proc.returncode}:\n{out[-4000:]}"


def test_interrupting_a_kept_demo_midway_stops_everything(tmp_path: Path) -> None:
    """Ctrl-C while the runtime has just started (as in `make demo KEEP=1`): exit 130, nothing left."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        _demo(run_dir, "--keep"),
        env=STAND_IN_ENV,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    try:
        wait_until(
            lambda: any(row["name"] == "connector-runtime" for row in _process_table(run_dir)),
            240,
            "the demo to start the runtime",
            on_timeout=lambda: _exit_report(proc),
        )
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, out[-3000:]
    assert "interrupted" in out and "all stopped." in out
    assert time.monotonic() - began < 60
    _assert_nothing_left(run_dir, STAND_IN_COMPONENTS)
