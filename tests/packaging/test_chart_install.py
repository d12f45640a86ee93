"""The chart in the real control plane, with real helm, and the operator under the chart's identity.

kwok plays the kubelet: the chart's operator Pods are admitted, scheduled and marked Running, but
never execute. So the operator process runs here, with the arguments and environment of the
chart's Deployment and a token of the chart's ServiceAccount (TokenRequest API): whatever it can
or cannot do is exactly what the chart's RBAC grants.

The chart's webhook is left out of the end-to-end run here: the API server would call it through
the Service's ClusterIP, which nothing routes under kwok (no kube-proxy). Its certificate wiring is
checked in the cluster-wide test; the whole call path (ClusterIP, kube-proxy, the operator Pod) in
tests/node/test_real_operator_pod.py on the real node.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from packaging_helpers import CHART, CRD, EXAMPLES, ArgoHealth, kstatus

from testbed.processes import ManagedProcess, free_port, wait_until

pytestmark = pytest.mark.cluster

OPERATOR_BIN = Path(sys.executable).parent / "sekoia-intel-operator"
GROUP, VERSION, PLURAL = "sync.sekoia-intel.dev", "v1alpha1", "sekoiaintelsyncs"
WAIT = 90


# ------------------------------------------------------------------------------------------ helpers
@pytest.fixture
def make_namespace(cluster: Any) -> Iterator[Callable[..., str]]:
    """Factory for extra namespaces; SekoiaIntelSyncs left behind lose their finalizer at teardown
    (after an uninstall no operator remains to remove it, and the namespace would never go)."""
    made: list[str] = []

    def make(*labels: str) -> str:
        name = f"p-{uuid.uuid4().hex[:8]}"
        cluster.kubectl("create", "namespace", name)
        if labels:
            cluster.kubectl("label", "namespace", name, *labels)
        made.append(name)
        return name

    yield make
    for name in made:
        out = cluster.kubectl("-n", name, "get", PLURAL, "-o", "name", check=False).stdout.split()
        for obj in out:
            cluster.kubectl(
                "-n",
                name,
                "patch",
                obj,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def helm_install(
    cluster: Any, release: str, namespace: str, *values: str, verb: str = "install", reuse: bool = False
) -> str:
    """Install or upgrade, waiting for the Deployment; returns helm's output (with NOTES.txt).

    The releases of these tests share the session's cluster, and one CRD can have only one Helm
    owner: they run with crds.enabled=false, the CRD applied from deploy/crds (README "CRDs",
    several releases). test_chart_crds_cluster tests the chart's own CRD handling."""
    ensure_crd(cluster)
    sets = ["--set", "crds.enabled=false"]
    sets += [arg for v in values for arg in ("--set", v)] + (["--reuse-values"] if reuse else [])
    return str(
        cluster.helm(verb, release, str(CHART), "-n", namespace, "--wait", "--timeout", "120s", *sets).stdout
    )


def find_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (obj,) = [d for d in docs if d["kind"] == kind]
    return obj


def deployment(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("-n", namespace, "get", "deployment", name, "-o", "json").stdout)


def get_sync(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("-n", namespace, "get", PLURAL, name, "-o", "json").stdout)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == kind), {})


def can_i(cluster: Any, sa: str, *args: str) -> bool:
    """`kubectl auth can-i` as the ServiceAccount (the admin impersonates it)."""
    done = cluster.kubectl("auth", "can-i", f"--as={sa}", *args, check=False)
    return done.stdout.strip() == "yes"


