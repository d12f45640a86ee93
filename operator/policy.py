"""Operator-level allowlists: what a SekoiaIntelSync may ask for beyond what its author could do.

Whoever may create a SekoiaIntelSync must gain no right they lack. The runtime Pod runs with an
image, sends credentials to URLs and carries Pod fields the author picked; this module judges those
choices against the allowlists the platform team set in the operator's configuration. Pure: the
reconciler and the admission webhook both call `check`, and it is unit-tested on its own.

Semantics shared with the chart's ValidatingAdmissionPolicy (keep the two in step):
- an image entry matches exactly, or as a prefix when it ends with `*`;
- a URL pattern is `scheme://host[:port][/path]`, where a `*` host label stands for exactly one DNS
  label, a `*` port for any port, no port for the scheme's default port, and a path for that path
  or anything below it;
- key entries (annotations, toleration and nodeSelector keys, imagePullSecrets names) match exactly
  or as a `*` prefix;
- a resource maximum (cpu, memory, ephemeral-storage...) bounds the request and the limit of that
  resource in `spec.runtime.resources`, and that limit must then be set (no limit is no bound).

The platform's Pod defaults (pod_defaults.py) are not judged here: they are the administrators' own.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from kubernetes.utils import parse_quantity

from .spec import SyncSpec

DEFAULT_SEKOIA_URLS = ("https://*.sekoia.io", "https://app.*.sekoia.io/api")
DEFAULT_OPENCTI_SCHEMES = ("https",)

REASON_IMAGE = "ImageNotAllowed"
REASON_URL = "URLNotAllowed"
REASON_POD_FIELD = "PodFieldNotAllowed"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK_NAMES = ("localhost", "localhost.")


@dataclass(frozen=True)
class Allowlists:
    """What the operator lets a resource choose. Defaults allow nothing beyond the safe minimum."""

    runtime_images: tuple[str, ...] = ()
    sekoia_urls: tuple[str, ...] = DEFAULT_SEKOIA_URLS
    opencti_schemes: tuple[str, ...] = DEFAULT_OPENCTI_SCHEMES
    #: Loopback hosts (127/8, ::1, localhost) are refused unless this is set (local test beds only).
    allow_loopback: bool = False
    pod_annotation_keys: tuple[str, ...] = ()
    toleration_keys: tuple[str, ...] = ()
    priority_class_names: tuple[str, ...] = ()
    node_selector_keys: tuple[str, ...] = ()
    allow_affinity: bool = False
    #: Secrets (names or `prefix*`) a resource may add to its runtime's imagePullSecrets.
    image_pull_secret_names: tuple[str, ...] = ()
    #: (resource name, maximum quantity): bounds of spec.runtime.resources.
    max_resources: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Violation:
    """One refused choice: a condition reason and a one-line message naming the field."""

    reason: str
    message: str


@dataclass
class PolicyVerdict:
    """All violations of one spec, in the order of the spec's fields."""

    violations: list[Violation] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        """No violation."""
        return not self.violations

    @property
    def reason(self) -> str:
        """The first violation's reason (conditions carry one reason)."""
        return self.violations[0].reason if self.violations else ""

    @property
    def message(self) -> str:
        """Every violation, joined."""
        return "; ".join(v.message for v in self.violations)


def key_allowed(key: str, patterns: Iterable[str]) -> bool:
    """Exact match, or prefix match for an entry ending in `*`."""
    for pattern in patterns:
        if pattern.endswith("*") and key.startswith(pattern[:-1]):
            return True
        if key == pattern:
            return True
    return False


def image_allowed(image: str, allowed: Iterable[str]) -> bool:
    """Same rule as keys: exact, or a registry/repository prefix ending in `*`."""
    return key_allowed(image, allowed)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _numeric_shorthand(host: str) -> bool:
    """`2852039166`, `0xa9fea9fe` or `169.254.43518`: resolvers read these as IPv4 addresses, so they
    could hide a refused address from a check that only knows dotted quads. No DNS name ends so."""
    last = host.rstrip(".").rsplit(".", 1)[-1]
    return bool(re.fullmatch(r"[0-9]+|0x[0-9a-f]*", last))


def host_problem(parts: SplitResult, allow_loopback: bool) -> str | None:
    """Why this URL's host may never be used (userinfo, metadata/link-local, unspecified, loopback)."""
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "must not carry user:password@ (put credentials in the Secret)"
    host = (parts.hostname or "").lower()
    if not host:
        return "has no host"
    ip = _ip(host)
    if ip is not None:
        mapped = getattr(ip, "ipv4_mapped", None)
        ip = mapped or ip
        if ip.is_link_local:
            return "points at a link-local address (cloud metadata endpoints live there)"
        if ip.is_unspecified or ip.is_multicast:
            return "points at an address no service listens on"
        if ip.is_loopback and not allow_loopback:
            return "points at a loopback address, refused unless the operator allows loopback hosts"
    elif _numeric_shorthand(host):
        return "has a numeric host that is not a plain IP address"
    elif host in _LOOPBACK_NAMES and not allow_loopback:
        return "points at localhost, refused unless the operator allows loopback hosts"
    return None


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return -1


