"""Everything the demo starts, in one place: the control plane, the CRD, the operator, and every
other child process, so that teardown can stop each of them by process id, in reverse start order.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from testbed.controlplane.cluster import LocalCluster
from testbed.manifests import LOCAL_POLICY_FLAGS
from testbed.processes import ManagedProcess, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "deploy" / "crds" / "sekoiaintelsyncs.yaml"
CRD_NAME = "sekoiaintelsyncs.sync.sekoia-intel.dev"
# Unix socket paths are limited (108 bytes on Linux, 104 where containerd checks them).
MAX_SOCKET_PATH = 104


def console_script(name: str, module: str) -> list[str]:
    """argv of one of this installation's console scripts (next to the running interpreter)."""
    script = shutil.which(name, path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-P", "-m", module]


class Stack:
    """The demo's processes. ``stop()`` is safe to call at any moment, any number of times."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.log_dir = run_dir / "logs"
        self.cluster: LocalCluster | None = None
        self._processes: list[ManagedProcess] = []
        self._retired: list[ManagedProcess] = []

    # ------------------------------------------------------------------ control plane
    def start_cluster(self, real_node: bool = False) -> LocalCluster:
        """etcd, kube-apiserver, controller-manager, scheduler, and either kwok (a fake node's
        kubelet) or, with ``real_node``, containerd + kubelet + kube-proxy running Pods for real."""
        cluster_dir = self.run_dir / "cluster"
        cluster_dir.mkdir(parents=True, exist_ok=True)  # LocalCluster only creates directories it names
        socket = cluster_dir / "node" / "containerd" / "containerd.sock"
        if real_node and len(str(socket)) > MAX_SOCKET_PATH:
            raise RuntimeError(
                f"the run directory {self.run_dir} is too long for the real node: containerd's socket "
                f"{socket} would exceed {MAX_SOCKET_PATH} characters (choose a shorter --run-dir)"
            )
        self.cluster = LocalCluster(run_dir=cluster_dir, node="real" if real_node else "kwok")
        try:
            # A real node's first start may build its binaries and the image (minutes, cached after).
            self.cluster.start(timeout=300 if real_node else 120)
        finally:
            # Recorded even on failure: start() stops what it started, but the table shows it.
            self.write_process_table()
        return self.cluster

    def install_crd(self) -> None:
        """Apply the CRD and wait until the API server serves it."""
        cluster = self.require_cluster()
        cluster.kubectl("apply", "--server-side", "-f", str(CRD))
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")

    def start_operator(self, claims_namespace: str, extra_args: Sequence[str] = ()) -> ManagedProcess:
        """The operator as a local process with the admin kubeconfig, serving every namespace;
        ``extra_args`` are further command-line options (a runtime image, wider URL policies)."""
        cluster = self.require_cluster()
        liveness = free_port()
        argv = [
            *console_script("sekoia-intel-operator", "sekoia_intel_operator.cli"),
            "--claims-namespace",
            claims_namespace,
            "--standalone",
            "--liveness-port",
            str(liveness),
            "--metrics-port",
            str(free_port()),
            "--bind-address",
            "127.0.0.1",
            *LOCAL_POLICY_FLAGS,
            *extra_args,
        ]
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "NO_PROXY": "127.0.0.1,localhost"}
        proc = self.track(ManagedProcess("operator", argv, self.log_dir / "operator.log", env=env).start())

        def alive() -> bool:
            if not proc.alive():
                raise RuntimeError(f"the operator exited: {proc.log_tail(600).strip().splitlines()[-1:]}")
            with urllib.request.urlopen(f"http://127.0.0.1:{liveness}/healthz", timeout=2) as resp:
                return bool(resp.status == 200)

        wait_until(alive, 60, "the operator's liveness endpoint", on_timeout=lambda: proc.log_tail(2000))
        return proc

    def require_cluster(self) -> LocalCluster:
        if self.cluster is None:
            raise RuntimeError("the control plane is not started")
        return self.cluster

    # ------------------------------------------------------------------ processes
    def track(self, proc: ManagedProcess) -> ManagedProcess:
        """Remember a started process so that ``stop()`` stops it."""
        self._processes.append(proc)
        self.write_process_table()
        return proc

    def retire(self, proc: ManagedProcess) -> None:
        """Stop a tracked process on purpose (a Pod replaced by a roll-out): it stays in the
        process table but no longer counts as having died."""
        proc.stop(timeout=10)
        self._processes.remove(proc)
        self._retired.append(proc)
        self.write_process_table()

    def process_table(self) -> list[dict[str, Any]]:
        """Every process started so far: name, pid, whether it runs, and its log."""
        procs = list(self.cluster.all_processes().values()) if self.cluster else []
        procs += self._retired
        procs += self._processes
        return [
            {"name": p.name, "pid": p.pid, "alive": p.alive(), "log": str(p.log_path)}
            for p in procs
            if p.popen is not None
        ]

    def write_process_table(self) -> None:
        """Keep ``processes.json`` in the run directory current (what is running, where it logs)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "processes.json").write_text(json.dumps(self.process_table(), indent=1))

    def dead(self) -> list[str]:
        """Names of processes that exited although nobody stopped them."""
        retired = {p.pid for p in self._retired}
        return [row["name"] for row in self.process_table() if not row["alive"] and row["pid"] not in retired]

    def stop(self) -> None:
        """Stop every process, newest first (the runtime before the operator before the emulators),
        then the control plane. SIGTERM first, SIGKILL after a grace period, each by process id."""
        for proc in reversed(self._processes):
            proc.stop(timeout=10)
        if self.cluster is not None:
            self.cluster.stop()
        self.write_process_table()