def ensure_crd(cluster: Any) -> None:
    """The CRD from deploy/crds, unless a release of an earlier test installed it already."""
    crd = f"customresourcedefinition/{PLURAL}.{GROUP}"
    if cluster.kubectl("get", crd, check=False).returncode:
        cluster.kubectl("create", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", crd, f"--timeout={WAIT}s")


def apply_examples(cluster: Any, tmp_path: Path, namespace: str) -> None:
    """deploy/examples through an overlay that only moves it to `namespace` (kubectl apply -k)."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "base").symlink_to(EXAMPLES)
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump({"namespace": namespace, "resources": ["base"]})
    )
    cluster.kubectl("apply", "-k", str(overlay))


class ChartOperator:
    """The operator process started as the chart's Deployment would start it."""

    def __init__(
        self, cluster: Any, namespace: str, name: str, sa: str, log_dir: Path, extra: list[str] | None = None
    ) -> None:
        spec = deployment(cluster, namespace, name)["spec"]["template"]["spec"]
        container = spec["containers"][0]
        assert spec["serviceAccountName"] == sa
        self.args = list(container["args"])
        fields = {
            "metadata.namespace": namespace,
            "metadata.name": "chart-operator-0",
            "spec.serviceAccountName": sa,
        }
        self.env = {
            e["name"]: e["value"] if "value" in e else fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
            for e in container["env"]
        }
        self.image = container["image"]
        self.log_dir = log_dir
        token = cluster.token_for(namespace, sa)
        self.kubeconfig = cluster.kubeconfig_for_token(token, log_dir / "operator.kubeconfig")
        self.liveness = free_port()
        # The chart's ports are fixed; here they must not collide with other processes, and
        # argparse keeps the last occurrence of a flag.
        overrides = ["--liveness-port", str(self.liveness), "--metrics-port", str(free_port())]
        env = {**os.environ, **self.env, "KUBECONFIG": str(self.kubeconfig)}
        argv = [str(OPERATOR_BIN), *self.args, *overrides, "--bind-address", "127.0.0.1", *(extra or [])]
        self.proc = ManagedProcess("chart-operator", argv, log_dir / "operator.log", env=env).start()
        wait_until(self._alive, 60, "the operator's liveness endpoint", on_timeout=self.log)

    def _alive(self) -> bool:
        if not self.proc.alive():
            raise AssertionError(f"operator exited:\n{self.log()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)

    def log(self) -> str:
        return self.proc.log_tail(6000)

    def full_log(self) -> str:
        return (self.log_dir / "operator.log").read_text(errors="replace")

    def stop(self) -> None:
        self.proc.stop(timeout=10)


def runtime_like(
    namespace: str,
    *,
    service_account: str = "sis-x",
    image: str = "",
    labelled: bool = True,
    tolerations: list[dict[str, Any]] | None = None,
    pull_secrets: list[str] | None = None,
    memory_limit: str = "512Mi",
) -> dict[str, Any]:
    """A Deployment shaped like a runtime's, for the admission policy to judge (resources within
    the chart's default policy.maxRuntimeResources unless `memory_limit` says otherwise)."""
    labels = {f"{GROUP}/uid": "u1"}
    if labelled:
        labels["app.kubernetes.io/managed-by"] = "sekoia-intel-operator"
    container = {
        "name": "runtime",
        "image": image or "ghcr.io/sekoia-intel-sync/sekoia-intel-sync:0.1.0",
        "resources": {"limits": {"memory": memory_limit, "ephemeral-storage": "256Mi"}},
    }
    pod: dict[str, Any] = {"serviceAccountName": service_account, "containers": [container]}
    if tolerations:
        pod["tolerations"] = tolerations
    if pull_secrets:
        pod["imagePullSecrets"] = [{"name": n} for n in pull_secrets]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "sis-x", "namespace": namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {f"{GROUP}/uid": "u1"}},
            "template": {
                "metadata": {"labels": {f"{GROUP}/uid": "u1"}},
                "spec": pod,
            },
        },
    }


def wait_for(cluster: Any, namespace: str, what: str, cond: str, op: ChartOperator) -> None:
    done = cluster.kubectl(
        "-n", namespace, "wait", f"--for=condition={cond}", what, f"--timeout={WAIT}s", check=False
    )
    assert done.returncode == 0, f"{done.stderr}\n--- operator log ---\n{op.log()}"


