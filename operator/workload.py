"""Desired child objects of a SekoiaIntelSync, as plain dicts ready for server-side apply.

Pure functions: no I/O, no clock. The same inputs always give the same objects, so applying them again
is a no-op and a restarted operator converges to exactly what it produced before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import naming, tls
from .pod_defaults import DEFAULT_RESOURCES as DEFAULT_RESOURCES  # re-exported for callers and tests
from .pod_defaults import RuntimePodDefaults, merge_into
from .spec import DEFAULT_MAX_TLP, SyncSpec

DEFAULT_RUNTIME_IMAGE = "ghcr.io/sekoia-intel-sync/sekoia-intel-sync:0.1.0"
RUNTIME_COMMAND = ["connector-runtime", "run"]
RUNTIME_PORT = 8080
RUNTIME_UID = 10001
CONTAINER_NAME = "runtime"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"


@dataclass(frozen=True)
class SyncRef:
    """Identity of the resource that owns the children."""

    namespace: str
    name: str
    uid: str
    #: Name of the children when they keep a name given by an earlier version (see reconcile).
    legacy_child: str | None = None

    @property
    def child(self) -> str:
        """Name of the Deployment, ServiceAccount, Role and RoleBinding."""
        return self.legacy_child or naming.child_name(self.namespace, self.name, self.uid)


def owner_reference(ref: SyncRef) -> dict[str, Any]:
    """Controller owner reference: children are garbage-collected with the resource."""
    return {
        "apiVersion": f"{naming.API_GROUP}/{naming.API_VERSION}",
        "kind": naming.KIND,
        "name": ref.name,
        "uid": ref.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def selector_labels(ref: SyncRef) -> dict[str, str]:
    """Labels that select exactly this resource's runtime Pods (the uid never changes, unlike labels
    derived from names, which may be too long for a label value)."""
    return {naming.LABEL_UID: ref.uid}


def common_labels(ref: SyncRef) -> dict[str, str]:
    """Labels on every child object."""
    return {
        "app.kubernetes.io/name": "sekoia-intel-sync",
        "app.kubernetes.io/component": "connector-runtime",
        "app.kubernetes.io/instance": ref.child,
        naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
        **selector_labels(ref),
    }


def _metadata(ref: SyncRef) -> dict[str, Any]:
    return {
        "name": ref.child,
        "namespace": ref.namespace,
        "labels": common_labels(ref),
        "annotations": {naming.ANNOTATION_SYNC_NAME: ref.name},
        "ownerReferences": [owner_reference(ref)],
    }


def child_metadata(ref: SyncRef) -> dict[str, Any]:
    """Name, labels, annotations and owner reference shared by every child object."""
    return _metadata(ref)


def desired_service_account(ref: SyncRef) -> dict[str, Any]:
    """The runtime's own identity (one per resource, so it can be confined to that resource)."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(ref)}


