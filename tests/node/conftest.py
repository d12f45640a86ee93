"""A control plane with a real node (containerd + runc + kubelet + kube-proxy) and, on it, the
project's image built from the Dockerfile; an operator process that runs its runtimes there.

Separate from the session's kwok cluster: these fixtures need root and Debian's containerd, runc and
CNI plugins (testbed/node/install-packages.sh). They never skip: a machine that cannot run them
fails them with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed.controlplane.cluster import LocalCluster
from testbed.demo.stack import Stack
from testbed.node.realnode import GATEWAY
from testbed.processes import ManagedProcess

CLAIMS_NAMESPACE = "sekoia-intel-system"


@dataclass
class NodeStack:
    """The real-node cluster and the operator process serving it."""

    cluster: LocalCluster
    operator: ManagedProcess
    image: str
    run_dir: Path


# Per module, not per session: a machine runs one real node at a time (one Pod bridge), and the
# demo's and the soak's tests start their own; this one must be gone before theirs start.
@pytest.fixture(scope="module")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Control plane + real node; stopped (containers, mounts, bridge, iptables) at the end."""
    instance = LocalCluster(run_dir=tmp_path_factory.mktemp("real-node"), node="real")
    try:
        instance.start(timeout=300)
        node = instance.real_node
        print(
            f"\ncontrol plane with a real node up in {instance.startup_seconds:.1f}s "
            f"(node: {node.startup_seconds:.1f}s) at {instance.server}"
        )
        yield instance
    finally:
        instance.stop()


# Per module: tests/node/test_real_operator_pod.py installs the chart's operator instead, and two
# operators serving the same namespaces would fight over its resources.
@pytest.fixture(scope="module")
def node_stack(real_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeStack]:
    """The operator as a local process (admin kubeconfig), its runtimes' image being the one built
    from the Dockerfile and imported into the node's containerd."""
    cluster = real_cluster
    run_dir = tmp_path_factory.mktemp("node-operator")
    stack = Stack(run_dir)
    stack.cluster = cluster  # the real-node cluster: this fixture's caller stops it, not the Stack
    stack.install_crd()
    if cluster.kubectl("get", "namespace", CLAIMS_NAMESPACE, check=False).returncode:
        cluster.kubectl("create", "namespace", CLAIMS_NAMESPACE)
    image = cluster.node_artifacts.image_ref
    # The emulators listen on the Pods' gateway, the host's address as seen from a Pod.
    proc = stack.start_operator(
        CLAIMS_NAMESPACE, ["--runtime-image", image, f"--allow-sekoia-url=http://{GATEWAY}:*"]
    )
    try:
        yield NodeStack(cluster, proc, image, run_dir)
    finally:
        proc.stop()
