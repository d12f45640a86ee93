"""A real node for the local control plane: containerd + runc + CNI bridge, kubelet and kube-proxy.

kwok only pretends Pods run; this node runs them. Everything it needs lives under one run
directory (containerd's root/state/socket, the kubelet's root, Pod logs, the CNI address store),
and every process is stopped by its id. What it cannot keep private is machine-wide by nature
and is named here so that :meth:`RealNode.stop` can undo it: one Linux bridge (``BRIDGE``) with
the Pods' gateway address, kube-proxy's and the kubelet's iptables chains, IPv4 forwarding (the
CNI bridge plugin turns it on), and the network namespaces that containerd pins under /run/netns
for the Pods it starts.

Needs root, cgroups (v1 hybrid works: ``failCgroupV1: false``) and Debian's containerd, runc and
containernetworking-plugins (see ``testbed/node/install-packages.sh``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from testbed.node.build import NodeArtifacts
from testbed.processes import ManagedProcess, free_port, wait_until

#: The Pods' bridge and network. The gateway address doubles as the host's address seen from Pods:
#: the API server and the emulators listen on it so that Pods reach them.
BRIDGE = os.environ.get("SIS_NODE_BRIDGE", "sis0")
POD_CIDR = os.environ.get("SIS_NODE_POD_CIDR", "10.244.0.0/24")
GATEWAY = os.environ.get("SIS_NODE_GATEWAY", "10.244.0.1")
NODE_NAME = "sis-node-0"
CNI_BIN_DIR = os.environ.get("SIS_CNI_BIN_DIR", "/usr/lib/cni")
_NETNS_DIR = Path("/run/netns")
_IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


class NodeUnavailable(RuntimeError):
    """This machine cannot run the real node (and the message says why)."""


def check_prerequisites() -> None:
    """Raise :class:`NodeUnavailable` naming what is missing for a real node on this machine."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root (containerd, runc and the kubelet need root)")
    for tool in ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "ip", "iptables"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} not found")
    for plugin in ("bridge", "host-local", "loopback"):
        if not os.access(Path(CNI_BIN_DIR) / plugin, os.X_OK):
            problems.append(f"CNI plugin {CNI_BIN_DIR}/{plugin} not found")
    if not Path("/sys/fs/cgroup/memory").is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        problems.append("no memory cgroup mounted")
    if problems:
        raise NodeUnavailable(
            "the real node cannot run here: "
            + "; ".join(problems)
            + " (install: bash testbed/node/install-packages.sh)"
        )


def prepare_bridge() -> None:
    """Create the Pods' bridge with the gateway address (before the API server binds to it)."""
    _run(["ip", "link", "del", BRIDGE], check=False)
    _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    prefix = POD_CIDR.split("/")[1]
    _run(["ip", "addr", "add", f"{GATEWAY}/{prefix}", "dev", BRIDGE])
    _run(["ip", "link", "set", BRIDGE, "up"])


@dataclass
class NodeCerts:
    """Client certificates the node's components authenticate with (issued by the test CA)."""

    kubelet_cert: Path
    kubelet_key: Path
    proxy_cert: Path
    proxy_key: Path


