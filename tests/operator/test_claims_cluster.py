"""The collection claim, the webhook's admission rules and child ownership against a real control plane.

Every episode that could run two runtimes on one collection is sampled every 200 ms (kwok marks
scheduled Pods Running) and must never show two running runtime Pods of the collection.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from sekoia_intel_operator import claims, naming, workload
from sekoia_intel_operator.spec import parse_spec
from test_operator_cluster import (
    GROUP,
    PLURAL,
    VERSION,
    WAIT,
    Operator,
    condition,
    create,
    create_secret,
    get,
    manifest,
    wait_condition,
)

from testbed.controlplane.certs import WEBHOOK_CLIENT_NAME
from testbed.processes import free_port, wait_until

pytestmark = pytest.mark.cluster

RUNTIME_PODS = f"{naming.LABEL_MANAGED_BY}={naming.MANAGED_BY}"


# ----------------------------------------------------------------------------------------- helpers
@pytest.fixture
def second_namespace(cluster: Any) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


class RunningPods:
    """Samples the runtime Pods in Running phase across namespaces every 200 ms, in a thread."""

    def __init__(self, api: dict[str, Any], namespaces: list[str]) -> None:
        self.api, self.namespaces = api, namespaces
        self.max = 0
        self.worst: list[str] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> list[str]:
        running = []
        for ns in self.namespaces:
            for pod in self.api["core"].list_namespaced_pod(ns, label_selector=RUNTIME_PODS).items:
                if pod.status.phase == "Running":
                    running.append(f"{ns}/{pod.metadata.name}")
        return running

    def _run(self) -> None:
        while not self._stop.is_set():
            running = self.now()
            self.samples += 1
            if len(running) > self.max:
                self.max, self.worst = len(running), running
            self._stop.wait(0.2)

    @contextmanager
    def sampling(self) -> Iterator[RunningPods]:
        """Sample while the block runs and 3 s after it (a late second runtime would show there)."""
        self._thread.start()
        try:
            yield self
            time.sleep(3)
        finally:
            self._stop.set()
            self._thread.join(5)


@contextmanager
def pods_kept(cluster: Any, api: dict[str, Any], namespace: str, owner_uid: str) -> Iterator[None]:
    """Make the runtime Pods of one resource slow to stop, as a real runtime draining its batch
    would be: a ValidatingAdmissionPolicy refuses their deletion until the block ends (kwok would
    otherwise remove a deleted Pod at once, hiding any overlap)."""
    name = f"keep-{uuid.uuid4().hex[:8]}"
    label = naming.LABEL_UID
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["DELETE"],
                        "resources": ["pods"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "!has(oldObject.metadata.labels)"
                    f" || !('{label}' in oldObject.metadata.labels)"
                    f" || oldObject.metadata.labels['{label}'] != '{owner_uid}'",
                    "message": "kept running by the test",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [policy, binding]})
    )
    (pod,) = api["core"].list_namespaced_pod(namespace, label_selector=f"{label}={owner_uid}").items

    def effective() -> bool:
        done = cluster.kubectl(
            "-n", namespace, "delete", "pod", pod.metadata.name, "--dry-run=server", check=False
        )
        return done.returncode != 0 and "kept running by the test" in done.stderr

    wait_until(effective, WAIT, "the Pod deletion block to take effect")
    try:
        yield
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding", name, "--ignore-not-found")
        cluster.kubectl("delete", "validatingadmissionpolicy", name, "--ignore-not-found")


def wait_waiting_for_previous(api: dict[str, Any], namespace: str, name: str, op: Operator) -> None:
    """`name` holds the claim but holds its runtime back while another runtime still runs."""
    wait_condition(api, namespace, name, "Reconciling", "True", "WaitingForPreviousRuntime", op)
    obj = get(api, namespace, name)
    assert condition(obj, "CollectionClaimed")["status"] == "True"


def lease_holder_uid(api: dict[str, Any], namespace: str, coll: str) -> str | None:
    try:
        lease = api["coordination"].read_namespaced_lease(naming.claim_name(coll), namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return str((lease.metadata.annotations or {}).get(claims.ANNOTATION_HOLDER_UID))


def scaled_up(api: dict[str, Any], namespaces: list[str]) -> list[str]:
    return [
        f"{ns}/{d.metadata.name}"
        for ns in namespaces
        for d in api["apps"].list_namespaced_deployment(ns).items
        if (d.spec.replicas or 0) > 0
    ]


def wait_sole_runtime(
    api: dict[str, Any], namespace: str, name: str, namespaces: list[str], op: Operator
) -> None:
    """`name` holds and runs; every other resource of the collection waits; one Deployment scaled up."""
    wait_condition(api, namespace, name, "Ready", "True", "Synchronizing", op)
    obj = get(api, namespace, name)
    expected = [f"{namespace}/{obj['status']['runtime']['deploymentName']}"]
    wait_until(
        lambda: scaled_up(api, namespaces) == expected,
        WAIT,
        f"only {expected} scaled up",
        on_timeout=lambda: f"{scaled_up(api, namespaces)}\n{op.log_text()[-3000:]}",
    )


def webhook_args(cluster: Any, port: int, config_name: str) -> list[str]:
    pki = cluster.pki
    return [
        "--webhook",
        "--webhook-addr",
        "127.0.0.1",
        "--webhook-host",
        "127.0.0.1",
        "--webhook-port",
        str(port),
        "--webhook-certfile",
        str(pki.serving_cert),
        "--webhook-keyfile",
        str(pki.serving_key),
        "--webhook-cafile",
        str(pki.ca_cert),
        "--webhook-client-cafile",
        str(pki.ca_cert),
        "--webhook-client-name",
        WEBHOOK_CLIENT_NAME,
        "--webhook-config-name",
        config_name,
    ]


@contextmanager
def webhook_operator(
    cluster: Any, start: Callable[..., Operator], namespace: str
) -> Iterator[tuple[Operator, int]]:
    config_name = f"{namespace}.{GROUP}"
    port = free_port()
    op = start(*webhook_args(cluster, port, config_name))
    try:
        wait_until(
            lambda: (
                cluster.kubectl("get", "validatingwebhookconfiguration", config_name, check=False).returncode
                == 0
            ),
            WAIT,
            "the operator to register its webhook",
            on_timeout=op.log_text,
        )
        yield op, port
    finally:
        op.stop()
        cluster.kubectl("delete", "validatingwebhookconfiguration", config_name, "--ignore-not-found")


def legacy_lease(api: dict[str, Any], namespace: str, url: str, coll: str, holder: dict[str, Any]) -> str:
    """A claim Lease exactly as the URL-keyed operator versions wrote it."""
    name = naming.legacy_claim_name(url, coll)
    identity = f"{holder['metadata']['namespace']}/{holder['metadata']['name']}"
    api["coordination"].create_namespaced_lease(
        namespace,
        {
            "metadata": {
                "name": name,
                "labels": dict(claims.LEASE_LABELS),
                "annotations": {
                    claims.ANNOTATION_HOLDER: identity,
                    claims.ANNOTATION_HOLDER_UID: holder["metadata"]["uid"],
                    claims.ANNOTATION_COLLECTION: f"{naming.canonical_api_root(url)}/{coll}",
                },
            },
            "spec": {"holderIdentity": identity},
        },
    )
    return name


def claim_leases(api: dict[str, Any], namespace: str) -> list[str]:
    return sorted(
        lease.metadata.name
        for lease in api["coordination"].list_namespaced_lease(namespace).items
        if lease.metadata.name.startswith(naming.CLAIM_PREFIX)
    )


# --------------------------------------------------------------------------------------------- claim
def test_url_spellings_in_two_namespaces_give_one_runtime(
    start_operator: Callable[..., Operator], api: dict[str, Any], namespace: str, second_namespace: str
) -> None:
    both = [namespace, second_namespace]
    op = start_operator("--namespace", second_namespace)
    coll = str(uuid.uuid4())
    spellings = {
        (namespace, "plain"): "https://api.sekoia.io",
        (second_namespace, "full-path"): "https://api.sekoia.io/v2/inthreat/ioc-collections",
        (namespace, "trailing-dot"): "https://api.sekoia.io./",
        # Dot segments (`/./`) are refused by the operator's URL policy (tests/operator/test_policy.py);
        # case, an explicit default port and a trailing slash are the other spellings that remain.
        (second_namespace, "port-and-case"): "https://API.Sekoia.io:443/v2/inthreat/ioc-collections/",
    }
    for ns in both:
        create_secret(api, ns)
    pods = RunningPods(api, both)
    with pods.sampling():
        for (ns, name), url in spellings.items():
            create(api, ns, manifest(name, coll, sekoia={"url": url, "collectionId": coll}))
            time.sleep(1.1)  # distinct creation times: "plain" is the oldest
        wait_sole_runtime(api, namespace, "plain", both, op)
        for ns, name in list(spellings)[1:]:
            obj = wait_condition(api, ns, name, "Stalled", "True", "CollectionConflict", op)
            assert f"{namespace}/plain" in condition(obj, "CollectionClaimed")["message"]
        for _ in range(10):  # and it stays that way
            assert len(scaled_up(api, both)) == 1
            time.sleep(0.3)
    assert pods.samples >= 15 and pods.max <= 1, pods.worst
    assert claim_leases(api, namespace) == [naming.claim_name(coll)]


def test_lease_migrated_then_deleted_and_edited_is_restored_for_the_oldest_never_two_running(
    cluster: Any, start_operator: Callable[..., Operator], api: dict[str, Any], namespace: str
) -> None:
    create_secret(api, namespace)
    coll = str(uuid.uuid4())
    older = create(api, namespace, manifest("older", coll))
    time.sleep(1.1)
    younger = create(
        api,
        namespace,
        manifest("younger", coll, sekoia={"url": "https://api.sekoia.io/v2/", "collectionId": coll}),
    )
    # State left by a URL-keyed version in which `younger` won the claim: it keeps it on upgrade.
    old_name = legacy_lease(api, namespace, "https://api.sekoia.io/v2/", coll, younger)
    op = start_operator()
    pods = RunningPods(api, [namespace])
    with pods.sampling():
        wait_sole_runtime(api, namespace, "younger", [namespace], op)
        assert claim_leases(api, namespace) == [naming.claim_name(coll)]  # the old-named Lease is gone
        assert lease_holder_uid(api, namespace, coll) == younger["metadata"]["uid"]
        wait_condition(api, namespace, "older", "Stalled", "True", "CollectionConflict", op)

        # Deleted by hand: restored for the OLDEST resource (not the previous holder, not whoever
        # reconciles first); the older runtime starts only once the younger one has stopped.
        with pods_kept(cluster, api, namespace, younger["metadata"]["uid"]):
            api["coordination"].delete_namespaced_lease(naming.claim_name(coll), namespace)
            wait_waiting_for_previous(api, namespace, "older", op)
            # Restored by the Lease watch (the timers would only recreate it for the oldest later).
            assert f"claim on collection {coll} restored for {namespace}/older" in op.log_text()
            time.sleep(2)  # the sampler keeps watching while the younger runtime lingers
        wait_sole_runtime(api, namespace, "older", [namespace], op)
        wait_condition(api, namespace, "younger", "Stalled", "True", "CollectionConflict", op)
        assert lease_holder_uid(api, namespace, coll) == older["metadata"]["uid"]

        # Edited by hand to name the younger resource: restored for the oldest at once.
        identity = f"{namespace}/younger"
        api["coordination"].patch_namespaced_lease(
            naming.claim_name(coll),
            namespace,
            {
                "metadata": {
                    "annotations": {
                        claims.ANNOTATION_HOLDER_UID: younger["metadata"]["uid"],
                        claims.ANNOTATION_HOLDER: identity,
                    }
                },
                "spec": {"holderIdentity": identity},
            },
        )
        wait_until(
            lambda: lease_holder_uid(api, namespace, coll) == older["metadata"]["uid"],
            WAIT,
            "the edited Lease to name the oldest again",
            on_timeout=op.log_text,
        )
        wait_sole_runtime(api, namespace, "older", [namespace], op)
        for _ in range(10):
            time.sleep(0.3)
        assert old_name not in claim_leases(api, namespace)
    assert pods.samples >= 15 and pods.max <= 1, pods.worst


def test_finalizer_removed_by_hand_never_two_running(
    cluster: Any, start_operator: Callable[..., Operator], api: dict[str, Any], namespace: str
) -> None:
    op = start_operator()
    create_secret(api, namespace)
    coll = str(uuid.uuid4())
    create(api, namespace, manifest("holder", coll))
    wait_sole_runtime(api, namespace, "holder", [namespace], op)
    create(api, namespace, manifest("waiter", coll))
    wait_condition(api, namespace, "waiter", "Stalled", "True", "CollectionConflict", op)
    holder = get(api, namespace, "holder")
    holder_child = holder["status"]["runtime"]["deploymentName"]

    pods = RunningPods(api, [namespace])
    with pods.sampling():
        with pods_kept(cluster, api, namespace, holder["metadata"]["uid"]):
            # Deleted, and its finalizer removed by hand while the operator is stopping its runtime:
            # the resource vanishes at once; its Pods go later, by garbage collection.
            api["custom"].delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "holder")
            api["custom"].patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, "holder", {"metadata": {"finalizers": None}}
            )
            wait_until(
                lambda: (
                    not api["custom"].list_namespaced_custom_object(
                        GROUP, VERSION, namespace, PLURAL, field_selector="metadata.name=holder"
                    )["items"]
                ),
                WAIT,
                "the resource to vanish",
            )
            wait_waiting_for_previous(api, namespace, "waiter", op)
            time.sleep(2)
        wait_sole_runtime(api, namespace, "waiter", [namespace], op)
        wait_until(
            lambda: (
                holder_child
                not in {d.metadata.name for d in api["apps"].list_namespaced_deployment(namespace).items}
            ),
            WAIT,
            "the old runtime's garbage collection",
        )
    assert pods.samples >= 15 and pods.max <= 1, pods.worst


# ------------------------------------------------------------------------------------------- webhook
def test_waiting_resource_is_deleted_promptly_while_the_webhook_is_on(
    cluster: Any, start_operator: Callable[..., Operator], api: dict[str, Any], namespace: str
) -> None:
    plain = start_operator()
    create_secret(api, namespace)
    coll = str(uuid.uuid4())
    create(api, namespace, manifest("holder", coll))
    wait_condition(api, namespace, "holder", "Ready", "True", op=plain)
    create(api, namespace, manifest("waiter", coll))  # no webhook yet: a waiter can exist
    wait_condition(api, namespace, "waiter", "Stalled", "True", "CollectionConflict", plain)
    plain.stop()

    with webhook_operator(cluster, start_operator, namespace) as (op, _):
        rejected = cluster.kubectl(
            "-n", namespace, "apply", "-f", "-", input=json.dumps(manifest("third", coll)), check=False
        )
        assert rejected.returncode != 0 and f"already synced by {namespace}/holder" in rejected.stderr
        # Metadata-only updates of a waiter pass (kopf's own annotation and finalizer patches).
        cluster.kubectl("-n", namespace, "annotate", PLURAL, "waiter", "team=blue")
        api["custom"].delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "waiter")

        def gone() -> bool:
            try:
                get(api, namespace, "waiter")
            except ApiException as exc:
                return exc.status == 404
            return False

        wait_until(gone, 10, "the waiting resource to be deleted", on_timeout=op.log_text)
        # The holder can still be deleted and edited as well.
        cluster.kubectl("-n", namespace, "annotate", PLURAL, "holder", "team=red")


def _review(obj: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": str(uuid.uuid4()),
                "kind": {"group": GROUP, "version": VERSION, "kind": "SekoiaIntelSync"},
                "resource": {"group": GROUP, "version": VERSION, "resource": PLURAL},
                "operation": "CREATE",
                "namespace": obj["metadata"]["namespace"],
                "name": obj["metadata"]["name"],
                "object": obj,
                "userInfo": {"username": "forger"},
                "dryRun": False,
            },
        }
    ).encode()


def test_forged_admission_requests_are_refused(
    cluster: Any, start_operator: Callable[..., Operator], namespace: str
) -> None:
    pki = cluster.pki
    body = manifest("probe", str(uuid.uuid4()))
    body["metadata"]["namespace"] = namespace
    with webhook_operator(cluster, start_operator, namespace) as (op, port):
        url = f"https://127.0.0.1:{port}/validate"

        def post(context: ssl.SSLContext) -> dict[str, Any]:
            request = urllib.request.Request(
                url, data=_review(body), headers={"Content-Type": "application/json"}, method="POST"
            )
            with urllib.request.urlopen(request, context=context, timeout=10) as resp:
                return dict(json.loads(resp.read())["response"])

        # No client certificate: the TLS handshake fails, nothing is answered.
        anonymous = ssl.create_default_context(cafile=str(pki.ca_cert))
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            post(anonymous)
        # A certificate from the same CA but for another identity (a cluster user): refused.
        user = ssl.create_default_context(cafile=str(pki.ca_cert))
        user.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        answer = post(user)
        assert answer["allowed"] is False and answer["status"]["code"] == 403
        # The API server's own certificate is answered.
        apiserver = ssl.create_default_context(cafile=str(pki.ca_cert))
        apiserver.load_cert_chain(str(pki.webhook_client_cert), str(pki.webhook_client_key))
        assert post(apiserver)["allowed"] is True, op.log_text()[-2000:]
        # And the API server itself goes through (it presents that certificate).
        created = cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(body), check=False)
        assert created.returncode == 0, created.stderr


# ------------------------------------------------------------------------------------------ children
def test_names_that_used_to_collide_get_distinct_owned_children(
    start_operator: Callable[..., Operator], api: dict[str, Any], namespace: str
) -> None:
    op = start_operator()
    create_secret(api, namespace)
    names = ["a" * 60, "a" * 50 + "-11ee3912"]
    for name in names:
        create(api, namespace, manifest(name, str(uuid.uuid4())))
    children = set()
    for name in names:
        obj = wait_condition(api, namespace, name, "Ready", "True", "Synchronizing", op)
        dep = api["apps"].read_namespaced_deployment(obj["status"]["runtime"]["deploymentName"], namespace)
        assert [r.uid for r in dep.metadata.owner_references] == [obj["metadata"]["uid"]]
        assert len(dep.metadata.name) <= 63
        children.add(dep.metadata.name)
    assert len(children) == 2


def _foreign_deployment(name: str) -> dict[str, Any]:
    labels = {"app": f"foreign-{uuid.uuid4().hex[:6]}"}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "registry.local/someone-else:1",
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "runAsNonRoot": True,
                                "runAsUser": 1000,
                                "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                        }
                    ]
                },
            },
        },
    }


def test_an_unowned_object_with_a_child_name_is_never_patched_or_deleted(
    start_operator: Callable[..., Operator], api: dict[str, Any], namespace: str
) -> None:
    op = start_operator()
    create_secret(api, namespace)
    coll = str(uuid.uuid4())
    create(api, namespace, manifest("holder", coll))
    wait_condition(api, namespace, "holder", "Ready", "True", op=op)
    waiter = create(api, namespace, manifest("feed", coll))
    wait_condition(api, namespace, "feed", "Stalled", "True", "CollectionConflict", op)
    # Someone else's Deployments under the waiter's child name and under the name earlier versions
    # gave (`sis-feed`, which a waiter used to delete every 30 s, owned or not).
    taken = naming.child_name(namespace, "feed", waiter["metadata"]["uid"])
    foreign = {
        n: api["apps"].create_namespaced_deployment(namespace, _foreign_deployment(n))
        for n in (taken, "sis-feed")
    }
    for _ in range(3):  # several waiter reconciliations
        api["custom"].patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "feed",
            {"metadata": {"annotations": {"poke": uuid.uuid4().hex}}},
        )
        time.sleep(1)

    # The waiter becomes the holder: its child name is taken, so it stalls and touches nothing.
    api["custom"].delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "holder")
    obj = wait_condition(api, namespace, "feed", "Stalled", "True", "ChildNameTaken", op)
    assert taken in condition(obj, "Stalled")["message"]
    assert condition(obj, "CollectionClaimed")["status"] == "True"
    for name, before in foreign.items():
        after = api["apps"].read_namespaced_deployment(name, namespace)
        assert after.metadata.uid == before.metadata.uid
        assert not after.metadata.owner_references
        assert after.spec.template.metadata.labels == before.spec.template.metadata.labels
        assert after.spec.template.spec.containers[0].image == "registry.local/someone-else:1"
        assert "sekoia-intel-operator" not in {m.manager for m in after.metadata.managed_fields or []}

    # Once the name is free, the runtime starts under it.
    api["apps"].delete_namespaced_deployment(taken, namespace)
    api["custom"].patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "feed", {"metadata": {"annotations": {"poke": "free"}}}
    )
    obj = wait_condition(api, namespace, "feed", "Ready", "True", "Synchronizing", op)
    assert obj["status"]["runtime"]["deploymentName"] == taken
    assert (
        api["apps"].read_namespaced_deployment("sis-feed", namespace).metadata.uid
        == foreign["sis-feed"].metadata.uid
    )


def test_children_named_the_old_way_are_kept_on_upgrade(
    cluster: Any, start_operator: Callable[..., Operator], api: dict[str, Any], namespace: str
) -> None:
    create_secret(api, namespace)
    coll = str(uuid.uuid4())
    obj = create(api, namespace, manifest("feed", coll))
    uid = obj["metadata"]["uid"]
    # What an earlier version left: a runtime Deployment named `sis-feed`, owned by the resource,
    # applied by the operator's field manager (the shape is today's, the name is the old one).
    ref = workload.SyncRef(namespace, "feed", uid, legacy_child="sis-feed")
    legacy = workload.desired_deployment(
        ref, parse_spec(obj["spec"]), credentials_fingerprint=None, replicas=1
    )
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=sekoia-intel-operator", "-f", "-", input=json.dumps(legacy)
    )
    before = api["apps"].read_namespaced_deployment("sis-feed", namespace)
    legacy_lease(api, namespace, "https://api.sekoia.io", coll, obj)

    op = start_operator()
    obj = wait_condition(api, namespace, "feed", "Ready", "True", "Synchronizing", op)
    assert obj["status"]["runtime"]["deploymentName"] == "sis-feed"
    deps = api["apps"].list_namespaced_deployment(namespace).items
    assert [d.metadata.name for d in deps] == ["sis-feed"] and deps[0].metadata.uid == before.metadata.uid
    assert deps[0].spec.template.spec.service_account_name == "sis-feed"
    assert claim_leases(api, namespace) == [naming.claim_name(coll)]
    assert lease_holder_uid(api, namespace, coll) == uid


def test_upgrade_from_url_keyed_claims_never_runs_two(
    cluster: Any, start_operator: Callable[..., Operator], api: dict[str, Any], namespace: str
) -> None:
    """What the URL-keyed versions left when two spellings split one collection: two old-named
    Leases, and the younger resource's runtime running from a Deployment without the collection
    label. On upgrade the older resource's claim wins and its runtime starts only after the other
    one is gone."""
    create_secret(api, namespace)
    coll = str(uuid.uuid4())
    older = create(api, namespace, manifest("older", coll))
    time.sleep(1.1)
    full = "https://api.sekoia.io/v2/inthreat/ioc-collections"
    younger = create(api, namespace, manifest("younger", coll, sekoia={"url": full, "collectionId": coll}))
    ref = workload.SyncRef(namespace, "younger", younger["metadata"]["uid"], legacy_child="sis-younger")
    old_runtime = workload.desired_deployment(
        ref, parse_spec(younger["spec"]), credentials_fingerprint=None, replicas=1
    )
    for labels in (old_runtime["metadata"]["labels"], old_runtime["spec"]["template"]["metadata"]["labels"]):
        del labels[naming.LABEL_COLLECTION]  # earlier versions did not label the collection
    for obj in (workload.desired_service_account(ref), old_runtime):
        cluster.kubectl(
            "apply",
            "--server-side",
            "--field-manager=sekoia-intel-operator",
            "-f",
            "-",
            input=json.dumps(obj),
        )
    pods = RunningPods(api, [namespace])
    wait_until(lambda: len(pods.now()) == 1, WAIT, "the old runtime Pod to run")
    legacy_lease(api, namespace, "https://api.sekoia.io", coll, older)
    legacy_lease(api, namespace, full, coll, younger)

    with pods.sampling(), pods_kept(cluster, api, namespace, younger["metadata"]["uid"]):
        op = start_operator()
        wait_waiting_for_previous(api, namespace, "older", op)
        wait_condition(api, namespace, "younger", "Stalled", "True", "CollectionConflict", op)
        assert claim_leases(api, namespace) == [naming.claim_name(coll)]
        assert lease_holder_uid(api, namespace, coll) == older["metadata"]["uid"]
        time.sleep(2)
    wait_sole_runtime(api, namespace, "older", [namespace], op)
    assert pods.samples >= 15 and pods.max <= 1, pods.worst