def forbidden(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ApiException as exc:
        return exc.status == 403
    return False


# -------------------------------------------------------------------------------------------- tests
def test_namespaced_install_reconciles_under_the_chart_identity(
    cluster: Any, make_namespace: Callable[..., str], tmp_path: Path
) -> None:
    # The release namespace enforces the restricted Pod Security profile: the chart's Pods must pass.
    release_ns = make_namespace(
        "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/enforce-version=latest"
    )
    watched, other, later = make_namespace(), make_namespace(), make_namespace()
    release, name = "e2e", "e2e-sekoia-intel-sync"
    notes = helm_install(
        cluster, release, release_ns, f"watchNamespaces={{{watched}}}", "webhook.enabled=false"
    )
    # NOTES.txt tells what to apply next, in a namespace the operator actually serves.
    assert f"kubectl -n {watched} create secret generic sis-credentials" in notes
    assert f"kubectl -n {watched} wait --for=condition=Ready sis/apt-feed" in notes
    pods = json.loads(cluster.kubectl("-n", release_ns, "get", "pods", "-o", "json").stdout)["items"]
    assert [p["status"]["phase"] for p in pods] == ["Running"], "the chart's Pod was not admitted"

    # The examples, applied before any operator runs: no status yet, so nothing is "done".
    apply_examples(cluster, tmp_path, watched)
    fresh = get_sync(cluster, watched, "apt-feed")
    argo = ArgoHealth()
    assert kstatus(fresh) == "InProgress" and argo(fresh)[0] == "Progressing"

    op = ChartOperator(cluster, release_ns, name, name, tmp_path)
    try:
        assert f"--namespace={watched}" in op.args and f"--peering={release_ns}-{name}" in op.args
        wait_for(cluster, watched, "sis/apt-feed", "Ready", op)
        obj = get_sync(cluster, watched, "apt-feed")
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
        assert (kstatus(obj), argo(obj)[0]) == ("Current", "Healthy")
        runtime = deployment(cluster, watched, obj["status"]["runtime"]["deploymentName"])
        assert runtime["spec"]["template"]["spec"]["containers"][0]["image"] == op.image  # one image
        peering = json.loads(
            cluster.kubectl("-n", watched, "get", "kopfpeering", f"{release_ns}-{name}", "-o", "json").stdout
        )
        assert "chart-operator-0" in (peering.get("status") or {}), "the operator did not join its peering"

        # What this identity must be refused.
        api = cluster.api_client(op.kubeconfig)
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        coordination = client.CoordinationV1Api(api)
        admission = client.AdmissionregistrationV1Api(api)
        cluster.kubectl("-n", other, "create", "secret", "generic", "elsewhere", "--from-literal=k=v")
        assert core.read_namespaced_secret("sis-credentials", watched).metadata.name == "sis-credentials"
        assert forbidden(lambda: core.read_namespaced_secret("elsewhere", other))
        assert forbidden(lambda: core.list_secret_for_all_namespaces())
        assert forbidden(lambda: apps.list_namespaced_deployment(other))
        assert forbidden(lambda: core.create_namespaced_secret(watched, {"metadata": {"name": "x"}}))
        lease = {"metadata": {"name": "x"}, "spec": {}}
        assert forbidden(lambda: coordination.create_namespaced_lease(watched, lease))
        vwc = {"metadata": {"name": "x"}, "webhooks": []}
        assert forbidden(lambda: admission.create_validating_webhook_configuration(vwc))

        # A second resource for the same collection: Stalled, which Flux and Argo CD read as failure.
        second = yaml.safe_load((EXAMPLES / "sekoiaintelsync.yaml").read_text())
        second["metadata"] = {"name": "second", "namespace": watched}
        cluster.kubectl("apply", "-f", "-", input=json.dumps(second))
        wait_for(cluster, watched, "sis/second", "Stalled", op)
        obj = get_sync(cluster, watched, "second")
        assert condition(obj, "Stalled")["reason"] == "CollectionConflict"
        assert (kstatus(obj), argo(obj)[0]) == ("Failed", "Degraded")

        # Suspension is a desired state: Healthy for kstatus, Suspended for Argo CD.
        cluster.kubectl(
            "-n", watched, "patch", "sis/apt-feed", "--type=merge", "-p", '{"spec":{"suspend":true}}'
        )

        def suspended() -> bool:
            obj = get_sync(cluster, watched, "apt-feed")
            return bool(
                obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
                and condition(obj, "Ready").get("reason") == "Suspended"
                and condition(obj, "Ready").get("status") == "True"  # scaled down, no longer scaling
            )

        wait_until(suspended, WAIT, "Ready reason Suspended", on_timeout=op.log)
        obj = get_sync(cluster, watched, "apt-feed")
        assert (kstatus(obj), argo(obj)[0]) == ("Current", "Suspended")
    finally:
        op.stop()
    # Least privilege but complete: nothing the operator did was refused.
    assert "Forbidden" not in op.full_log(), op.full_log()

    # Upgrade with changed values: one more namespace and two replicas (peering makes that safe).
    helm_install(
        cluster,
        release,
        release_ns,
        f"watchNamespaces={{{watched},{later}}}",
        "replicaCount=2",
        verb="upgrade",
        reuse=True,
    )
    spec = deployment(cluster, release_ns, name)["spec"]
    assert spec["replicas"] == 2
    assert f"--namespace={later}" in spec["template"]["spec"]["containers"][0]["args"]
    cluster.kubectl("-n", later, "get", "role", name)
    cluster.kubectl("-n", later, "get", "kopfpeering", f"{release_ns}-{name}")
    assert can_i(cluster, f"system:serviceaccount:{release_ns}:{name}", "-n", later, "get", "secrets")

    # Uninstall: the operator and its RBAC go; the CRD, the resources and their runtimes stay.
    cluster.helm("uninstall", release, "-n", release_ns, "--wait", "--timeout", "120s")
    for args in (
        ("-n", release_ns, "get", "deployment", name),
        ("-n", release_ns, "get", "serviceaccount", name),
        ("-n", watched, "get", "role", name),
        ("get", "clusterrole", f"{release_ns}-{name}"),
    ):
        assert cluster.kubectl(*args, check=False).returncode != 0, f"still there: {args}"
    cluster.kubectl("-n", watched, "get", "deployment", runtime["metadata"]["name"])  # owned by its resource
    cluster.kubectl("get", "crd", f"{PLURAL}.{GROUP}")
    cluster.kubectl("get", "crd", "kopfpeerings.kopf.dev")
    assert sorted(cluster.kubectl("-n", watched, "get", PLURAL, "-o", "name").stdout.split()) == [
        f"sekoiaintelsync.{GROUP}/apt-feed",
        f"sekoiaintelsync.{GROUP}/second",
    ]


def test_cluster_wide_install_rbac_webhook_cert_and_upgrade(
    cluster: Any, make_namespace: Callable[..., str], tmp_path: Path
) -> None:
    release_ns = make_namespace(
        "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/enforce-version=latest"
    )
    elsewhere = make_namespace()
    release, name = "cw", "cw-sekoia-intel-sync"
    sa = f"system:serviceaccount:{release_ns}:{name}"
    helm_install(cluster, release, release_ns)  # default values: all namespaces, operator-made webhook cert
    try:
        args = deployment(cluster, release_ns, name)["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--all-namespaces" in args and "--webhook" in args
        # No cluster-wide Secret access with default values: not even `get` by name, until a
        # namespace binds the Secret reader.
        assert not can_i(cluster, sa, "list", "secrets", "--all-namespaces")
        assert not can_i(cluster, sa, "watch", "secrets", "--all-namespaces")
        assert not can_i(cluster, sa, "-n", elsewhere, "get", "secrets")
        assert can_i(cluster, sa, "-n", elsewhere, "patch", f"{PLURAL}.{GROUP}", "--subresource=status")
        assert can_i(cluster, sa, "-n", release_ns, "create", "leases.coordination.k8s.io")
        assert not can_i(cluster, sa, "-n", elsewhere, "create", "leases.coordination.k8s.io")
        assert not can_i(cluster, sa, "-n", elsewhere, "delete", "secrets")
        assert not can_i(cluster, sa, "create", "validatingwebhookconfigurations")
        vwc_name = f"{release_ns}-{name}"
        assert can_i(cluster, sa, "patch", f"validatingwebhookconfigurations/{vwc_name}")
        assert not can_i(cluster, sa, "patch", "validatingwebhookconfigurations/someone-else")
        # The webhook certificate's Secret by name; no other Secret of the release namespace.
        assert can_i(cluster, sa, "-n", release_ns, "update", f"secrets/{name}-webhook-tls")
        assert not can_i(cluster, sa, "-n", release_ns, "get", "secrets/other")
        assert not can_i(cluster, sa, "-n", release_ns, "list", "secrets")
        assert not can_i(cluster, sa, "-n", elsewhere, "create", "secrets")

        # RBAC lets it create Secrets in the release namespace; the chart's second admission policy
        # only the certificate's own (dry runs: nothing is left behind).
        def create_secret(secret_name: str) -> Any:
            body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret_name}}
            return cluster.kubectl(
                f"--as={sa}",
                "-n",
                release_ns,
                "create",
                "--dry-run=server",
                "-f",
                "-",
                input=json.dumps(body),
                check=False,
            )

        wait_until(
            lambda: "may only create its webhook certificate Secret" in create_secret("loot").stderr,
            60,
            "the webhook certificate ValidatingAdmissionPolicy to be in effect",
        )
        allowed = create_secret(f"{name}-webhook-tls")
        assert allowed.returncode == 0, allowed.stderr
        assert can_i(cluster, sa, "patch", f"clusterkopfpeerings.kopf.dev/{release_ns}-{name}")
        assert not can_i(cluster, sa, "patch", "clusterkopfpeerings.kopf.dev/someone-else")

        # RBAC lets this identity create Deployments anywhere; the chart's ValidatingAdmissionPolicy
        # refuses it one that runs under another ServiceAccount, or another image, or unlabelled.
        assert can_i(cluster, sa, "-n", elsewhere, "create", "deployments.apps")
        refused = [
            runtime_like(elsewhere, service_account="default"),
            runtime_like(elsewhere, image="evil.example/miner:1"),
            runtime_like(elsewhere, labelled=False),
            runtime_like(elsewhere, tolerations=[{"operator": "Exists"}]),
            runtime_like(elsewhere, pull_secrets=["someone-elses-robot"]),
            runtime_like(elsewhere, memory_limit="2049Mi"),
        ]
        messages = [
            "a runtime Deployment must run under its own ServiceAccount sis-x, not default",
            "runtime images must come from the allowlist",
            "may only write Deployments labelled app.kubernetes.io/managed-by=sekoia-intel-operator",
            "a runtime Pod may only use the annotations, tolerations, priority class",
            "a runtime Pod may only use the pull Secrets",
            "a runtime container must set limits, and limits and requests at most policy.maxRuntimeResources",
        ]
        # The API server loads a new ValidatingAdmissionPolicy asynchronously (type-checking, then
        # its informer): wait until it judges a server-side dry run before asserting.
        wait_until(
            lambda: (
                messages[0]
                in cluster.kubectl(
                    f"--as={sa}",
                    "apply",
                    "--dry-run=server",
                    "-f",
                    "-",
                    input=json.dumps(refused[0]),
                    check=False,
                ).stderr
            ),
            60,
            "the ValidatingAdmissionPolicy to be in effect",
        )
        for body, message in zip(refused, messages, strict=True):
            done = cluster.kubectl(f"--as={sa}", "apply", "-f", "-", input=json.dumps(body), check=False)
            assert done.returncode != 0 and message in done.stderr, done.stderr
            assert "ValidatingAdmissionPolicy" in done.stderr
        # The same identity may create a runtime-shaped one (dry run: nothing is left behind).
        cluster.kubectl(
            f"--as={sa}", "apply", "--dry-run=server", "-f", "-", input=json.dumps(runtime_like(elsewhere))
        )
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {
                "name": "sis-x",
                "namespace": elsewhere,
                "labels": {"app.kubernetes.io/managed-by": "sekoia-intel-operator", f"{GROUP}/uid": "u1"},
            },
            "rules": [{"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["get"]}],
        }
        # Server-side apply, as the operator writes: the identity has no `get` on Roles.
        done = cluster.kubectl(
            f"--as={sa}", "apply", "--server-side", "-f", "-", input=json.dumps(role), check=False
        )
        assert done.returncode != 0 and "a runtime Role may only grant" in done.stderr, done.stderr

        def served_cert() -> tuple[bytes, bytes]:
            vwc = json.loads(
                cluster.kubectl("get", "validatingwebhookconfiguration", vwc_name, "-o", "json").stdout
            )
            secret = json.loads(
                cluster.kubectl("-n", release_ns, "get", "secret", f"{name}-webhook-tls", "-o", "json").stdout
            )
            ca = base64.b64decode(vwc["webhooks"][0]["clientConfig"].get("caBundle", ""))
            return ca, base64.b64decode(secret["data"]["tls.crt"])

        # Nothing certificate-like until the operator runs: the chart renders none.
        assert cluster.kubectl(
            "-n", release_ns, "get", "secret", f"{name}-webhook-tls", check=False
        ).returncode
        # The operator, under the chart's ServiceAccount, makes the certificate and injects its CA.
        op = ChartOperator(
            cluster,
            release_ns,
            name,
            name,
            tmp_path,
            extra=[
                "--webhook-port",
                str(free_port()),
                "--webhook-addr",
                "127.0.0.1",
                "--webhook-client-cafile",
                str(cluster.pki.ca_cert),
            ],
        )
        try:
            wait_until(
                lambda: served_cert()[0] != b"", WAIT, "the operator to inject its CA", on_timeout=op.log
            )
        finally:
            op.stop()
        ca, cert = served_cert()
        parsed = x509.load_pem_x509_certificate(cert)
        parsed.verify_directly_issued_by(x509.load_pem_x509_certificate(ca))
        names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert f"{name}-webhook.{release_ns}.svc" in names.get_values_for_type(x509.DNSName)

        # What the operator changed on the chart's objects is invisible to a three-way diff of the
        # release's manifest (what `helm upgrade` and Argo CD's default diff compute): no drift...
        manifest = tmp_path / "release.yaml"
        rendered = cluster.helm("get", "manifest", release, "-n", release_ns).stdout
        manifest.write_text(rendered)
        diff = cluster.kubectl("diff", "-f", str(manifest), check=False)
        assert diff.returncode == 0, diff.stdout + diff.stderr
        # Server-side, as another field manager would apply the chart's webhook configuration (Argo CD
        # with ServerSideApply): the caBundle belongs to the operator's manager and is left alone.
        vwc_file = tmp_path / "vwc.yaml"
        docs = [d for d in yaml.safe_load_all(rendered) if d]
        vwc_file.write_text(yaml.safe_dump(find_kind(docs, "ValidatingWebhookConfiguration")))
        diff = cluster.kubectl(
            "diff",
            "--server-side",
            "--force-conflicts",
            "--field-manager=argocd-controller",
            "-f",
            str(vwc_file),
            check=False,
        )
        assert diff.returncode == 0, diff.stdout + diff.stderr
        # ...and an upgrade keeps the caBundle and the certificate; nothing rolls the Pods for it.
        before = deployment(cluster, release_ns, name)["spec"]["template"]["metadata"].get("annotations")
        helm_install(cluster, release, release_ns, "operator.logLevel=debug", verb="upgrade")
        assert served_cert() == (ca, cert)
        after = deployment(cluster, release_ns, name)["spec"]["template"]
        assert after["metadata"].get("annotations") == before
        assert "--verbose" in after["spec"]["containers"][0]["args"]
    finally:
        cluster.helm("uninstall", release, "-n", release_ns, "--wait", "--timeout", "120s", check=False)
    assert cluster.kubectl(
        "get", "validatingwebhookconfiguration", f"{release_ns}-{name}", check=False
    ).returncode
    assert cluster.kubectl("get", "clusterkopfpeering", f"{release_ns}-{name}", check=False).returncode
    # The operator-made Secret is owned by the chart's Service: the garbage collector removes it.
    wait_until(
        lambda: (
            cluster.kubectl("-n", release_ns, "get", "secret", f"{name}-webhook-tls", check=False).returncode
        ),
        WAIT,
        "the webhook certificate Secret to go with the release",
    )


def test_cluster_wide_operator_reads_a_secret_only_after_its_namespace_opts_in(
    cluster: Any, make_namespace: Callable[..., str], tmp_path: Path
) -> None:
    release_ns, team = make_namespace(), make_namespace()
    release, name = "ow", "ow-sekoia-intel-sync"
    helm_install(cluster, release, release_ns, "webhook.enabled=false")  # otherwise default values
    op = ChartOperator(cluster, release_ns, name, name, tmp_path)
    try:
        apply_examples(cluster, tmp_path, team)
        wait_for(cluster, team, "sis/apt-feed", "Stalled", op)
        obj = get_sync(cluster, team, "apt-feed")
        creds = condition(obj, "CredentialsValid")
        assert (creds["status"], creds["reason"]) == ("False", "SecretNotReadable")
        grant = (
            f"kubectl -n {team} create rolebinding sekoia-intel-sync-secrets "
            f"--clusterrole={release_ns}-{name}-secrets --serviceaccount={release_ns}:{name}"
        )
        assert grant in creds["message"], creds["message"]
        assert not json.loads(cluster.kubectl("-n", team, "get", "deployments", "-o", "json").stdout)["items"]

        # The namespace admin runs the command the status gives: the namespace has opted in.
        cluster.kubectl(*grant.split()[1:])
        wait_for(cluster, team, "sis/apt-feed", "Ready", op)
        runtime = obj["status"]["runtime"]["deploymentName"]
        pol = json.loads(cluster.kubectl("-n", team, "get", "networkpolicy", runtime, "-o", "json").stdout)
        uid = obj["metadata"]["uid"]
        assert pol["spec"]["podSelector"] == {"matchLabels": {f"{GROUP}/uid": uid}}
        # The operator's namespace may reach :8080 (the chart sets POD_NAMESPACE).
        sources = pol["spec"]["ingress"][0]["from"]
        assert sources == [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": release_ns}}}
        ]
        # Still nothing elsewhere: the grant is the namespace's, not the cluster's.
        sa = f"system:serviceaccount:{release_ns}:{name}"
        assert can_i(cluster, sa, "-n", team, "get", "secrets")
        assert not can_i(cluster, sa, "-n", team, "list", "secrets")
        assert not can_i(cluster, sa, "-n", release_ns, "get", "secrets")
    finally:
        op.stop()
        cluster.helm("uninstall", release, "-n", release_ns, "--wait", "--timeout", "120s", check=False)
    # Everything the operator wrote passed the admission policy and RBAC: no refusal in its log but
    # the one 403 that the status reported (the Secret read before the RoleBinding existed).
    refusals = [
        line for line in op.full_log().splitlines() if "denied request" in line or "forbidden" in line.lower()
    ]
    assert not [line for line in refusals if "secrets" not in line], refusals


def test_built_in_view_and_edit_roles_cover_sekoiaintelsyncs_and_explain_describes_them(
    cluster: Any, make_namespace: Callable[..., str]
) -> None:
    """The chart's aggregated ClusterRoles, folded by the real controller-manager into `view`/`edit`."""
    release_ns, team = make_namespace(), make_namespace()
    ensure_crd(cluster)
    # The API server publishes the schema's descriptions: `kubectl explain` has something to say.
    wait_until(
        lambda: (
            "summed over the live runtime Pods"
            in cluster.kubectl("explain", f"{PLURAL}.status.runtime.restarts", check=False).stdout
        ),
        WAIT,
        "kubectl explain to show the CRD's field descriptions",
    )
    rendered = cluster.helm(
        "template", "agg", str(CHART), "-n", release_ns, "--show-only", "templates/aggregated-roles.yaml"
    ).stdout
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(rendered) if d]
    cluster.kubectl("apply", "-f", "-", input=rendered)
    try:
        cluster.kubectl("-n", team, "create", "rolebinding", "viewer", "--clusterrole=view", "--user=vera")
        cluster.kubectl("-n", team, "create", "rolebinding", "editor", "--clusterrole=edit", "--user=ed")
        resource = f"{PLURAL}.{GROUP}"
        for user, verb in (("vera", "list"), ("ed", "create"), ("ed", "delete")):
            wait_until(
                lambda u=user, v=verb: can_i(cluster, u, "-n", team, v, resource),
                WAIT,
                f"{user} may {verb} {resource} (role aggregation)",
            )
        assert can_i(cluster, "vera", "-n", team, "get", resource)
        assert can_i(cluster, "vera", "-n", team, "watch", resource)
        for verb in ("create", "update", "patch", "delete"):
            assert not can_i(cluster, "vera", "-n", team, verb, resource), verb
        # Status belongs to the operator and the runtime, even for `edit`.
        assert not can_i(cluster, "ed", "-n", team, "patch", resource, "--subresource=status")
        # Namespaced grants stay in their namespace.
        assert not can_i(cluster, "ed", "-n", release_ns, "create", resource)
    finally:
        cluster.kubectl("delete", "clusterrole", *names, check=False)


