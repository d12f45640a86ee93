"""Thin I/O layer over the `kubernetes` client: the few calls the reconciler makes, returning plain
dicts (camelCase, exactly as the API server sends them) so the pure modules never see client models.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import claims, naming
from .spec import SpecError, parse_spec

FIELD_MANAGER = "sekoia-intel-operator"

# Paths for server-side apply of the child kinds the operator owns.
_COLLECTIONS = {
    ("v1", "ServiceAccount"): "/api/v1/namespaces/{namespace}/serviceaccounts/{name}",
    (
        "rbac.authorization.k8s.io/v1",
        "Role",
    ): "/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/{name}",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): (
        "/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings/{name}"
    ),
    ("apps/v1", "Deployment"): "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    ("networking.k8s.io/v1", "NetworkPolicy"): (
        "/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}"
    ),
}


def _decode(response: Any) -> dict[str, Any]:
    return json.loads(response.data or b"{}")


class Kube:
    """The operator's view of the cluster. Every call has a timeout so that a dead connection fails
    the handler (which kopf retries) instead of hanging it forever."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        namespaces: Iterable[str] | None = None,
        request_timeout: float = 30.0,
    ) -> None:
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.coordination = client.CoordinationV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        #: Namespaces whose resources the operator serves; None = the whole cluster.
        self.namespaces = list(namespaces) if namespaces is not None else None
        self.timeout = request_timeout

    # --- generic -----------------------------------------------------------------------------------
    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply `obj` (forcing ownership of our fields) and return the stored object."""
        meta = obj["metadata"]
        path = _COLLECTIONS[(obj["apiVersion"], obj["kind"])].format(
            namespace=meta["namespace"], name=meta["name"]
        )
        response = self.api_client.call_api(
            path,
            "PATCH",
            query_params=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
            body=obj,
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=False,
            _request_timeout=self.timeout,
        )
        return _decode(response)

    # --- SekoiaIntelSync ---------------------------------------------------------------------------
    def get_sync(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The resource, or None if it does not exist."""
        try:
            return _decode(
                self.custom.get_namespaced_custom_object(
                    naming.API_GROUP,
                    naming.API_VERSION,
                    namespace,
                    naming.PLURAL,
                    name,
                    _preload_content=False,
                    _request_timeout=self.timeout,
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_syncs(self) -> list[dict[str, Any]]:
        """All resources the operator serves."""
        items: list[dict[str, Any]] = []
        if self.namespaces is None:
            items.extend(
                _decode(
                    self.custom.list_cluster_custom_object(
                        naming.API_GROUP,
                        naming.API_VERSION,
                        naming.PLURAL,
                        _preload_content=False,
                        _request_timeout=self.timeout,
                    )
                ).get("items", [])
            )
            return items
        for namespace in self.namespaces:
            items.extend(
                _decode(
                    self.custom.list_namespaced_custom_object(
                        naming.API_GROUP,
                        naming.API_VERSION,
                        namespace,
                        naming.PLURAL,
                        _preload_content=False,
                        _request_timeout=self.timeout,
                    )
                ).get("items", [])
            )
        return items

    def patch_sync_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge-patch the status subresource (fields we do not send, like `progress`, are kept)."""
        self.custom.patch_namespaced_custom_object_status(
            naming.API_GROUP,
            naming.API_VERSION,
            namespace,
            naming.PLURAL,
            name,
            {"status": status},
            _request_timeout=self.timeout,
        )

    def poke(self, namespace: str, name: str, reason: str) -> None:
        """Make the operator reconcile that resource now (an annotation change is a kopf update)."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {"metadata": {"annotations": {naming.ANNOTATION_RECONCILE_REQUEST: f"{stamp} {reason}"}}}
        try:
            self.custom.patch_namespaced_custom_object(
                naming.API_GROUP,
                naming.API_VERSION,
                namespace,
                naming.PLURAL,
                name,
                body,
                _request_timeout=self.timeout,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    # --- children ----------------------------------------------------------------------------------
    def read_secret(self, namespace: str, name: str) -> tuple[bool, dict[str, str]]:
        """(exists, base64 data) of a Secret. Values stay encoded and never leave this process."""
        try:
            secret = _decode(
                self.core.read_namespaced_secret(
                    name, namespace, _preload_content=False, _request_timeout=self.timeout
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return False, {}
            raise
        return True, dict(secret.get("data") or {})

    def read_credentials_secret(
        self, namespace: str, name: str
    ) -> tuple[bool, dict[str, str], dict[str, str]]:
        """(exists, base64 data, labels) of the one Secret a resource references: a single `get`, the
        only access to Secrets the operator has (no list, no watch). 403 propagates to the caller."""
        try:
            secret = _decode(
                self.core.read_namespaced_secret(
                    name, namespace, _preload_content=False, _request_timeout=self.timeout
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return False, {}, {}
            raise
        labels = dict((secret.get("metadata") or {}).get("labels") or {})
        return True, dict(secret.get("data") or {}), labels

    def read_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Deployment, or None."""
        try:
            return _decode(
                self.apps.read_namespaced_deployment(
                    name, namespace, _preload_content=False, _request_timeout=self.timeout
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def delete_deployment(self, namespace: str, name: str) -> bool:
        """Delete the Deployment and, in the foreground, its Pods. True if there was one."""
        try:
            self.apps.delete_namespaced_deployment(
                name,
                namespace,
                body=client.V1DeleteOptions(propagation_policy="Foreground"),
                _request_timeout=self.timeout,
            )
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    def list_pods(self, namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        """Pods matching an equality label selector."""
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        return list(
            _decode(
                self.core.list_namespaced_pod(
                    namespace,
                    label_selector=label_selector,
                    _preload_content=False,
                    _request_timeout=self.timeout,
                )
            ).get("items", [])
        )


class KubeClaimBackend:
    """`claims.ClaimBackend` on a real API server."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def create_lease(self, namespace: str, body: dict[str, Any]) -> None:
        """Create; 409 means someone holds it already."""
        try:
            self.kube.coordination.create_namespaced_lease(
                namespace, body, _request_timeout=self.kube.timeout
            )
        except ApiException as exc:
            if exc.status == 409:
                raise claims.ClaimConflict(str(exc.reason)) from None
            raise

    def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Lease as a dict, or None."""
        try:
            return _decode(
                self.kube.coordination.read_namespaced_lease(
                    name, namespace, _preload_content=False, _request_timeout=self.kube.timeout
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def replace_lease(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        """Conditional replace (resourceVersion in the body); 409 = it changed, 404 = it was deleted."""
        try:
            self.kube.coordination.replace_namespaced_lease(
                name, namespace, body, _request_timeout=self.kube.timeout
            )
        except ApiException as exc:
            if exc.status in (404, 409):
                raise claims.ClaimConflict(str(exc.reason)) from None
            raise

    def delete_lease(self, namespace: str, name: str, resource_version: str, uid: str) -> None:
        """Conditional delete; absent is fine."""
        preconditions = client.V1Preconditions(resource_version=resource_version or None, uid=uid or None)
        try:
            self.kube.coordination.delete_namespaced_lease(
                name,
                namespace,
                body=client.V1DeleteOptions(preconditions=preconditions),
                _request_timeout=self.kube.timeout,
            )
        except ApiException as exc:
            if exc.status == 404:
                return
            if exc.status == 409:
                raise claims.ClaimConflict(str(exc.reason)) from None
            raise

    def resource_uid(self, namespace: str, name: str) -> str | None:
        """Uid of the resource if it exists (even while being deleted)."""
        if not namespace or not name:
            return None
        obj = self.kube.get_sync(namespace, name)
        return str(obj["metadata"]["uid"]) if obj else None

    def claimants(self, lease_name: str) -> list[claims.Holder]:
        """Resources not being deleted whose collection maps to `lease_name`."""
        found = []
        for obj in self.kube.list_syncs():
            meta = obj.get("metadata") or {}
            if meta.get("deletionTimestamp"):
                continue
            try:
                spec = parse_spec(obj.get("spec"))
            except SpecError:
                continue
            if naming.claim_name(spec.sekoia.url, spec.sekoia.collection_id) != lease_name:
                continue
            found.append(
                claims.Holder(
                    created=str(meta.get("creationTimestamp", "")),
                    namespace=str(meta.get("namespace", "")),
                    name=str(meta.get("name", "")),
                    uid=str(meta.get("uid", "")),
                )
            )
        return found