def url_matches(url: str, pattern: str) -> bool:
    """Whether `url` matches one allowlist pattern (see the module docstring)."""
    u, p = urlsplit(url.strip()), urlsplit(pattern.strip())
    if u.scheme.lower() != p.scheme.lower() or u.username or u.password:
        return False
    host = (u.hostname or "").lower().rstrip(".")
    want = (p.hostname or "").lower()
    host_labels, want_labels = host.split("."), want.split(".")
    if len(host_labels) != len(want_labels):
        return False
    for label, wanted in zip(host_labels, want_labels, strict=True):
        if wanted == "*":
            if not label:
                return False
        elif label != wanted:
            return False
    port = _port(u)
    if port == -1:
        return False
    default = _DEFAULT_PORTS.get(u.scheme.lower())
    actual = port if port is not None else default
    pattern_port = p.netloc.rsplit(":", 1)[1] if p.netloc.count(":") == 1 else None
    if pattern_port == "*":
        pass
    elif pattern_port is not None:
        if str(actual) != pattern_port:
            return False
    elif actual != default:
        return False
    prefix = p.path.rstrip("/")
    path = u.path.rstrip("/")
    # Dot segments would let `/api/../x` pass a prefix check while reaching another path.
    if any(seg in (".", "..") for seg in u.path.split("/")):
        return False
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _check_url(field_name: str, url: str, allow_loopback: bool) -> str | None:
    parts = urlsplit(url.strip())
    problem = host_problem(parts, allow_loopback)
    return f"{field_name} {url!r} {problem}" if problem else None


def check(spec: SyncSpec, lists: Allowlists, *, default_image: str) -> PolicyVerdict:
    """Judge the author's choices. The default runtime image is always allowed."""
    verdict = PolicyVerdict()

    def refuse(reason: str, message: str) -> None:
        verdict.violations.append(Violation(reason, message))

    images = (default_image, *lists.runtime_images)
    image = spec.runtime.image
    if image and not image_allowed(image, images):
        refuse(
            REASON_IMAGE,
            f"spec.runtime.image {image!r} is not in the operator's runtime image allowlist "
            f"({', '.join(images)}); remove the field or ask the operator's administrators to allow it",
        )

    opencti_url = spec.opencti.url
    problem = _check_url("spec.opencti.url", opencti_url, lists.allow_loopback)
    scheme = urlsplit(opencti_url.strip()).scheme.lower()
    if problem:
        refuse(REASON_URL, problem)
    elif scheme not in {s.lower() for s in lists.opencti_schemes}:
        refuse(
            REASON_URL,
            f"spec.opencti.url uses {scheme}://, but the operator allows only "
            f"{', '.join(s + '://' for s in lists.opencti_schemes)}",
        )

    sekoia_url = spec.sekoia.url
    problem = _check_url("spec.sekoia.url", sekoia_url, lists.allow_loopback)
    if problem:
        refuse(REASON_URL, problem)
    elif not any(url_matches(sekoia_url, p) for p in lists.sekoia_urls):
        refuse(
            REASON_URL,
            f"spec.sekoia.url {sekoia_url!r} matches none of the operator's Sekoia.io URL patterns "
            f"({', '.join(lists.sekoia_urls)})",
        )

    rt = spec.runtime
    for key in sorted(rt.pod_annotations or {}):
        if not key_allowed(key, lists.pod_annotation_keys):
            refuse(
                REASON_POD_FIELD, f"spec.runtime.podAnnotations key {key!r} is not allowed by the operator"
            )
    for toleration in rt.tolerations or []:
        key = str(toleration.get("key") or "")
        # A toleration without a key tolerates every taint: only a bare `*` entry allows it.
        allowed = "*" in lists.toleration_keys if not key else key_allowed(key, lists.toleration_keys)
        if not allowed:
            refuse(
                REASON_POD_FIELD,
                f"spec.runtime.tolerations: a toleration of key {key or '(any)'!r} is not allowed by the "
                "operator",
            )
    if rt.priority_class_name and rt.priority_class_name not in lists.priority_class_names:
        refuse(
            REASON_POD_FIELD,
            f"spec.runtime.priorityClassName {rt.priority_class_name!r} is not allowed by the operator",
        )
    for key in sorted(rt.node_selector or {}):
        if not key_allowed(key, lists.node_selector_keys):
            refuse(REASON_POD_FIELD, f"spec.runtime.nodeSelector key {key!r} is not allowed by the operator")
    if rt.affinity and not lists.allow_affinity:
        refuse(REASON_POD_FIELD, "spec.runtime.affinity is not allowed by the operator")
    for secret in rt.image_pull_secrets or []:
        if not key_allowed(secret.name, lists.image_pull_secret_names):
            refuse(
                REASON_POD_FIELD,
                f"spec.runtime.imagePullSecrets {secret.name!r} is not among the pull Secrets the operator "
                "allows",
            )
    for problem in resource_problems(rt.resources, lists.max_resources):
        refuse(REASON_POD_FIELD, f"spec.runtime.resources.{problem}")
    return verdict


def quantity_at_most(value: object, maximum: str) -> bool:
    """Whether a Kubernetes quantity is at most `maximum` (False when it is not a quantity)."""
    try:
        return bool(parse_quantity(value) <= parse_quantity(maximum))
    except (ValueError, TypeError, ArithmeticError):
        return False


def resource_problems(
    resources: Mapping[str, Mapping[str, object]] | None, maxima: Iterable[tuple[str, str]]
) -> list[str]:
    """What in `resources` exceeds a maximum, each as `<requests|limits>.<name> ...`; no resources
    (the defaults apply) exceed nothing."""
    if resources is None:
        return []
    problems = []
    for name, maximum in maxima:
        limit = (resources.get("limits") or {}).get(name)
        request = (resources.get("requests") or {}).get(name)
        if limit is None:
            problems.append(f"limits.{name} must be set (at most {maximum}): the operator bounds {name}")
        elif not quantity_at_most(limit, maximum):
            problems.append(f"limits.{name} {limit} exceeds the operator's maximum {maximum}")
        if request is not None and not quantity_at_most(request, maximum):
            problems.append(f"requests.{name} {request} exceeds the operator's maximum {maximum}")
    return problems