def test_kubectl_get_is_narrow_and_wide_shows_the_ids_and_the_message(
    cluster: Any, make_namespace: Callable[..., str]
) -> None:
    """The API server's table for `kubectl get sis`, with the status an operator writes."""
    ensure_crd(cluster)
    team = make_namespace()
    cluster.kubectl("-n", team, "apply", "-f", str(EXAMPLES / "sekoiaintelsync.yaml"))
    message = "runtime is running and synchronising into https://api.sekoia.io/0a1b2c3d"
    status = {
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Synchronizing",
                    "message": message,
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
            "progress": {"valuesPushed": 107, "lagSeconds": 0.5},
            "budget": {"requestsPerSecond": 2.5},
        }
    }
    cluster.kubectl(
        "-n",
        team,
        "patch",
        f"{PLURAL}/apt-feed",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    header, row = cluster.kubectl("-n", team, "get", "sis").stdout.splitlines()
    assert header.split() == ["NAME", "READY", "REASON", "PUSHED", "LAG", "AGE"]
    assert row.split()[:5] == ["apt-feed", "True", "Synchronizing", "107", "0.5"]
    assert len(row) < 80, row  # was ~170 with both ids
    header, row = cluster.kubectl("-n", team, "get", "sis", "-o", "wide").stdout.splitlines()
    assert header.split() == [
        "NAME", "READY", "REASON", "PUSHED", "LAG", "SUSPENDED", "SHARE", "STREAM", "COLLECTION",
        "MESSAGE", "AGE",
    ]  # fmt: skip
    for value in (" 2.5 ", "5f3e1a2b-1111-4c2d-9e8f-0123456789ab", "ioc-collection--0a1b2c3d", message):
        assert value in row