class RealNode:
    """containerd, kubelet and kube-proxy for one Node named ``NODE_NAME``."""

    def __init__(self, run_dir: Path, artifacts: NodeArtifacts) -> None:
        self.dir = run_dir
        self.artifacts = artifacts
        self.processes: dict[str, ManagedProcess] = {}
        self.socket = self.dir / "containerd" / "containerd.sock"
        #: Where the kubelet writes container logs (its ``podLogsDir``).
        self.pod_logs_dir = self.dir / "pod-logs"
        #: Seconds from starting containerd to the Node being Ready (set by LocalCluster).
        self.startup_seconds: float | None = None
        self._netns_before: set[str] = set()
        self._ip_forward_before: str | None = None

    # ----------------------------------------------------------------------------- lifecycle
    def start(self, server: str, ca_cert: Path, certs: NodeCerts, timeout: float = 180.0) -> None:
        """Bring containerd up, import the images, then start kubelet and kube-proxy and wait until
        the Node reports Ready. ``server`` is the API server's URL as seen from this host."""
        self._netns_before = _netns_names()
        self._ip_forward_before = _IP_FORWARD.read_text().strip() if _IP_FORWARD.exists() else None
        self._start_containerd(timeout)
        self._import_images()
        self._start_kubelet(server, ca_cert, certs)
        self._start_kube_proxy(server, ca_cert, certs)

    def stop(self) -> None:
        """Stop the kubelet and kube-proxy, kill every container, stop containerd, then undo the
        machine-wide changes (Pod network namespaces, mounts under the run directory, the bridge,
        kube-proxy's iptables chains)."""
        for name in ("kube-proxy", "kubelet"):
            if name in self.processes:
                self.processes[name].stop(timeout=10)
        if "containerd" in self.processes and self.processes["containerd"].alive():
            self._kill_all_containers()
        if "containerd" in self.processes:
            self.processes["containerd"].stop(timeout=10)
        for name in _netns_names() - self._netns_before:
            if name.startswith("cni-"):
                _run(["umount", str(_NETNS_DIR / name)], check=False)
                with contextlib.suppress(OSError):
                    (_NETNS_DIR / name).unlink()
        _unmount_below(self.dir)
        _run(["ip", "link", "del", BRIDGE], check=False)
        proxy = self.artifacts.bin_dir / "kube-proxy"
        if proxy.exists():
            _run([str(proxy), "--cleanup"], check=False)
        _remove_kubelet_chains()
        # The CNI bridge plugin (isGateway) turns IPv4 forwarding on for the whole machine.
        if self._ip_forward_before is not None:
            _IP_FORWARD.write_text(self._ip_forward_before + "\n")

    # ---------------------------------------------------------------------------- containerd
    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``ctr`` against this node's containerd, in the CRI namespace (k8s.io)."""
        return _run(["ctr", "--address", str(self.socket), "-n", "k8s.io", *args], check=check)

    def _start_containerd(self, timeout: float) -> None:
        base = self.dir / "containerd"
        net_dir = self.dir / "cni" / "net.d"
        net_dir.mkdir(parents=True, exist_ok=True)
        (net_dir / "10-sis.conflist").write_text(json.dumps(self._cni_config(), indent=1))
        config = "\n".join(
            [
                "version = 2",
                f'root = "{base / "root"}"',
                f'state = "{base / "state"}"',
                "[grpc]",
                f'  address = "{self.socket}"',
                "[ttrpc]",
                f'  address = "{base / "ttrpc.sock"}"',
                '[plugins."io.containerd.grpc.v1.cri"]',
                f'  sandbox_image = "{self.artifacts.pause_ref}"',
                "  enable_selinux = false",
                "  disable_apparmor = true",
                # This machine's root may not lower oom_score_adj (no CAP_SYS_RESOURCE over it):
                # the kubelet's -998 for sandboxes made runc fail ("failed to update
                # /proc/self/oom_score_adj: Permission denied"). Clamp to containerd's own value.
                "  restrict_oom_score_adj = true",
                '[plugins."io.containerd.grpc.v1.cri".containerd]',
                '  snapshotter = "overlayfs"',
                '  default_runtime_name = "runc"',
                '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
                '  runtime_type = "io.containerd.runc.v2"',
                '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
                "  SystemdCgroup = false",
                # A wrapper around runc (e.g. one adding --debug) while investigating a failure.
                *(
                    [f'  BinaryName = "{os.environ["SIS_RUNC_BINARY"]}"']
                    if os.environ.get("SIS_RUNC_BINARY")
                    else []
                ),
                '[plugins."io.containerd.grpc.v1.cri".cni]',
                f'  bin_dir = "{CNI_BIN_DIR}"',
                f'  conf_dir = "{net_dir}"',
                "",
            ]
        )
        base.mkdir(parents=True, exist_ok=True)
        (base / "config.toml").write_text(config)
        self._spawn("containerd", ["containerd", "--config", str(base / "config.toml")])
        wait_until(
            lambda: self.ctr("version", check=False).returncode == 0,
            timeout,
            "containerd to answer on its socket",
            on_timeout=self.logs_text,
        )

    def _cni_config(self) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": "sis-pods",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.dir / "cni" / "ipam"),
                    },
                }
            ],
        }

    def _import_images(self) -> None:
        # Unpacked for the CRI's snapshotter (overlayfs) on import: the kubelet finds them present
        # and never pulls (the images' tags are not :latest, so the pull policy is IfNotPresent).
        for archive in (self.artifacts.pause_archive, self.artifacts.image_archive):
            self.ctr("images", "import", "--snapshotter", "overlayfs", str(archive))

    def _kill_all_containers(self) -> None:
        tasks = self.ctr("tasks", "ls", "-q", check=False).stdout.split()
        for task in tasks:
            self.ctr("tasks", "kill", "-s", "SIGKILL", task, check=False)
        deadline = time.monotonic() + 10
        while tasks and time.monotonic() < deadline:
            time.sleep(0.2)
            tasks = [
                line.split()[0]
                for line in self.ctr("tasks", "ls", check=False).stdout.splitlines()[1:]
                if "RUNNING" in line
            ]
        for task in self.ctr("tasks", "ls", "-q", check=False).stdout.split():
            self.ctr("tasks", "delete", "-f", task, check=False)

    # ------------------------------------------------------------------------------- kubelet
    def _kubeconfig(self, name: str, server: str, ca_cert: Path, cert: Path, key: Path) -> Path:
        path = self.dir / f"{name}.kubeconfig"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "local", "cluster": {"server": server, "certificate-authority": str(ca_cert)}}
            ],
            "users": [{"name": name, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": name}}],
            "current-context": "local",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _start_kubelet(self, server: str, ca_cert: Path, certs: NodeCerts) -> None:
        root = self.dir / "kubelet"
        root.mkdir(parents=True, exist_ok=True)
        self.kubelet_port = free_port()
        self.kubelet_healthz_port = free_port()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # This machine mounts cgroup v1 (hybrid); Kubernetes 1.35 refuses v1 unless told.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "address": GATEWAY,
            "port": self.kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": self.kubelet_healthz_port,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(ca_cert)},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "podCIDR": POD_CIDR,
            "clusterDomain": "cluster.local",
            "resolvConf": "/etc/resolv.conf",
            "failSwapOn": False,
            "podLogsDir": str(self.pod_logs_dir),
            "volumePluginDir": str(self.dir / "volume-plugins"),
            # The images are imported, never pulled: nothing may garbage-collect them during a run.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "serializeImagePulls": False,
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "registerNode": True,
            "nodeStatusUpdateFrequency": "5s",
            "syncFrequency": "10s",
            "fileCheckFrequency": "10s",
            "maxPods": 50,
        }
        config_path = self.dir / "kubelet-config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        kubeconfig = self._kubeconfig("kubelet", server, ca_cert, certs.kubelet_cert, certs.kubelet_key)
        self._spawn(
            "kubelet",
            [
                str(self.artifacts.bin_dir / "kubelet"),
                f"--config={config_path}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={root}",
                f"--cert-dir={self.dir / 'kubelet-pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={GATEWAY}",
                "--node-labels=type=real",
                "--v=1",
            ],
        )

    def _start_kube_proxy(self, server: str, ca_cert: Path, certs: NodeCerts) -> None:
        kubeconfig = self._kubeconfig("kube-proxy", server, ca_cert, certs.proxy_cert, certs.proxy_key)
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "mode": "iptables",
            "clusterCIDR": POD_CIDR,
            "hostnameOverride": NODE_NAME,
            "bindAddress": GATEWAY,
            "healthzBindAddress": f"127.0.0.1:{free_port()}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            # Leave the machine's conntrack sysctls alone.
            "conntrack": {"maxPerCore": 0, "min": 0},
        }
        path = self.dir / "kube-proxy-config.yaml"
        path.write_text(yaml.safe_dump(config))
        self._spawn("kube-proxy", [str(self.artifacts.bin_dir / "kube-proxy"), f"--config={path}", "--v=1"])

    # --------------------------------------------------------------------------------- utils
    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.dir / "logs" / f"{name}.log").start()
        self.processes[name] = proc
        return proc

    def logs_text(self, max_chars: int = 3000) -> str:
        """Tails of the node components' logs, for failure reports."""
        parts = []
        for name, proc in self.processes.items():
            state = "running" if proc.alive() else "EXITED"
            parts.append(f"----- {name} ({state}) -----\n{proc.log_tail(max_chars)}")
        return "\n".join(parts)


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done


