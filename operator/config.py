"""Operator-wide configuration, filled by the CLI before the handlers module is imported
(kopf decorators such as timers read their interval at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

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


CONFIG = OperatorConfig()
