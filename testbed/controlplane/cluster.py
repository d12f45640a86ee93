"""A real Kubernetes control plane on loopback, the way controller-runtime's envtest runs one.

etcd, kube-apiserver (TLS, RBAC, Pod Security admission), kube-controller-manager (garbage
collection, Deployment -> ReplicaSet -> Pod, service accounts), kube-scheduler and kwok (which
plays the kubelet of one fake Node, so scheduled Pods become Running) run as local processes on
free ports. Everything is stopped by process id; every component's log is kept in the run
directory so that a failing test can show it.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from testbed.controlplane.binaries import ensure_binaries
from testbed.controlplane.certs import Pki, issue_client, make_pki
from testbed.processes import ManagedProcess, free_port, wait_until

FAKE_NODE = "kwok-node-0"
SERVICE_CIDR = "10.0.0.0/24"
#: ``node=`` choices: kwok fakes a node (Pods are Running, nothing runs); "real" runs containerd,
#: kubelet and kube-proxy (testbed/node) so that Pods run for real.
NODE_KINDS = ("kwok", "real")


#: Client-side API rate of the controller-manager and the scheduler (see `_start_controller_manager`).
_CLIENT_RATE_FLAGS = ("--kube-api-qps=100", "--kube-api-burst=100")


class LocalCluster:
    """Start with :meth:`start`, stop with :meth:`stop` (or use it as a context manager)."""

    def __init__(self, run_dir: Path | None = None, bin_dir: Path | None = None, node: str = "kwok") -> None:
        if node not in NODE_KINDS:
            raise ValueError(f"node must be one of {', '.join(NODE_KINDS)}, not {node!r}")
        self.node_kind = node
        self.real_node: Any = None  # testbed.node.realnode.RealNode when node == "real"
        self.node_artifacts: Any = None  # testbed.node.build.NodeArtifacts when node == "real"
        self._own_run_dir = run_dir is None
        self.run_dir = Path(run_dir or tempfile.mkdtemp(prefix="sis-cluster-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.bin_dir = bin_dir
        self.processes: dict[str, ManagedProcess] = {}
        self.server = ""
        self.kubeconfig = self.run_dir / "kubeconfig"
        self.pki: Pki | None = None
        self.startup_seconds: float | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 120.0) -> LocalCluster:
        """Build or reuse the binaries, then bring every component up and wait until usable."""
        if self.bin_dir is None:
            self.bin_dir = ensure_binaries(self.run_dir / "build.log")
        if self.node_kind == "real":
            from testbed.node.build import ensure_node_artifacts
            from testbed.node.realnode import check_prerequisites

            check_prerequisites()
            self.node_artifacts = ensure_node_artifacts(self.run_dir / "node-build.log")
        began = time.monotonic()
        try:
            if self.node_kind == "real":
                from testbed.node.realnode import GATEWAY, prepare_bridge

                prepare_bridge()
                self.pki = make_pki(self.run_dir / "pki", extra_server_names=(GATEWAY,))
            else:
                self.pki = make_pki(self.run_dir / "pki")
            self._start_etcd(timeout)
            self._start_apiserver(timeout)
            self._write_admin_kubeconfig()
            self._start_controller_manager()
            self._start_scheduler()
            if self.node_kind == "real":
                self._start_real_node(timeout)
            else:
                self._start_kwok()
                self._create_fake_node()
            wait_until(
                self._default_service_account_exists,
                timeout,
                "the controller-manager to create the default ServiceAccount",
                on_timeout=self.logs_text,
            )
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop every component (reverse start order) by process id; a real node first, with
        everything it runs."""
        if self.real_node is not None:
            self.real_node.stop()
        for proc in reversed(list(self.processes.values())):
            proc.stop(timeout=10)

    def restart_apiserver(self, down_seconds: float = 0.0, timeout: float = 60.0) -> float:
        """Stop kube-apiserver (SIGTERM; SIGKILL after 3 s, since it would otherwise wait up to 60 s
        for open watches to end), keep it down for ``down_seconds``, start it again on the same
        port with the same flags and wait for /readyz; returns the seconds it was unreachable.

        Every client (operator, runtime, controller-manager, kwok) sees its connections cut and its
        watches end, as during a control-plane upgrade."""
        proc = self.processes["kube-apiserver"]
        began = time.monotonic()
        proc.stop(timeout=3)
        time.sleep(down_seconds)
        proc.start()
        wait_until(
            lambda: self._api_get("/readyz") == "ok",
            timeout,
            "kube-apiserver /readyz after a restart",
            on_timeout=self.logs_text,
        )
        return time.monotonic() - began

    def cleanup(self) -> None:
        """Stop, then delete the run directory if this object created it."""
        self.stop()
        if self._own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # ---------------------------------------------------------------- components
    def _bin(self, name: str) -> str:
        assert self.bin_dir is not None
        return str(self.bin_dir / name)

    def _spawn(self, name: str, argv: Sequence[str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.run_dir / "logs" / f"{name}.log").start()
        self.processes[name] = proc
        return proc

    def _start_etcd(self, timeout: float) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._spawn(
            "etcd",
            [
                self._bin("etcd"),
                "--name=default",
                f"--data-dir={self.run_dir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        wait_until(
            lambda: _http_ok(f"{self.etcd_url}/health"),
            timeout,
            "etcd /health",
            on_timeout=self.logs_text,
        )

    def _start_apiserver(self, timeout: float) -> None:
        assert self.pki is not None
        port = free_port()
        pki = self.pki
        admission = self._write_admission_config()
        if self.node_kind == "real":
            from testbed.node.realnode import GATEWAY

            # Pods reach the API server through the `kubernetes` Service (kube-proxy's DNAT to the
            # advertised address), so it listens on the Pods' gateway; the Node authorizer lets
            # each kubelet read what its own Pods need and nothing else.
            address, authorization, endpoints = GATEWAY, "Node,RBAC", "lease"
            node_flags = [
                f"--kubelet-client-certificate={pki.admin_cert}",
                f"--kubelet-client-key={pki.admin_key}",
                "--kubelet-preferred-address-types=InternalIP",
            ]
        else:
            address, authorization, endpoints, node_flags = "127.0.0.1", "RBAC", "none", []
        self.server = f"https://{address}:{port}"
        self._spawn(
            "kube-apiserver",
            [
                self._bin("kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                f"--bind-address={address}",
                f"--advertise-address={address}",
                f"--secure-port={port}",
                f"--cert-dir={self.run_dir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--authorization-mode={authorization}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_public}",
                f"--service-account-signing-key-file={pki.sa_private}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--profiling=false",
                f"--endpoint-reconciler-type={endpoints}",
                f"--admission-control-config-file={admission}",
                *node_flags,
                "--v=1",
            ],
        )
        wait_until(
            lambda: self._api_get("/readyz") == "ok",
            timeout,
            "kube-apiserver /readyz",
            on_timeout=self.logs_text,
        )

    def _write_admission_config(self) -> Path:
        """The admission configuration that gives kube-apiserver a client certificate for every
        admission webhook (user "*"), as a real cluster must be set up for the operator's webhook."""
        assert self.pki is not None
        kubeconfig = self.run_dir / "webhook-client.kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "users": [
                        {
                            "name": "*",
                            "user": {
                                "client-certificate": str(self.pki.webhook_client_cert),
                                "client-key": str(self.pki.webhook_client_key),
                            },
                        }
                    ],
                }
            )
        )
        plugin_config = {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "WebhookAdmissionConfiguration",
            "kubeConfigFile": str(kubeconfig),
        }
        config = {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "AdmissionConfiguration",
            "plugins": [
                {"name": name, "configuration": plugin_config}
                for name in ("ValidatingAdmissionWebhook", "MutatingAdmissionWebhook")
            ],
        }
        path = self.run_dir / "admission.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def _write_admin_kubeconfig(self) -> None:
        assert self.pki is not None
        _write_kubeconfig(
            self.kubeconfig,
            self.server,
            self.pki.ca_cert.read_bytes(),
            {
                "client-certificate-data": _b64(self.pki.admin_cert.read_bytes()),
                "client-key-data": _b64(self.pki.admin_key.read_bytes()),
            },
            user="admin",
        )

    def _start_controller_manager(self) -> None:
        assert self.pki is not None
        kc = str(self.kubeconfig)
        self._spawn(
            "kube-controller-manager",
            [
                self._bin("kube-controller-manager"),
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                f"--root-ca-file={self.pki.ca_cert}",
                f"--service-account-private-key-file={self.pki.sa_private}",
                "--use-service-account-credentials=false",
                "--concurrent-gc-syncs=5",
                # The default client-side limit (20 requests/s, burst 30) is sized for small clusters:
                # with hundreds of Deployments it, not the operator, sets the pace (measured by
                # benchmarks/operator_bench.py: ~5 Pods/s). Kubernetes' own scalability jobs use 100.
                *_CLIENT_RATE_FLAGS,
                "--v=1",
            ],
        )

    def _start_scheduler(self) -> None:
        kc = str(self.kubeconfig)
        self._spawn(
            "kube-scheduler",
            [
                self._bin("kube-scheduler"),
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                *_CLIENT_RATE_FLAGS,
                "--v=1",
            ],
        )

    def _start_kwok(self) -> None:
        self._spawn(
            "kwok",
            [
                self._bin("kwok"),
                f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-ip=127.0.0.1",
                f"--node-port={free_port()}",
                f"--server-address=127.0.0.1:{free_port()}",
                "--cidr=10.244.0.1/24",
                # Renew the fake node's Lease well inside the controller-manager's grace period;
                # by default kwok's node status updates are too rare and the node turns NotReady.
                "--node-lease-duration-seconds=40",
            ],
        )

    def _start_real_node(self, timeout: float) -> None:
        from testbed.node.realnode import NODE_NAME, NodeCerts, RealNode

        assert self.pki is not None
        certs_dir = self.run_dir / "pki" / "node"
        kubelet = issue_client(self.pki, certs_dir, f"system:node:{NODE_NAME}", "system:nodes")
        proxy = issue_client(self.pki, certs_dir, "system:kube-proxy")
        self.real_node = RealNode(self.run_dir / "node", self.node_artifacts)
        began = time.monotonic()
        self.real_node.start(self.server, self.pki.ca_cert, NodeCerts(*kubelet, *proxy), timeout)
        wait_until(
            lambda: self._node_ready(NODE_NAME),
            timeout,
            f"the kubelet to register node {NODE_NAME} and report it Ready",
            on_timeout=lambda: self.logs_text() + "\n" + self.real_node.logs_text(),
        )
        # containerd up, images imported, kubelet registered and Ready, kube-proxy started.
        self.real_node.startup_seconds = time.monotonic() - began

    def _node_ready(self, name: str) -> bool:
        out = self.kubectl(
            "get", "node", name, "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}', check=False
        )
        return out.stdout.strip() == "True"

    def _create_fake_node(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": FAKE_NODE,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": FAKE_NODE,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
            },
            # Every real kubelet reports ephemeral-storage; without it a Pod that requests some
            # (the chart's operator does) would never be scheduled here.
            "status": {
                "allocatable": {"cpu": "32", "memory": "256Gi", "ephemeral-storage": "100Gi", "pods": "1000"},
                "capacity": {"cpu": "32", "memory": "256Gi", "ephemeral-storage": "100Gi", "pods": "1000"},
            },
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(node))
        wait_until(
            self._fake_node_ready,
            60,
            f"kwok to mark node {FAKE_NODE} Ready",
            on_timeout=self.logs_text,
        )

    def _fake_node_ready(self) -> bool:
        out = self.kubectl(
            "get",
            "node",
            FAKE_NODE,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            check=False,
        )
        return out.stdout.strip() == "True"

    def _default_service_account_exists(self) -> bool:
        return self.kubectl("-n", "default", "get", "serviceaccount", "default", check=False).returncode == 0

    # ------------------------------------------------------------------ clients
    def _ssl_context(self) -> ssl.SSLContext:
        assert self.pki is not None
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return ctx

    def _api_get(self, path: str) -> str:
        with urllib.request.urlopen(self.server + path, context=self._ssl_context(), timeout=5) as resp:
            return resp.read().decode()

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the cluster's kubectl with the admin kubeconfig (or ``kubeconfig``)."""
        done = subprocess.run(
            [self._bin("kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the cluster's helm against this cluster."""
        done = subprocess.run(
            [self._bin("helm"), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def api_client(self, kubeconfig: Path | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` for the admin identity (or ``kubeconfig``)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(kubeconfig or self.kubeconfig))

    def token_for(
        self,
        namespace: str,
        service_account: str,
        audiences: Sequence[str] | None = None,
        seconds: int = 3600,
    ) -> str:
        """A bound token for ``namespace/service_account`` obtained with the TokenRequest API."""
        from kubernetes import client

        api = client.CoreV1Api(self.api_client())
        body = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=list(audiences or []), expiration_seconds=seconds)
        )
        answer = api.create_namespaced_service_account_token(service_account, namespace, body)
        return str(answer.status.token)

    def kubeconfig_for_token(self, token: str, path: Path) -> Path:
        """Write a kubeconfig that authenticates with a bearer ``token``."""
        assert self.pki is not None
        _write_kubeconfig(path, self.server, self.pki.ca_cert.read_bytes(), {"token": token}, user="token")
        return path

    def kubeconfig_for_token_file(self, token_file: Path, path: Path) -> Path:
        """Write a kubeconfig whose user reads its bearer token from ``token_file`` (``tokenFile``),
        so that whoever writes that file can rotate the token under a running client."""
        assert self.pki is not None
        fields = {"tokenFile": str(token_file)}
        _write_kubeconfig(path, self.server, self.pki.ca_cert.read_bytes(), fields, user="token")
        return path

    def bound_token(
        self, namespace: str, service_account: str, secret_name: str, secret_uid: str, seconds: int = 3600
    ) -> str:
        """A TokenRequest token bound to a Secret: deleting the Secret revokes the token (as deleting
        its Pod revokes a projected token)."""
        from kubernetes import client

        api = client.CoreV1Api(self.api_client())
        body = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(
                audiences=[],
                expiration_seconds=seconds,
                bound_object_ref=client.V1BoundObjectReference(
                    api_version="v1", kind="Secret", name=secret_name, uid=secret_uid
                ),
            )
        )
        answer = api.create_namespaced_service_account_token(service_account, namespace, body)
        return str(answer.status.token)

    # --------------------------------------------------------------------- logs
    def logs(self, max_chars: int = 4000) -> dict[str, str]:
        """The tail of every component's log, by component name."""
        return {name: proc.log_tail(max_chars) for name, proc in self._all_processes().items()}

    def logs_text(self, max_chars: int = 3000) -> str:
        """All log tails as one text block, for failure reports."""
        parts = []
        for name, tail in self.logs(max_chars).items():
            state = "running" if self._all_processes()[name].alive() else "EXITED"
            parts.append(f"----- {name} ({state}) -----\n{tail}")
        return "\n".join(parts)

    def dead_components(self) -> list[str]:
        """Names of components that exited although they should be running."""
        return [name for name, proc in self._all_processes().items() if not proc.alive()]

    def all_processes(self) -> dict[str, ManagedProcess]:
        """Every component process, the real node's included."""
        return self._all_processes()

    def _all_processes(self) -> dict[str, ManagedProcess]:
        """The control plane's processes, then the real node's (containerd, kubelet, kube-proxy)."""
        node = self.real_node.processes if self.real_node is not None else {}
        return {**self.processes, **node}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)


def _write_kubeconfig(path: Path, server: str, ca_pem: bytes, user_fields: dict[str, str], user: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}
        ],
        "users": [{"name": user, "user": user_fields}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