def _remove_kubelet_chains() -> None:
    """What the kubelet adds to iptables and kube-proxy --cleanup leaves: its canary chains (used
    to notice a flush), the hint chain, and KUBE-FIREWALL (drops non-local traffic to 127.0.0.0/8)
    with its jumps from INPUT and OUTPUT."""
    for table in ("nat", "filter", "mangle"):
        _run(["iptables", "-t", table, "-X", "KUBE-KUBELET-CANARY"], check=False)
    for chain in ("INPUT", "OUTPUT"):
        _run(["iptables", "-D", chain, "-j", "KUBE-FIREWALL"], check=False)
    _run(["iptables", "-F", "KUBE-FIREWALL"], check=False)
    _run(["iptables", "-X", "KUBE-FIREWALL"], check=False)
    _run(["iptables", "-t", "mangle", "-X", "KUBE-IPTABLES-HINT"], check=False)


def _netns_names() -> set[str]:
    try:
        return {p.name for p in _NETNS_DIR.iterdir()}
    except FileNotFoundError:
        return set()


def _unmount_below(directory: Path) -> None:
    """Unmount whatever the kubelet and containerd left mounted under ``directory`` (deepest first)."""
    prefix = str(directory.resolve()) + "/"
    mounts = []
    with open("/proc/self/mounts") as table:
        for line in table:
            target = line.split()[1].replace("\\040", " ")
            if target.startswith(prefix):
                mounts.append(target)
    for target in sorted(set(mounts), key=len, reverse=True):
        _run(["umount", "-l", target], check=False)
