"""`sekoia-intel-operator`: runs the kopf controller for SekoiaIntelSync resources."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import importlib
import ipaddress
import logging
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from . import config as config_module
from .budget import BudgetPolicy
from .config import NetworkPolicyConfig, OperatorConfig, WebhookConfig
from .pod_defaults import parse_defaults
from .policy import (
    DEFAULT_OPENCTI_SCHEMES,
    DEFAULT_SEKOIA_URLS,
    Allowlists,
    quantity_at_most,
    resource_problems,
)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value and value.isdigit() else default


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface; every flag has an environment fallback for container use."""
    p = argparse.ArgumentParser(
        prog="sekoia-intel-operator",
        description="Kubernetes operator that runs OpenCTI -> Sekoia.io indicator synchronisations.",
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", action="append", default=[], help="serve this namespace (repeatable; kopf globs)"
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="serve the whole cluster (default)"
    )
    p.add_argument(
        "--claims-namespace",
        default=os.environ.get("SIS_CLAIMS_NAMESPACE")
        or os.environ.get("POD_NAMESPACE")
        or "sekoia-intel-system",
        help="namespace of the collection-claim Leases (the operator's own; env SIS_CLAIMS_NAMESPACE)",
    )
    p.add_argument(
        "--runtime-image",
        default=os.environ.get("SIS_RUNTIME_IMAGE"),
        help="default runtime image (env SIS_RUNTIME_IMAGE)",
    )
    p.add_argument(
        "--resync-interval",
        type=float,
        default=300.0,
        help="seconds between full re-checks of a steady resource",
    )
    p.add_argument("--max-workers", type=int, default=8, help="threads for handlers")

    peering = p.add_mutually_exclusive_group()
    peering.add_argument("--peering", metavar="NAME", help="kopf peering object for several replicas")
    peering.add_argument("--standalone", action="store_true", help="no peering (single replica; default)")
    p.add_argument(
        "--priority", type=int, help="peering priority (default random, so equal replicas never freeze)"
    )

    p.add_argument(
        "--liveness-port", type=int, default=_env_int("SIS_LIVENESS_PORT", 8080), help="0 disables"
    )
    p.add_argument("--metrics-port", type=int, default=_env_int("SIS_METRICS_PORT", 9090), help="0 disables")
    p.add_argument("--bind-address", default="0.0.0.0", help="address of the liveness and metrics servers")

    wh = p.add_argument_group("admission webhook")
    wh.add_argument("--webhook", action="store_true", help="serve the validating admission webhook")
    wh.add_argument("--webhook-addr", default="0.0.0.0")
    wh.add_argument("--webhook-port", type=int, default=9443)
    wh.add_argument("--webhook-host", help="host name/IP the API server uses to reach the webhook")
    wh.add_argument("--webhook-certfile", type=Path, help="TLS certificate (PEM)")
    wh.add_argument("--webhook-keyfile", type=Path, help="TLS private key (PEM)")
    wh.add_argument("--webhook-cafile", type=Path, help="CA bundle the API server should trust")
    wh.add_argument(
        "--webhook-client-cafile",
        type=Path,
        help="CA of the API server's admission client certificate: callers without a certificate it "
        "signed are refused during the TLS handshake",
    )
    wh.add_argument(
        "--webhook-client-name",
        action="append",
        default=[],
        help="accepted common name (or DNS SAN) of that client certificate (repeatable; default: any)",
    )
    wh.add_argument(
        "--webhook-insecure-no-client-auth",
        action="store_true",
        help="answer any caller (only where the webhook port is unreachable for everything but the API "
        "server); without it, --webhook needs --webhook-client-cafile",
    )
    wh.add_argument(
        "--webhook-cert-secret",
        metavar="NAME",
        help="keep a self-made CA and serving certificate in this Secret of the operator's namespace "
        "(created by the first replica, shared by all, renewed before expiry) instead of certificate files",
    )
    wh.add_argument(
        "--webhook-cert-namespace",
        default=os.environ.get("POD_NAMESPACE"),
        help="namespace of that Secret (default: env POD_NAMESPACE, else the claims namespace)",
    )
    wh.add_argument(
        "--webhook-service",
        metavar="NAME",
        help="Service in front of the webhook: its DNS names go into the self-made certificate and it "
        "owns the Secret (deleted with it)",
    )
    wh.add_argument(
        "--webhook-inject-ca",
        metavar="CONFIG",
        help="ValidatingWebhookConfiguration whose webhooks get the self-made CA as caBundle",
    )
    wh.add_argument(
        "--webhook-config-name",
        help="let the operator create/patch this ValidatingWebhookConfiguration (needs cluster RBAC)",
    )

    pol = p.add_argument_group(
        "tenancy policy", "what a SekoiaIntelSync may choose beyond its author's own rights (repeatable)"
    )
    pol.add_argument(
        "--allow-runtime-image",
        action="append",
        default=[],
        metavar="IMAGE",
        help="runtime image a resource may set (exact, or a prefix ending in *); the default always is",
    )
    pol.add_argument(
        "--allow-sekoia-url",
        action="append",
        default=[],
        metavar="PATTERN",
        help="Sekoia.io URL pattern, e.g. https://*.sekoia.io (replaces the defaults "
        + ", ".join(DEFAULT_SEKOIA_URLS)
        + ")",
    )
    pol.add_argument(
        "--allow-opencti-scheme",
        action="append",
        default=[],
        choices=["http", "https"],
        help="URL scheme allowed for OpenCTI (replaces the default: https)",
    )
    pol.add_argument(
        "--allow-loopback", action="store_true", help="allow loopback hosts in URLs (local test beds only)"
    )
    pol.add_argument("--allow-pod-annotation", action="append", default=[], metavar="KEY")
    pol.add_argument("--allow-toleration-key", action="append", default=[], metavar="KEY")
    pol.add_argument("--allow-priority-class", action="append", default=[], metavar="NAME")
    pol.add_argument("--allow-node-selector-key", action="append", default=[], metavar="KEY")
    pol.add_argument("--allow-affinity", action="store_true", help="let resources set runtime.affinity")
    pol.add_argument(
        "--allow-image-pull-secret",
        action="append",
        default=[],
        metavar="NAME",
        help="Secret a resource may add to its runtime's imagePullSecrets (exact, or a prefix ending in *)",
    )
    pol.add_argument(
        "--max-runtime-resource",
        action="append",
        default=[],
        metavar="NAME=QUANTITY",
        help="bound of spec.runtime.resources (e.g. memory=1Gi): request and limit at most this, limit set",
    )
    pol.add_argument(
        "--runtime-pod-defaults",
        default="",
        metavar="JSON",
        help="JSON object of every runtime Pod's defaults: imagePullSecrets, resources, nodeSelector, "
        "tolerations, affinity, topologySpreadConstraints, priorityClassName",
    )
    pol.add_argument(
        "--secrets-cluster-role",
        default=os.environ.get("SIS_SECRETS_CLUSTER_ROLE", ""),
        help="ClusterRole a namespace binds to let the operator read its Secrets (named in messages)",
    )

    net = p.add_argument_group("runtime NetworkPolicy")
    net.add_argument(
        "--network-policy",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="give every runtime a NetworkPolicy (default on)",
    )
    net.add_argument(
        "--monitoring-namespace",
        action="append",
        default=[],
        help="namespace allowed to reach the runtimes' :8080 besides the operator's",
    )
    net.add_argument(
        "--api-server-port",
        action="append",
        type=int,
        default=[],
        help="TCP port of the API server the runtimes may reach (default 443 and 6443)",
    )
    net.add_argument(
        "--egress-cidr",
        action="append",
        default=[],
        help="CIDR the runtimes may reach on their URLs' ports (default everywhere but link-local)",
    )

    bud = p.add_argument_group("Sekoia request budget (shared by every sync of a Sekoia host)")
    bud.add_argument(
        "--sekoia-budget",
        type=float,
        default=_env_float("SIS_SEKOIA_BUDGET", 5.0),
        metavar="RPS",
        help="requests per second per Sekoia host, all syncs together; 0 disables sharing (default 5)",
    )
    bud.add_argument(
        "--sekoia-budget-host",
        action="append",
        default=[],
        metavar="HOST=RPS",
        help="a host's own budget, e.g. api.sekoia.io=10 (repeatable)",
    )
    bud.add_argument(
        "--sekoia-budget-floor",
        type=float,
        default=0.5,
        metavar="RPS",
        help="what every running sync keeps whatever the others' backlogs (default 0.5)",
    )
    bud.add_argument(
        "--sekoia-budget-headroom",
        type=float,
        default=0.1,
        metavar="FRACTION",
        help="part of each budget left undistributed for the runtimes' timing jitter (default 0.1)",
    )

    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


