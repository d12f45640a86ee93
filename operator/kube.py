"""Thin I/O layer over the `kubernetes` client: the few calls the reconciler makes, returning plain
dicts (camelCase, exactly as the API server sends them) so the pure modules never see client models.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import claims, naming
from .claimant_index import ClaimantIndex, holder_of
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


class ChildNameTaken(Exception):
    """An object with a child's name exists but its ownerReferences do not name the resource: the
    operator never adopts, patches or deletes it."""

    def __init__(self, kind: str, namespace: str, name: str) -> None:
        super().__init__(
            f"a {kind} named {name!r} already exists in namespace {namespace!r} and is not owned by this "
            "resource; the operator leaves it alone: delete or rename it, or re-create this resource"
        )
        self.kind, self.name = kind, name


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    """Whether an object's ownerReferences name the resource with that uid."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid for ref in refs)


@dataclass(frozen=True)
class CollectionRuntime:
    """A runtime Deployment or Pod of some collection, and the resource it says it belongs to."""

    kind: str
    namespace: str
    name: str
    owner_uid: str
    sync_name: str


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
        #: Fed by the operator's watch of its resources; None (tests, tools) = ask the API server.
        self.claimant_index: ClaimantIndex | None = None

    # --- generic -----------------------------------------------------------------------------------
    def _call(self, path: str, method: str, **kwargs: Any) -> Any:
        return self.api_client.call_api(
            path,
            method,
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=False,
            _request_timeout=self.timeout,
            **kwargs,
        )

    def read_child(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A child-kind object by name, or None."""
        path = _COLLECTIONS[(api_version, kind)].format(namespace=namespace, name=name)
        try:
            return _decode(self._call(path, "GET", header_params={"Accept": "application/json"}))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def apply_owned(self, obj: dict[str, Any], owner_uid: str) -> dict[str, Any]:
        """Server-side apply a child, but only if it is absent or already owned by `owner_uid`.

        Raises ChildNameTaken otherwise. An existing object is applied with its resourceVersion as a
        precondition, so one replaced by a stranger between the read and the write is not adopted;
        a precondition that failed because a controller wrote the status meanwhile is read again.
        """
        meta = obj["metadata"]
        for attempt in range(3):
            existing = self.read_child(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
            body = obj
            if existing is not None:
                if not owned_by(existing, owner_uid):
                    raise ChildNameTaken(obj["kind"], meta["namespace"], meta["name"])
                version = existing["metadata"]["resourceVersion"]
                body = {**obj, "metadata": {**meta, "resourceVersion": version}}
            try:
                return self.apply(body)
            except ApiException as exc:
                if exc.status != 409 or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply `obj` (forcing ownership of our fields) and return the stored object.

        Callers use `apply_owned`, which refuses objects of someone else."""
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

    def delete_owned_deployment(self, namespace: str, name: str, owner_uid: str) -> bool:
        """Delete that Deployment and, in the foreground, its Pods, only if `owner_uid` owns it (the
        uid and resourceVersion read are preconditions). True if one was deleted."""
        found = self.read_deployment(namespace, name)
        if found is None or not owned_by(found, owner_uid):
            return False
        meta = found["metadata"]
        try:
            self.apps.delete_namespaced_deployment(
                name,
                namespace,
                body=client.V1DeleteOptions(
                    propagation_policy="Foreground",
                    preconditions=client.V1Preconditions(
                        uid=meta["uid"], resource_version=meta["resourceVersion"]
                    ),
                ),
                _request_timeout=self.timeout,
            )
            return True
        except ApiException as exc:
            if exc.status in (404, 409):
                return False  # gone, or changed since read: the next reconciliation looks again
            raise

    def collection_runtimes(self, collection: str) -> list[CollectionRuntime]:
        """Every Deployment scaled above zero and every Pod labelled with that collection, in the
        served namespaces, whoever they belong to (even a resource that no longer exists)."""
        selector = f"{naming.LABEL_COLLECTION}={collection}"
        found: list[CollectionRuntime] = []
        for kind, items in (
            ("Deployment", self._list_labelled(self.apps, "deployment", selector)),
            ("Pod", self._list_labelled(self.core, "pod", selector)),
        ):
            for item in items:
                meta = item.get("metadata") or {}
                if kind == "Deployment" and not int((item.get("spec") or {}).get("replicas") or 0):
                    continue
                found.append(
                    CollectionRuntime(
                        kind,
                        str(meta.get("namespace", "")),
                        str(meta.get("name", "")),
                        str((meta.get("labels") or {}).get(naming.LABEL_UID, "")),
                        str((meta.get("annotations") or {}).get(naming.ANNOTATION_SYNC_NAME, "")),
                    )
                )
        return found

    def _list_labelled(self, api: Any, kind: str, selector: str) -> list[dict[str, Any]]:
        kwargs = {"label_selector": selector, "_preload_content": False, "_request_timeout": self.timeout}
        if self.namespaces is None:
            return list(_decode(getattr(api, f"list_{kind}_for_all_namespaces")(**kwargs)).get("items", []))
        items: list[dict[str, Any]] = []
        for namespace in self.namespaces:
            items += _decode(getattr(api, f"list_namespaced_{kind}")(namespace, **kwargs)).get("items", [])
        return items

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
                namespace, body, field_manager=FIELD_MANAGER, _request_timeout=self.kube.timeout
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
                name, namespace, body, field_manager=FIELD_MANAGER, _request_timeout=self.kube.timeout
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

    def resource(self, namespace: str, name: str) -> claims.Holder | None:
        """The resource if it exists (even while being deleted)."""
        if not namespace or not name:
            return None
        obj = self.kube.get_sync(namespace, name)
        return holder_of(obj) if obj else None

    def claimants(self, collection: str) -> list[claims.Holder]:
        """Resources whose spec names that collection (those being deleted flagged): from the
        in-memory index once the watch feeds it, else listed from the API server."""
        index = self.kube.claimant_index
        if index is not None and index.primed:
            return index.claimants(collection)
        found = []
        for obj in self.kube.list_syncs():
            try:
                spec = parse_spec(obj.get("spec"))
            except SpecError:
                continue
            if spec.sekoia.collection_uuid == collection:
                found.append(holder_of(obj))
        return found

    def claim_leases(self, namespace: str) -> list[dict[str, Any]]:
        """Every claim Lease of the namespace, selected by the labels the operator puts on them."""
        selector = ",".join(f"{k}={v}" for k, v in sorted(claims.LEASE_LABELS.items()))
        return list(
            _decode(
                self.kube.coordination.list_namespaced_lease(
                    namespace,
                    label_selector=selector,
                    _preload_content=False,
                    _request_timeout=self.kube.timeout,
                )
            ).get("items", [])
        )
