"""Shared builders for the operator's unit tests."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

COLLECTION = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
STREAM = "5f3e1a2b-1111-4c2d-9e8f-0123456789ab"


def raw_spec(**overrides: Any) -> dict[str, Any]:
    """A minimal valid spec (as the user writes it), with top-level overrides."""
    spec: dict[str, Any] = {
        "opencti": {"url": "https://opencti.example.org", "streamId": STREAM},
        "sekoia": {"collectionId": COLLECTION},
        "credentialsSecretRef": {"name": "sis-creds"},
    }
    spec.update(overrides)
    return spec


@contextlib.contextmanager
def node_heartbeat(api_client: Any, node: str = "kwok-node-0", every: float = 5.0) -> Iterator[None]:
    """Keep the kwok node's Lease fresh while the block runs.

    Workaround for the testbed: kwok (started without node leases) reports the node status only about
    every 50 s, the controller-manager's grace period, so the node flaps NotReady and every Pod on it
    is marked unready for a while. Renewing the node Lease is what a kubelet does; remove this once
    the testbed passes `--node-lease-duration-seconds` to kwok.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    coordination = client.CoordinationV1Api(api_client)
    stop = threading.Event()

    def renew() -> None:
        while not stop.is_set():
            now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
            spec = {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now}
            try:
                try:
                    coordination.patch_namespaced_lease(node, "kube-node-lease", {"spec": spec})
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                    body = {"metadata": {"name": node, "namespace": "kube-node-lease"}, "spec": spec}
                    coordination.create_namespaced_lease("kube-node-lease", body)
            except Exception:  # best effort: the next round retries
                pass
            stop.wait(every)

    thread = threading.Thread(target=renew, daemon=True, name="node-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
