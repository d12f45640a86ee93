"""The desired children for a spec: restricted, least-privilege, credentials only by reference."""

from __future__ import annotations

import json
from typing import Any

from operator_helpers import COLLECTION, STREAM, raw_spec
from sekoia_intel_operator import naming, workload
from sekoia_intel_operator.spec import parse_spec

REF = workload.SyncRef(namespace="intel", name="feed", uid="11111111-2222-4333-8444-555555555555")
CHILD = naming.child_name(REF.namespace, REF.name, REF.uid)


def _deployment(spec: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    kw.setdefault("credentials_fingerprint", "abc123")
    kw.setdefault("replicas", 1)
    return workload.desired_deployment(REF, parse_spec(spec or raw_spec()), **kw)


def _env(dep: dict[str, Any]) -> dict[str, Any]:
    container = dep["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_deployment_shape() -> None:
    dep = _deployment()
    assert dep["metadata"]["name"] == CHILD == naming.child_name("intel", "feed", REF.uid)
    assert dep["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "sync.sekoia-intel.dev/v1alpha1",
            "kind": "SekoiaIntelSync",
            "name": "feed",
            "uid": REF.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    spec = dep["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["selector"]["matchLabels"] == {naming.LABEL_UID: REF.uid}
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == CHILD
    # Every runtime says which collection it feeds, so the next holder of the claim can wait for it.
    collection = raw_spec()["sekoia"]["collectionId"]
    assert dep["metadata"]["labels"][naming.LABEL_COLLECTION] == collection
    assert spec["template"]["metadata"]["labels"][naming.LABEL_COLLECTION] == collection
    container = pod["containers"][0]
    assert container["command"] == ["connector-runtime", "run"]
    assert container["image"] == workload.DEFAULT_RUNTIME_IMAGE
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["ports"][0]["containerPort"] == 8080
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["resources"] == workload.DEFAULT_RESOURCES


def test_security_context_meets_the_restricted_profile() -> None:
    pod = _deployment()["spec"]["template"]["spec"]
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    csc = pod["containers"][0]["securityContext"]
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert csc["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in pod["containers"][0]["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert "hostNetwork" not in pod and "hostPID" not in pod


def test_env_uses_seed_names_and_secret_refs_only() -> None:
    spec = raw_spec(
        credentialsSecretRef={"name": "creds", "openctiTokenKey": "tok", "sekoiaApiKeyKey": "key"},
        sekoia={"collectionId": f"ioc-collection--{COLLECTION}", "url": "https://api.eu2.sekoia.io"},
        push={
            "batchSize": 50,
            "requestsPerSecond": 2.5,
            "maxCoarsening": "widened",
            "coarseValidity": "week",
        },
        connector={"logLevel": "debug"},
        opencti={"url": "https://octi", "streamId": STREAM, "listenDelete": False},
    )
    env = _env(_deployment(spec))
    assert env["OPENCTI_TOKEN"] == {"secretKeyRef": {"name": "creds", "key": "tok"}}
    assert env["SEKOIA_INTEL_APIKEY"] == {"secretKeyRef": {"name": "creds", "key": "key"}}
    assert env["OPENCTI_URL"] == "https://octi"
    assert env["CONNECTOR_ID"] == naming.connector_id(REF.uid)
    assert env["CONNECTOR_NAME"] == "feed"
    assert env["CONNECTOR_SCOPE"] == "indicator"
    assert env["CONNECTOR_LOG_LEVEL"] == "debug"
    assert env["CONNECTOR_LIVE_STREAM_ID"] == STREAM
    assert env["CONNECTOR_LIVE_STREAM_LISTEN_DELETE"] == "false"
    assert env["CONNECTOR_LIVE_STREAM_NO_DEPENDENCIES"] == "true"
    assert env["SEKOIA_INTEL_URL"] == "https://api.eu2.sekoia.io"
    assert env["SEKOIA_INTEL_IOC_COLLECTION_UUID"] == COLLECTION
    assert env["SEKOIA_INTEL_BATCH_SIZE"] == "50"
    assert env["SEKOIA_INTEL_REQUESTS_PER_SECOND"] == "2.5"
    assert env["SEKOIA_INTEL_MAX_COARSENING"] == "widened"
    assert env["SEKOIA_INTEL_COARSE_VALIDITY"] == "week"
    assert env["SEKOIA_INTEL_VALIDITY_GRANULARITY"] == "exact"
    assert env["RUNTIME_HTTP_PORT"] == "8080"
    assert env["RUNTIME_STATUS_RESOURCE"] == "intel/feed"
    # Every env entry has either a literal value or a secretKeyRef, never an inline credential.
    container = _deployment(spec)["spec"]["template"]["spec"]["containers"][0]
    assert all(("value" in e) != ("valueFrom" in e) for e in container["env"])


def test_credentials_fingerprint_is_only_in_the_pod_template() -> None:
    dep = _deployment(credentials_fingerprint="f00d")
    assert dep["spec"]["template"]["metadata"]["annotations"][naming.ANNOTATION_CREDENTIALS_HASH] == "f00d"
    other = _deployment(credentials_fingerprint="beef")
    assert other["spec"]["template"] != dep["spec"]["template"]  # rotation rolls the Pod
    assert _deployment()["spec"]["template"] == _deployment()["spec"]["template"]  # stable otherwise


def test_runtime_overrides_are_applied() -> None:
    overrides = {
        "image": "registry.local/sis:1.2.3",
        "imagePullPolicy": "Always",
        "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}},
        "nodeSelector": {"pool": "intel"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {}},
        "podAnnotations": {"prometheus.io/scrape": "true"},
        "priorityClassName": "high",
    }
    dep = _deployment(raw_spec(runtime=overrides))
    pod = dep["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.local/sis:1.2.3"
    assert container["imagePullPolicy"] == "Always"
    assert container["resources"] == overrides["resources"]
    assert pod["nodeSelector"] == {"pool": "intel"}
    assert pod["tolerations"] == overrides["tolerations"]
    assert pod["affinity"] == {"nodeAffinity": {}}
    assert pod["priorityClassName"] == "high"
    assert dep["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def test_default_image_comes_from_the_operator() -> None:
    dep = _deployment(default_image="mirror.local/sis:9")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "mirror.local/sis:9"


def test_replicas_follow_suspend_and_credentials() -> None:
    spec = parse_spec(raw_spec())
    assert workload.desired_replicas(spec, credentials_valid=True) == 1
    assert workload.desired_replicas(spec, credentials_valid=None) == 1
    assert workload.desired_replicas(spec, credentials_valid=False) == 0
    assert workload.desired_replicas(parse_spec(raw_spec(suspend=True)), credentials_valid=True) == 0


def test_role_only_allows_own_status() -> None:
    role = workload.desired_role(REF)
    assert role["rules"] == [
        {
            "apiGroups": ["sync.sekoia-intel.dev"],
            "resources": ["sekoiaintelsyncs/status"],
            "resourceNames": ["feed"],
            "verbs": ["get", "patch"],
        },
        {
            "apiGroups": ["sync.sekoia-intel.dev"],
            "resources": ["sekoiaintelsyncs"],
            "resourceNames": ["feed"],
            "verbs": ["get"],
        },
    ]
    binding = workload.desired_role_binding(REF)
    assert binding["roleRef"]["name"] == CHILD
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": CHILD, "namespace": "intel"}]


def test_children_keep_a_legacy_name_when_told_to() -> None:
    legacy = workload.SyncRef("intel", "feed", REF.uid, legacy_child="sis-feed")
    children = workload.desired_children(
        legacy,
        parse_spec(raw_spec()),
        default_image="i:1",
        credentials_fingerprint=None,
        credentials_valid=None,
    )
    assert {c["metadata"]["name"] for c in children} == {"sis-feed"}
    assert children[-1]["spec"]["template"]["spec"]["serviceAccountName"] == "sis-feed"


def test_children_are_all_owned_and_ordered_identity_first() -> None:
    children = workload.desired_children(
        REF, parse_spec(raw_spec()), default_image="i:1", credentials_fingerprint=None, credentials_valid=None
    )
    assert [c["kind"] for c in children] == ["ServiceAccount", "Role", "RoleBinding", "Deployment"]
    for child in children:
        assert child["metadata"]["ownerReferences"][0]["uid"] == REF.uid
        assert child["metadata"]["labels"][naming.LABEL_MANAGED_BY] == naming.MANAGED_BY
    # JSON-serialisable as is (server-side apply body).
    json.dumps(children)