def desired_role(ref: SyncRef) -> dict[str, Any]:
    """Least privilege for the runtime: read its resource, read and patch only its status."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(ref),
        "rules": [
            {
                "apiGroups": [naming.API_GROUP],
                "resources": [f"{naming.PLURAL}/status"],
                "resourceNames": [ref.name],
                "verbs": ["get", "patch"],
            },
            {
                "apiGroups": [naming.API_GROUP],
                "resources": [naming.PLURAL],
                "resourceNames": [ref.name],
                "verbs": ["get"],
            },
        ],
    }


def desired_role_binding(ref: SyncRef) -> dict[str, Any]:
    """Binds the Role to the ServiceAccount, both of the same name."""
    name = ref.child
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(ref),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ref.namespace}],
    }


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _bool(value: bool) -> str:
    return "true" if value else "false"


def runtime_env(ref: SyncRef, spec: SyncSpec) -> list[dict[str, Any]]:
    """Environment of the runtime container, with the seed connector's variable names.

    Credentials only travel as secretKeyRef: their values never appear in the Deployment.
    """
    creds = spec.credentials_secret_ref

    def plain(name: str, value: str) -> dict[str, Any]:
        return {"name": name, "value": value}

    return [
        plain("OPENCTI_URL", spec.opencti.url),
        _secret_env("OPENCTI_TOKEN", creds.name, creds.opencti_token_key),
        plain("CONNECTOR_ID", naming.connector_id(ref.uid)),
        plain("CONNECTOR_NAME", spec.connector.name or ref.name),
        plain("CONNECTOR_SCOPE", "indicator"),
        plain("CONNECTOR_LOG_LEVEL", spec.connector.log_level),
        plain("CONNECTOR_LIVE_STREAM_ID", spec.opencti.stream_id),
        plain("CONNECTOR_LIVE_STREAM_LISTEN_DELETE", _bool(spec.opencti.listen_delete)),
        plain("CONNECTOR_LIVE_STREAM_NO_DEPENDENCIES", _bool(spec.opencti.no_dependencies)),
        plain("SEKOIA_INTEL_URL", spec.sekoia.url),
        _secret_env("SEKOIA_INTEL_APIKEY", creds.name, creds.sekoia_api_key_key),
        plain("SEKOIA_INTEL_IOC_COLLECTION_UUID", spec.sekoia.collection_uuid),
        plain("SEKOIA_INTEL_BATCH_SIZE", str(spec.push.batch_size)),
        plain("SEKOIA_INTEL_REQUESTS_PER_SECOND", f"{spec.push.requests_per_second:g}"),
        plain("SEKOIA_INTEL_MAX_COARSENING", spec.push.max_coarsening),
        plain("SEKOIA_INTEL_VALIDITY_GRANULARITY", spec.push.validity_granularity),
        plain("SEKOIA_INTEL_COARSE_VALIDITY", spec.push.coarse_validity),
        plain("RUNTIME_HTTP_PORT", str(RUNTIME_PORT)),
        plain("RUNTIME_STATUS_RESOURCE", naming.status_resource(ref.namespace, ref.name)),
        *tls.tls_env(spec),
        *markings_env(spec),
        *resync_env(spec),
    ]


def resync_env(spec: SyncSpec) -> list[dict[str, Any]]:
    """A resync request for the runtime: a new date or token changes the Pod template, which
    rolls the runtime; the runtime itself remembers which token it has honoured."""
    opencti = spec.opencti
    if not opencti.resync_from:
        return []
    return [
        {"name": "RUNTIME_RESYNC_FROM", "value": opencti.resync_from},
        {"name": "RUNTIME_RESYNC_TOKEN", "value": opencti.resync_token or opencti.resync_from},
    ]


def markings_env(spec: SyncSpec) -> list[dict[str, Any]]:
    """The sharing guardrail's variables, only where the spec departs from the runtime's defaults:
    a resource that does not use the guardrail keeps the Pod template it had (no roll on upgrade)."""
    markings = spec.push.markings
    env: list[dict[str, Any]] = []
    if markings.max_tlp != DEFAULT_MAX_TLP:
        env.append({"name": "SEKOIA_INTEL_MARKINGS_MAX_TLP", "value": markings.max_tlp})
    if markings.max_pap is not None:
        env.append({"name": "SEKOIA_INTEL_MARKINGS_MAX_PAP", "value": markings.max_pap})
    # JSON arrays: marking names may contain commas.
    if markings.allowed:
        env.append({"name": "SEKOIA_INTEL_MARKINGS_ALLOWED", "value": json.dumps(list(markings.allowed))})
    if markings.refused:
        env.append({"name": "SEKOIA_INTEL_MARKINGS_REFUSED", "value": json.dumps(list(markings.refused))})
    if markings.unmarked != "push":
        env.append({"name": "SEKOIA_INTEL_MARKINGS_UNMARKED", "value": markings.unmarked})
    return env


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def desired_replicas(spec: SyncSpec, *, credentials_valid: bool | None) -> int:
    """1 when the runtime should run, 0 when suspended or when its credentials are known to be invalid
    (a Pod that cannot start would only add a crash loop on top of the precise condition)."""
    if spec.suspend or credentials_valid is False:
        return 0
    return 1


def desired_deployment(
    ref: SyncRef,
    spec: SyncSpec,
    *,
    default_image: str = DEFAULT_RUNTIME_IMAGE,
    credentials_fingerprint: str | None,
    replicas: int,
    pod_defaults: RuntimePodDefaults | None = None,
) -> dict[str, Any]:
    """The runtime Deployment: one replica at most, `Recreate` so two runtimes never read the same
    stream at once, restricted security context, probes on the runtime's health endpoints; the
    platform's Pod defaults combined with the resource's own fields (pod_defaults.merge_into)."""
    rt = spec.runtime
    name = ref.child
    pod_annotations = dict(rt.pod_annotations or {})
    pod_annotations[naming.ANNOTATION_SYNC_NAME] = ref.name
    if credentials_fingerprint:
        # Changes when a referenced Secret value changes, which rolls the Pod to pick it up.
        pod_annotations[naming.ANNOTATION_CREDENTIALS_HASH] = credentials_fingerprint

    ca_volumes, ca_mounts = tls.tls_volumes(spec)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": rt.image or default_image,
        "command": list(RUNTIME_COMMAND),
        "env": runtime_env(ref, spec),
        "ports": [{"name": "http", "containerPort": RUNTIME_PORT, "protocol": "TCP"}],
        "livenessProbe": _probe("/healthz", 20, 3),
        "readinessProbe": _probe("/readyz", 10, 3),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": RUNTIME_UID,
            "runAsGroup": RUNTIME_UID,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *ca_mounts],
    }
    if rt.image_pull_policy:
        container["imagePullPolicy"] = rt.image_pull_policy

    pod_spec: dict[str, Any] = {
        "serviceAccountName": name,
        "automountServiceAccountToken": True,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNTIME_UID,
            "runAsGroup": RUNTIME_UID,
            "fsGroup": RUNTIME_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}, *ca_volumes],
    }
    container["resources"] = merge_into(pod_spec, rt, pod_defaults or RuntimePodDefaults())

    # The collection label lets the next holder of the claim see this runtime even after this resource
    # is gone (its Pods outlive it until garbage collection).
    labels = {**common_labels(ref), naming.LABEL_COLLECTION: spec.sekoia.collection_uuid}
    metadata = _metadata(ref)
    metadata["labels"] = {**metadata["labels"], naming.LABEL_COLLECTION: spec.sekoia.collection_uuid}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": 300,
            "selector": {"matchLabels": selector_labels(ref)},
            "template": {
                "metadata": {"labels": labels, "annotations": pod_annotations},
                "spec": pod_spec,
            },
        },
    }


def desired_children(
    ref: SyncRef,
    spec: SyncSpec,
    *,
    default_image: str,
    credentials_fingerprint: str | None,
    credentials_valid: bool | None,
    pod_defaults: RuntimePodDefaults | None = None,
) -> list[dict[str, Any]]:
    """All children in apply order: identity first, so the Pod never starts without its account."""
    return [
        desired_service_account(ref),
        desired_role(ref),
        desired_role_binding(ref),
        desired_deployment(
            ref,
            spec,
            default_image=default_image,
            credentials_fingerprint=credentials_fingerprint,
            replicas=desired_replicas(spec, credentials_valid=credentials_valid),
            pod_defaults=pod_defaults,
        ),
    ]
