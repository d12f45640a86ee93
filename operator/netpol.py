"""The NetworkPolicy of one runtime: what its Pod may reach and who may reach it. Pure.

NetworkPolicy speaks IPs and ports, not host names, and OpenCTI and Sekoia.io sit behind names whose
addresses change. So egress is confined by port: DNS (53), the API server's ports, and the ports of
the resource's own OpenCTI and Sekoia.io URLs, towards the configured CIDRs (default: everywhere but
the link-local ranges, where cloud metadata endpoints answer). A platform that knows its egress
addresses narrows the CIDRs in the chart's values. Ingress: the runtime's :8080 (health, metrics)
only from the operator's namespace and the configured monitoring namespaces.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from .config import NetworkPolicyConfig
from .spec import SyncSpec
from .workload import RUNTIME_PORT, SyncRef, child_metadata, selector_labels

LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAMESPACE_LABEL = "kubernetes.io/metadata.name"


def url_port(url: str) -> int:
    """The TCP port a URL connects to (explicit, else the scheme's default)."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = None
    return port or _DEFAULT_PORTS.get(parts.scheme.lower(), 443)


def ip_block(cidr: str) -> dict[str, Any]:
    """An ipBlock for `cidr` that leaves out the link-local ranges it contains."""
    net = ipaddress.ip_network(cidr, strict=False)
    excluded = [
        str(ll)
        for ll in LINK_LOCAL
        if ll.version == net.version and ll.subnet_of(net) and ll != net  # type: ignore[arg-type]
    ]
    block: dict[str, Any] = {"cidr": str(net)}
    if excluded:
        block["except"] = excluded
    return block


def desired_network_policy(ref: SyncRef, spec: SyncSpec, cfg: NetworkPolicyConfig) -> dict[str, Any]:
    """Egress to DNS, the API server and the resource's two URLs' ports; ingress to :8080 from the
    operator's and the monitoring namespaces only."""
    ports = sorted({url_port(spec.opencti.url), url_port(spec.sekoia.url), *cfg.api_server_ports})
    sources = [ns for ns in [cfg.operator_namespace, *cfg.monitoring_namespaces] if ns]
    ingress: list[dict[str, Any]] = []
    if sources:
        ingress.append(
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {_NAMESPACE_LABEL: ns}}}
                    for ns in dict.fromkeys(sources)
                ],
                "ports": [{"port": RUNTIME_PORT, "protocol": "TCP"}],
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": child_metadata(ref),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(ref)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": [
                {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
                {
                    "to": [{"ipBlock": ip_block(cidr)} for cidr in cfg.egress_cidrs],
                    "ports": [{"port": port, "protocol": "TCP"} for port in ports],
                },
            ],
        },
    }