def config_from_args(args: argparse.Namespace) -> OperatorConfig:
    """Validate the flags and turn them into the handlers' configuration (ValueError = usage error)."""
    cfg = OperatorConfig(
        claims_namespace=args.claims_namespace,
        namespaces=list(args.namespace) or None,
        resync_interval=args.resync_interval,
        max_workers=args.max_workers,
    )
    if args.runtime_image:
        cfg.runtime_image = args.runtime_image
    if args.resync_interval <= 0:
        raise ValueError("--resync-interval must be positive")
    cfg.allowlists = _allowlists(args)
    cfg.pod_defaults = parse_defaults(args.runtime_pod_defaults)
    if cfg.pod_defaults.resources is not None:
        # Every runtime Deployment would be refused at admission: say it at start instead.
        problems = resource_problems(cfg.pod_defaults.resources, cfg.allowlists.max_resources)
        if problems:
            raise ValueError("--runtime-pod-defaults resources break --max-runtime-resource: " + problems[0])
    cfg.identity.secrets_cluster_role = args.secrets_cluster_role
    cfg.network_policy = _network_policy(args) if args.network_policy else None
    cfg.budget = _budget(args)
    if args.webhook:
        if bool(args.webhook_certfile) != bool(args.webhook_keyfile):
            raise ValueError("--webhook-certfile and --webhook-keyfile go together")
        if args.webhook_cert_secret and args.webhook_certfile:
            raise ValueError("--webhook-cert-secret replaces --webhook-certfile/--webhook-keyfile: give one")
        if args.webhook_cert_secret and not (args.webhook_service or args.webhook_host):
            raise ValueError(
                "--webhook-cert-secret needs --webhook-service or --webhook-host (names for the certificate)"
            )
        if (args.webhook_inject_ca or args.webhook_service) and not args.webhook_cert_secret:
            raise ValueError("--webhook-inject-ca and --webhook-service go with --webhook-cert-secret")
        for path in (
            args.webhook_certfile,
            args.webhook_keyfile,
            args.webhook_cafile,
            args.webhook_client_cafile,
        ):
            if path is not None and not path.is_file():
                raise ValueError(f"webhook file not found: {path}")
        if not args.webhook_certfile and not args.webhook_cert_secret:
            raise ValueError(
                "--webhook needs --webhook-cert-secret, or --webhook-certfile and --webhook-keyfile "
                "(the API server only calls HTTPS)"
            )
        if not args.webhook_client_cafile and not args.webhook_insecure_no_client_auth:
            raise ValueError(
                "--webhook needs --webhook-client-cafile (the CA of the API server's admission client "
                "certificate), or --webhook-insecure-no-client-auth to answer any caller"
            )
        if args.webhook_config_name and args.webhook_config_name.count(".") < 2:
            # kopf names each webhook "<handler>.<config name>"; the API server wants 3+ DNS segments.
            raise ValueError(
                "--webhook-config-name must be a DNS name with dots, e.g. validate.sync.sekoia-intel.dev"
            )
        cfg.webhook = WebhookConfig(
            addr=args.webhook_addr,
            port=args.webhook_port,
            host=args.webhook_host,
            certfile=str(args.webhook_certfile) if args.webhook_certfile else None,
            keyfile=str(args.webhook_keyfile) if args.webhook_keyfile else None,
            cafile=str(args.webhook_cafile) if args.webhook_cafile else None,
            managed_config=args.webhook_config_name,
            client_cafile=str(args.webhook_client_cafile) if args.webhook_client_cafile else None,
            client_names=list(args.webhook_client_name),
            cert_secret=args.webhook_cert_secret,
            cert_namespace=args.webhook_cert_namespace or args.claims_namespace,
            service=args.webhook_service,
            ca_injection_config=args.webhook_inject_ca,
        )
    return cfg


