"""Operator-wide configuration, filled by the CLI before the handlers module is imported
(kopf decorators such as timers read their interval at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .budget import BudgetPolicy
from .pod_defaults import RuntimePodDefaults
from .policy import Allowlists
from .workload import DEFAULT_RUNTIME_IMAGE


def _default_claims_namespace() -> str:
    return os.environ.get("SIS_CLAIMS_NAMESPACE") or os.environ.get("POD_NAMESPACE") or "sekoia-intel-system"


@dataclass
class OperatorConfig:
    """Settings shared by the handlers."""

    claims_namespace: str = field(default_factory=_default_claims_namespace)
    runtime_image: str = field(
        default_factory=lambda: os.environ.get("SIS_RUNTIME_IMAGE") or DEFAULT_RUNTIME_IMAGE
    )
    namespaces: list[str] | None = None  # None = the whole cluster
    resync_interval: float = 300.0
    request_timeout: float = 30.0
    max_workers: int = 8
    webhook: WebhookConfig | None = None
    allowlists: Allowlists = field(default_factory=Allowlists)
    pod_defaults: RuntimePodDefaults = field(default_factory=RuntimePodDefaults)
    network_policy: NetworkPolicyConfig | None = field(default_factory=lambda: NetworkPolicyConfig())
    #: The Sekoia request budget per host, shared by every sync pushing to it (None: no sharing).
    budget: BudgetPolicy | None = field(default_factory=BudgetPolicy)
    #: How the operator names itself in "grant me access" messages (chart: the release's names).
    identity: OperatorIdentity = field(default_factory=lambda: OperatorIdentity())


@dataclass
class OperatorIdentity:
    """The operator's ServiceAccount and the ClusterRole a namespace binds to let it read Secrets."""

    namespace: str = field(default_factory=lambda: os.environ.get("POD_NAMESPACE") or "")
    service_account: str = field(default_factory=lambda: os.environ.get("SIS_SERVICE_ACCOUNT") or "")
    secrets_cluster_role: str = field(
        default_factory=lambda: os.environ.get("SIS_SECRETS_CLUSTER_ROLE") or ""
    )


@dataclass
class NetworkPolicyConfig:
    """The NetworkPolicy the operator gives each runtime (see operator/netpol.py)."""

    #: Namespaces allowed to reach the runtime's :8080 besides the operator's own.
    monitoring_namespaces: list[str] = field(default_factory=list)
    #: Namespace of the operator itself (allowed to reach :8080); empty = none.
    operator_namespace: str = field(default_factory=lambda: os.environ.get("POD_NAMESPACE") or "")
    #: TCP ports of the API server as the Pod reaches it (Service port and endpoint port).
    api_server_ports: list[int] = field(default_factory=lambda: [443, 6443])
    #: Destinations of the egress to OpenCTI, Sekoia.io and the API server.
    egress_cidrs: list[str] = field(default_factory=lambda: ["0.0.0.0/0", "::/0"])


@dataclass
class WebhookConfig:
    """Where kopf's admission webhook server listens and how the API server reaches it."""

    addr: str = "0.0.0.0"
    port: int = 9443
    host: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    cafile: str | None = None
    managed_config: str | None = None
    #: CA that signed the API server's admission client certificate; None = no client authentication.
    client_cafile: str | None = None
    #: Common names / DNS SANs accepted in that client certificate; empty = any it signed.
    client_names: list[str] = field(default_factory=list)
    #: The operator keeps its own CA and serving certificate in this Secret (None = files given).
    cert_secret: str | None = None
    #: Namespace of that Secret (the operator's own).
    cert_namespace: str = ""
    #: Service in front of the webhook: its DNS names go into the certificate; it owns the Secret.
    service: str | None = None
    #: ValidatingWebhookConfiguration (rendered by the chart) whose caBundle the operator sets.
    ca_injection_config: str | None = None


CONFIG = OperatorConfig()