def _allowlists(args: argparse.Namespace) -> Allowlists:
    for pattern in args.allow_sekoia_url:
        parts = urlsplit(pattern)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"--allow-sekoia-url {pattern!r} must look like https://*.sekoia.io[/path]")
    return Allowlists(
        runtime_images=tuple(args.allow_runtime_image),
        sekoia_urls=tuple(args.allow_sekoia_url) or DEFAULT_SEKOIA_URLS,
        opencti_schemes=tuple(args.allow_opencti_scheme) or DEFAULT_OPENCTI_SCHEMES,
        allow_loopback=args.allow_loopback,
        pod_annotation_keys=tuple(args.allow_pod_annotation),
        toleration_keys=tuple(args.allow_toleration_key),
        priority_class_names=tuple(args.allow_priority_class),
        node_selector_keys=tuple(args.allow_node_selector_key),
        allow_affinity=args.allow_affinity,
        image_pull_secret_names=tuple(args.allow_image_pull_secret),
        max_resources=tuple(_maximum(entry) for entry in args.max_runtime_resource),
    )


def _maximum(entry: str) -> tuple[str, str]:
    name, sep, quantity = entry.partition("=")
    if not sep or not name or not quantity_at_most(quantity, quantity):
        raise ValueError(f"--max-runtime-resource {entry!r} must look like memory=1Gi")
    return name, quantity


def _budget(args: argparse.Namespace) -> BudgetPolicy | None:
    if not 0 <= args.sekoia_budget <= 1000:
        raise ValueError("--sekoia-budget must be between 0 (no sharing) and 1000 requests per second")
    if args.sekoia_budget == 0:
        return None
    if not 0 < args.sekoia_budget_floor <= args.sekoia_budget:
        raise ValueError("--sekoia-budget-floor must be positive and at most --sekoia-budget")
    if not 0 <= args.sekoia_budget_headroom < 1:
        raise ValueError("--sekoia-budget-headroom must be a fraction from 0 to below 1, e.g. 0.1")
    per_host: dict[str, float] = {}
    for entry in args.sekoia_budget_host:
        host, sep, rate = entry.partition("=")
        try:
            value = float(rate)
        except ValueError:
            value = -1.0
        if not sep or not host.strip() or "/" in host or not 0 < value <= 1000:
            raise ValueError(
                f"--sekoia-budget-host {entry!r} must be HOST=RPS with RPS from above 0 to 1000, "
                "e.g. api.sekoia.io=10"
            )
        per_host[host.strip().lower()] = value
    return BudgetPolicy(
        requests_per_second=args.sekoia_budget,
        per_host=per_host,
        floor=args.sekoia_budget_floor,
        headroom=args.sekoia_budget_headroom,
    )


def _network_policy(args: argparse.Namespace) -> NetworkPolicyConfig:
    cfg = NetworkPolicyConfig(monitoring_namespaces=list(args.monitoring_namespace))
    if args.api_server_port:
        if not all(0 < port < 65536 for port in args.api_server_port):
            raise ValueError("--api-server-port must be a TCP port (1-65535)")
        cfg.api_server_ports = list(args.api_server_port)
    if args.egress_cidr:
        for cidr in args.egress_cidr:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"--egress-cidr {cidr!r} is not a CIDR such as 10.0.0.0/8") from None
        cfg.egress_cidrs = list(args.egress_cidr)
    return cfg


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas before worker threads start.

    With one arena per thread, a handful of handler threads fragments memory into hundreds of MB of
    RSS under load; two arenas cost nothing measurable here. No-op outside glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, arenas)  # -8 is M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        print(f"sekoia-intel-operator: error: {exc}", file=sys.stderr)
        return 2
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The kubernetes client logs request bodies at debug level, which could include Secret data.
    logging.getLogger("kubernetes").setLevel(logging.INFO)
    logging.getLogger("urllib3").setLevel(logging.INFO)
    if not args.verbose:
        # One "handler succeeded" line per watched Pod event is noise; failures are still logged.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)

    _limit_malloc_arenas()
    config_module.CONFIG = cfg
    import kopf

    importlib.import_module("sekoia_intel_operator.handlers")

    if args.metrics_port:
        from prometheus_client import start_http_server

        try:
            start_http_server(args.metrics_port, addr=args.bind_address)
        except OSError as exc:
            print(
                f"sekoia-intel-operator: error: metrics port {args.metrics_port}: {exc.strerror}",
                file=sys.stderr,
            )
            return 1
    liveness = f"http://{args.bind_address}:{args.liveness_port}/healthz" if args.liveness_port else None
    standalone = not args.peering
    priority = args.priority if args.priority is not None else random.randint(0, 10_000)
    try:
        asyncio.run(
            kopf.operator(
                standalone=standalone,
                peering_name=args.peering,
                priority=priority,
                clusterwide=not cfg.namespaces,
                namespaces=cfg.namespaces or (),
                liveness_endpoint=liveness,
            )
        )
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one readable line instead of a kopf traceback for setup failures
        print(f"sekoia-intel-operator: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
