"""The Helm chart without a cluster: lint, render each documented mode, schema rejections."""

from __future__ import annotations

import base64
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from packaging_helpers import CHART, CRD, find, helm, render, set_args

# The documented modes (chart README "Modes"); each must lint and render.
MODES: dict[str, dict[str, str]] = {
    "default": {},
    "namespaced": {"watchNamespaces": "{team-a,team-b}"},
    "cert-manager": {"webhook.certificate.source": "certManager"},
    "helm-certificate": {"webhook.certificate.source": "helm"},
    "cert-manager-issuer": {
        "webhook.certificate.source": "certManager",
        "webhook.certificate.certManager.issuerRef.name": "corp-ca",
        "webhook.certificate.certManager.issuerRef.kind": "ClusterIssuer",
    },
    "ha": {
        "replicaCount": "3",
        "networkPolicy.enabled": "true",
        "metrics.serviceMonitor.enabled": "true",
        "image.digest": "sha256:" + "a" * 64,
    },
    "minimal": {
        "webhook.enabled": "false",
        "peering.enabled": "false",
        "podDisruptionBudget.enabled": "false",
    },
}


def _deployment(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (deploy,) = find(objs, "Deployment")
    return deploy


def _rules(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj.get("rules") or [])


AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def _aggregated(role: dict[str, Any]) -> set[str]:
    """The built-in roles (view, edit, admin) this ClusterRole is folded into."""
    labels = role["metadata"].get("labels") or {}
    return {k.removeprefix(AGGREGATE) for k, v in labels.items() if k.startswith(AGGREGATE) and v == "true"}


def _operator_cluster_roles(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ClusterRoles for the operator's identity (not the ones aggregated into user roles)."""
    return [r for r in find(objs, "ClusterRole") if not _aggregated(r)]


def test_chart_crd_is_the_same_file_as_deploy_crds() -> None:
    chart_copy = CHART / "files" / "crds" / CRD.name
    assert chart_copy.read_bytes() == CRD.read_bytes(), "run `make chart-crds` after editing deploy/crds"
    # Not in crds/ as well: helm would install that copy first and the template would then collide.
    assert not (CHART / "crds" / CRD.name).exists()


def _sis_crd(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return find(objs, "CustomResourceDefinition", "sekoiaintelsyncs.sync.sekoia-intel.dev")


def test_the_rendered_crd_is_deploy_crds_plus_the_keep_policy_only() -> None:
    """The template turns the file into YAML and back (fromYaml/toYaml): nothing may change on the way
    (key order aside), so deploy/crds stays the one source of truth for either install route."""
    source = yaml.safe_load(CRD.read_text())
    (rendered,) = _sis_crd(render())
    annotations = rendered["metadata"].pop("annotations")
    assert annotations == {
        "helm.sh/resource-policy": "keep",
        "argocd.argoproj.io/sync-options": "Prune=false,Delete=false",
    }
    assert rendered == source
    (no_keep,) = _sis_crd(render({"crds.keep": "false"}))
    assert no_keep == source
    # crds.enabled=false: no SekoiaIntelSync CRD; kopf's peering CRDs still come from crds/.
    objs = render({"crds.enabled": "false"})
    assert not _sis_crd(objs)
    assert {c["metadata"]["name"] for c in find(objs, "CustomResourceDefinition")} == {
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    }


@pytest.mark.parametrize("mode", list(MODES))
def test_lint_and_template_each_mode(mode: str) -> None:
    done = helm("lint", "--strict", str(CHART), *set_args(MODES[mode]))
    assert "0 chart(s) failed" in done.stdout
    objs = render(MODES[mode])
    kinds = {o["kind"] for o in objs}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "Service", "CustomResourceDefinition"} <= kinds
    deploy = _deployment(objs)
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SIS_RUNTIME_IMAGE"] == container["image"]  # one image for operator and runtimes
    assert deploy["spec"]["replicas"] == int(MODES[mode].get("replicaCount", "1"))


def test_default_mode_is_cluster_wide_with_peering_and_an_operator_made_webhook_cert() -> None:
    objs = render()
    args = _deployment(objs)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" in args and "--peering=sis-system-rel-sekoia-intel-sync" in args
    assert "--claims-namespace=sis-system" in args
    cluster_role, secrets_role = _operator_cluster_roles(objs)
    resources = {r for rule in _rules(cluster_role) for r in rule["resources"]}
    assert {"sekoiaintelsyncs", "deployments", "networkpolicies", "clusterkopfpeerings"} <= resources
    # No cluster-wide Secret access: the Secret reader exists but nothing binds it.
    assert "secrets" not in resources
    assert _rules(secrets_role) == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    assert [b["roleRef"]["name"] for b in find(objs, "ClusterRoleBinding")] == [
        cluster_role["metadata"]["name"]
    ]
    assert [r["metadata"]["name"] for r in find(objs, "Role")] == [
        "rel-sekoia-intel-sync-claims",
        "rel-sekoia-intel-sync-webhook-cert",
    ]
    assert find(objs, "ClusterKopfPeering", "sis-system-rel-sekoia-intel-sync")

    # The operator makes and keeps the certificate: no Secret, no key material, no caBundle rendered
    # (they would differ on every `helm template`), and no Secret volume to wait for.
    assert not find(objs, "Secret")
    (vwc,) = find(objs, "ValidatingWebhookConfiguration")
    webhook = vwc["webhooks"][0]
    assert "caBundle" not in webhook["clientConfig"]
    for flag in (
        "--webhook-cert-secret=rel-sekoia-intel-sync-webhook-tls",
        "--webhook-service=rel-sekoia-intel-sync-webhook",
        f"--webhook-inject-ca={vwc['metadata']['name']}",
    ):
        assert flag in args
    assert not [a for a in args if a.startswith(("--webhook-certfile", "--webhook-keyfile"))]
    volumes = _deployment(objs)["spec"]["template"]["spec"]["volumes"]
    assert "webhook-tls" not in {v["name"] for v in volumes}
    assert webhook["clientConfig"]["service"]["path"] == "/validate"  # kopf's path for handler "validate"
    assert "namespaceSelector" not in webhook
    # The operator may read and renew that one Secret, read that one Service (the Secret's owner)
    # and patch that one webhook configuration; `create secrets` cannot be limited by name.
    (cert_role,) = find(objs, "Role", "rel-sekoia-intel-sync-webhook-cert")
    assert cert_role["metadata"]["namespace"] == "sis-system"
    assert _rules(cert_role) == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["rel-sekoia-intel-sync-webhook-tls"],
            "verbs": ["get", "update"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["services"],
            "resourceNames": ["rel-sekoia-intel-sync-webhook"],
            "verbs": ["get"],
        },
    ]
    vwc_rules = [r for r in _rules(cluster_role) if "validatingwebhookconfigurations" in r["resources"]]
    assert vwc_rules == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations"],
            "resourceNames": [vwc["metadata"]["name"]],
            "verbs": ["get", "patch"],
        }
    ]


def test_default_mode_renders_byte_identical_every_time() -> None:
    """Argo CD renders with `helm template` (no cluster, no lookup) on every refresh: any difference
    between two renders is a permanent OutOfSync and, in the Deployment, a restart per sync."""
    args = ["template", "rel", str(CHART), "--namespace", "sis-system", "--include-crds"]
    first, second = helm(*args).stdout, helm(*args).stdout
    assert first == second
    for mode in ("namespaced", "cert-manager", "ha"):
        extra = set_args(MODES[mode])
        assert helm(*args, *extra).stdout == helm(*args, *extra).stdout, mode
    # The chart-generated mode is what the default used to be, and is not stable: this test can fail.
    helm_mode = set_args(MODES["helm-certificate"])
    assert helm(*args, *helm_mode).stdout != helm(*args, *helm_mode).stdout


def test_helm_certificate_mode_renders_a_matching_ca_and_certificate() -> None:
    objs = render(MODES["helm-certificate"])
    # The caBundle the API server trusts must have signed the certificate the operator serves,
    # for the name the API server dials (service.namespace.svc).
    (secret,) = find(objs, "Secret")
    (vwc,) = find(objs, "ValidatingWebhookConfiguration")
    webhook = vwc["webhooks"][0]
    ca = x509.load_pem_x509_certificate(base64.b64decode(webhook["clientConfig"]["caBundle"]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "rel-sekoia-intel-sync-webhook.sis-system.svc" in names.get_values_for_type(x509.DNSName)
    args = _deployment(objs)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--webhook-certfile=/etc/sekoia-intel-sync/webhook/tls.crt" in args
    assert not [a for a in args if a.startswith("--webhook-cert-secret")]
    assert not find(objs, "Role", "rel-sekoia-intel-sync-webhook-cert")


def test_namespaced_mode_grants_nothing_cluster_wide_but_discovery_and_its_webhook_ca() -> None:
    objs = render(MODES["namespaced"])
    cluster_role, secrets_role = _operator_cluster_roles(objs)
    assert secrets_role["metadata"]["name"].endswith("-secrets")
    assert len(find(objs, "ClusterRoleBinding")) == 1  # the Secret reader stays unbound
    assert _rules(cluster_role) == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        },
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations"],
            "resourceNames": ["sis-system-rel-sekoia-intel-sync"],
            "verbs": ["get", "patch"],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    ]
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in find(objs, "Role")}
    assert roles == {
        ("team-a", "rel-sekoia-intel-sync"),
        ("team-b", "rel-sekoia-intel-sync"),
        ("sis-system", "rel-sekoia-intel-sync-claims"),
        ("sis-system", "rel-sekoia-intel-sync-webhook-cert"),
    }
    bindings = {(b["metadata"]["namespace"], b["roleRef"]["name"]) for b in find(objs, "RoleBinding")}
    assert bindings == roles
    peerings = {p["metadata"]["namespace"] for p in find(objs, "KopfPeering")}
    assert peerings == {"team-a", "team-b"}
    args = _deployment(objs)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args
    selector = find(objs, "ValidatingWebhookConfiguration")[0]["webhooks"][0]["namespaceSelector"]
    assert selector["matchExpressions"][0]["values"] == ["team-a", "team-b"]


@pytest.mark.parametrize("mode", list(MODES))
def test_rbac_is_least_privilege(mode: str) -> None:
    objs = render(MODES[mode])
    for role in find(objs, "ClusterRole") + find(objs, "Role"):
        for rule in _rules(role):
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
            if "secrets" in rule["resources"]:
                # By name only: never list or watch, which would expose every Secret. Beyond `get`,
                # only the webhook certificate's own Secret, in the release namespace.
                assert rule["resources"] == ["secrets"], rule
                if rule["verbs"] != ["get"]:
                    assert role["metadata"]["name"] == "rel-sekoia-intel-sync-webhook-cert", rule
                    assert role["metadata"]["namespace"] == "sis-system", rule
                    assert rule["verbs"] == ["create"] or (
                        rule["verbs"] == ["get", "update"]
                        and rule["resourceNames"] == ["rel-sekoia-intel-sync-webhook-tls"]
                    ), rule
            # Runtime children are read by name (to check their owner) and written by server-side
            # apply only, never listed or watched.
            if {"serviceaccounts", "roles", "rolebindings", "networkpolicies"} & set(rule["resources"]):
                assert rule["verbs"] == ["get", "create", "patch"], rule
            # The chart owns the webhook configuration: the operator writes only the caBundle of
            # this release's own, never creates or lists one.
            if "validatingwebhookconfigurations" in rule["resources"]:
                assert rule["verbs"] == ["get", "patch"], rule
                assert rule["resourceNames"] == ["sis-system-rel-sekoia-intel-sync"], rule
            # Writes to peering objects are limited to this release's own.
            if {"kopfpeerings", "clusterkopfpeerings"} & set(rule["resources"]) and "patch" in rule["verbs"]:
                assert rule["resourceNames"] == ["sis-system-rel-sekoia-intel-sync"]
    (claims,) = [r for r in find(objs, "Role") if r["metadata"]["name"].endswith("-claims")]
    assert _rules(claims) == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "watch", "create", "update", "delete"],
        }
    ]


def test_pods_meet_the_restricted_profile_and_a_read_only_root() -> None:
    pod = _deployment(render())["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = pod["containers"][0]["securityContext"]
    assert sc == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert "/tmp" in mounts


def test_cert_manager_mode_leaves_the_certificate_to_cert_manager() -> None:
    objs = render(MODES["cert-manager"])
    assert not find(objs, "Secret")
    (cert,) = find(objs, "Certificate")
    assert cert["spec"]["secretName"] == "rel-sekoia-intel-sync-webhook-tls"
    assert cert["spec"]["issuerRef"] == {"name": "rel-sekoia-intel-sync-selfsigned", "kind": "Issuer"}
    (vwc,) = find(objs, "ValidatingWebhookConfiguration")
    assert vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        "sis-system/rel-sekoia-intel-sync-webhook"
    )
    assert "caBundle" not in vwc["webhooks"][0]["clientConfig"]
    objs = render(MODES["cert-manager-issuer"])
    assert not find(objs, "Issuer")
    assert find(objs, "Certificate")[0]["spec"]["issuerRef"]["kind"] == "ClusterIssuer"


def test_ha_mode_extras() -> None:
    objs = render(MODES["ha"])
    image = _deployment(objs)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith("@sha256:" + "a" * 64)
    assert find(objs, "PodDisruptionBudget")[0]["spec"]["maxUnavailable"] == 1
    assert find(objs, "ServiceMonitor")[0]["spec"]["endpoints"][0]["port"] == "metrics"
    ports = [p["ports"][0]["port"] for p in find(objs, "NetworkPolicy")[0]["spec"]["ingress"]]
    assert ports == ["webhook", "liveness", "metrics"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": "0"}, "at '/replicaCount': minimum: got 0, want 1"),
        ({"watchNamespaces": "{Team_A}"}, "at '/watchNamespaces/0': 'Team_A' does not match pattern"),
        ({"webhook.certificate.source": "vault"}, "value must be one of 'operator', 'helm', 'certManager'"),
        ({"webhook.failurePolicy": "Sometimes"}, "value must be one of 'Ignore', 'Fail'"),
        ({"image.digest": "latest"}, "at '/image/digest'"),
        ({"operator.logLevel": "trace"}, "at '/operator/logLevel'"),
        ({"metrics.port": "70000"}, "at '/metrics/port': maximum"),
        ({"replicas": "2"}, "additional properties 'replicas' not allowed"),
        ({"webhook.certificate.certManager.issuerRef.kind": "Issuer"}, "missing property 'name'"),
        ({"replicaCount": "2", "peering.enabled": "false"}, "replicaCount > 1 needs peering.enabled=true"),
    ],
)
def test_invalid_values_are_rejected_readably(values: dict[str, str], message: str) -> None:
    done = helm("template", "rel", str(CHART), *set_args(values), check=False)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def _leaf_keys(tree: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if (
            isinstance(value, dict)
            and value
            and key not in {"resources", "podSecurityContext", "securityContext"}
        ):
            keys += _leaf_keys(value, path + ".")
        else:
            keys.append(path)
    return keys


def test_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = [k for k in _leaf_keys(defaults) if f"`{k}`" not in readme]
    assert not missing, f"chart README lacks: {missing}"


def test_policy_values_become_operator_flags_and_the_admission_policy() -> None:
    objs = render()
    args = _deployment(objs)["spec"]["template"]["spec"]["containers"][0]["args"]
    # Strict defaults, spelled out on the command line so `kubectl get deploy -o yaml` shows them.
    assert "--allow-opencti-scheme=https" in args and "--allow-loopback" not in args
    assert "--allow-sekoia-url=https://*.sekoia.io" in args
    assert "--allow-sekoia-url=https://app.*.sekoia.io/api" in args
    assert not [a for a in args if a.startswith(("--allow-runtime-image", "--allow-toleration"))]
    assert "--api-server-port=443" in args and "--no-network-policy" not in args
    (vap,) = find(objs, "ValidatingAdmissionPolicy", "sis-system-rel-sekoia-intel-sync")
    (binding,) = find(objs, "ValidatingAdmissionPolicyBinding", "sis-system-rel-sekoia-intel-sync")
    assert binding["spec"] == {"policyName": vap["metadata"]["name"], "validationActions": ["Deny"]}
    # The webhook certificate mode's `create secrets` narrowed to one name by a second policy.
    (cert_vap,) = find(objs, "ValidatingAdmissionPolicy", "sis-system-rel-sekoia-intel-sync-webhook-cert")
    (cert_binding,) = find(objs, "ValidatingAdmissionPolicyBinding", cert_vap["metadata"]["name"])
    assert cert_binding["spec"]["policyName"] == cert_vap["metadata"]["name"]
    assert cert_vap["spec"]["matchConditions"] == vap["spec"]["matchConditions"]
    assert cert_vap["spec"]["matchConstraints"]["resourceRules"] == [
        {"apiGroups": [""], "apiVersions": ["*"], "resources": ["secrets"], "operations": ["CREATE"]}
    ]
    assert not find(render(MODES["cert-manager"]), "ValidatingAdmissionPolicy", cert_vap["metadata"]["name"])
    assert vap["spec"]["failurePolicy"] == "Fail"
    (match,) = vap["spec"]["matchConditions"]
    assert "system:serviceaccount:sis-system:rel-sekoia-intel-sync" in match["expression"]
    variables = {v["name"]: v["expression"] for v in vap["spec"]["variables"]}
    assert yaml.safe_load(variables["images"]) == [
        _deployment(objs)["spec"]["template"]["spec"]["containers"][0]["image"]
    ]

    wide = render(
        {
            "policy.runtimeImages": "{registry.corp/sis/*}",
            "policy.openctiSchemes": "{http,https}",
            "policy.allowLoopback": "true",
            "policy.tolerationKeys": "{gpu}",
            "runtimeNetworkPolicy.enabled": "false",
            "admissionPolicy.enabled": "false",
            "rbac.clusterWideSecretAccess": "true",
        }
    )
    args = _deployment(wide)["spec"]["template"]["spec"]["containers"][0]["args"]
    for flag in (
        "--allow-runtime-image=registry.corp/sis/*",
        "--allow-opencti-scheme=http",
        "--allow-loopback",
        "--allow-toleration-key=gpu",
        "--no-network-policy",
    ):
        assert flag in args
    assert not find(wide, "ValidatingAdmissionPolicy")
    # The explicit opt-out of namespace-level Secret consent binds the reader cluster-wide.
    assert {b["roleRef"]["name"] for b in find(wide, "ClusterRoleBinding")} == {
        "sis-system-rel-sekoia-intel-sync",
        "sis-system-rel-sekoia-intel-sync-secrets",
    }


def test_namespaced_mode_grants_secret_get_only_in_the_listed_namespaces() -> None:
    objs = render(MODES["namespaced"])
    for role in find(objs, "Role"):
        secret_rules = [r for r in _rules(role) if "secrets" in r["resources"]]
        if role["metadata"]["name"].endswith("-claims"):
            assert not secret_rules
        elif role["metadata"]["name"].endswith("-webhook-cert"):
            assert role["metadata"]["namespace"] == "sis-system"
        else:
            assert secret_rules == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]


def test_webhook_answers_only_the_api_servers_client_certificate() -> None:
    objs = render()
    pod = _deployment(objs)["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert "--webhook-client-cafile=/etc/sekoia-intel-sync/webhook-client/ca.crt" in args
    assert "--webhook-client-name=sekoia-intel-sync-webhook-client" in args
    assert "--webhook-insecure-no-client-auth" not in args
    (volume,) = [v for v in pod["volumes"] if v["name"] == "webhook-client-ca"]
    assert volume["configMap"]["name"] == "kube-root-ca.crt"  # the cluster CA by default

    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    objs = render({"webhook.clientAuth.caBundle": pem})
    (cm,) = [o for o in find(objs, "ConfigMap") if o["metadata"]["name"].endswith("-webhook-client-ca")]
    assert cm["data"]["ca.crt"] == pem
    pod = _deployment(objs)["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "webhook-client-ca"]
    assert volume["configMap"]["name"] == cm["metadata"]["name"]

    objs = render({"webhook.clientAuth.enabled": "false"})
    args = _deployment(objs)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--webhook-insecure-no-client-auth" in args
    assert not any(a.startswith("--webhook-client") for a in args)


CLUSTER_SCOPED = {
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterKopfPeering",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}


def _identities(objs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every object a release owns (the shared CRDs excepted)."""
    return {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
        for o in objs
        if o["kind"] != "CustomResourceDefinition"
    }


@pytest.mark.parametrize("mode", ["default", "ha", "cert-manager", "namespaced"])
def test_same_release_name_in_two_namespaces_does_not_collide(mode: str) -> None:
    """`helm install rel` in two namespaces: no object of one release is an object of the other."""
    values = dict(MODES[mode])
    first, second = (
        render(values, namespace="ns-one"),
        render(
            {**values, **({"watchNamespaces": "{team-c}"} if "watchNamespaces" in values else {})},
            namespace="ns-two",
        ),
    )
    assert {o["kind"] for o in first if o["kind"] in CLUSTER_SCOPED}, "nothing cluster-scoped rendered"
    assert not _identities(first) & _identities(second)
    for objs, namespace in ((first, "ns-one"), (second, "ns-two")):
        for obj in objs:
            if obj["kind"] in CLUSTER_SCOPED:
                assert obj["metadata"]["name"].startswith(f"{namespace}-rel-"), obj["metadata"]
        # The operator joins, and may write, exactly the peering object its release renders.
        args = _deployment(objs)["spec"]["template"]["spec"]["containers"][0]["args"]
        (peering,) = [a.split("=", 1)[1] for a in args if a.startswith("--peering=")]
        peerings = find(objs, "ClusterKopfPeering") + find(objs, "KopfPeering")
        assert peerings and {p["metadata"]["name"] for p in peerings} == {peering}
        written = {
            name
            for role in find(objs, "ClusterRole") + find(objs, "Role")
            for rule in _rules(role)
            if {"kopfpeerings", "clusterkopfpeerings"} & set(rule["resources"]) and "patch" in rule["verbs"]
            for name in rule["resourceNames"]
        }
        assert written == {peering}


def test_users_with_the_built_in_roles_get_matching_rights_on_sekoiaintelsyncs() -> None:
    """view reads; edit and admin also write the resource; nobody but the operator writes status."""
    objs = render()
    aggregated = [r for r in find(objs, "ClusterRole") if _aggregated(r)]
    by_role: dict[str, set[str]] = {"view": set(), "edit": set(), "admin": set()}
    for role in aggregated:
        assert role["metadata"]["name"].startswith("sis-system-rel-sekoia-intel-sync-")
        verbs = set()
        for rule in _rules(role):
            assert rule["apiGroups"] == ["sync.sekoia-intel.dev"] and rule["resources"] == [
                "sekoiaintelsyncs"
            ]
            assert "resourceNames" not in rule
            verbs |= set(rule["verbs"])
        for target in _aggregated(role):
            by_role[target] |= verbs
    assert by_role["view"] == {"get", "list", "watch"}
    writes = {"create", "update", "patch", "delete", "deletecollection"}
    assert by_role["edit"] == by_role["admin"] == {"get", "list", "watch"} | writes
    # The operator's own ClusterRole is untouched and bound; the aggregated ones are bound by nobody.
    bound = {b["roleRef"]["name"] for b in find(objs, "ClusterRoleBinding")}
    assert not bound & {r["metadata"]["name"] for r in aggregated}

    read_only = [r for r in find(render({"rbac.aggregateToEdit": "false"}), "ClusterRole") if _aggregated(r)]
    assert [set(rule["verbs"]) for r in read_only for rule in _rules(r)] == [{"get", "list", "watch"}]
    none = render({"rbac.aggregateToEdit": "false", "rbac.aggregateToView": "false"})
    assert not [r for r in find(none, "ClusterRole") if _aggregated(r)]
    assert not [r for r in find(render({"rbac.create": "false"}), "ClusterRole") if _aggregated(r)]


def _container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = _deployment(objs)["spec"]["template"]["spec"]["containers"][0]
    return container


def _handler(probe: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in probe.items() if k in ("httpGet", "tcpSocket", "exec", "grpc")}


@pytest.mark.parametrize("mode", list(MODES))
def test_liveness_and_readiness_probe_different_things(mode: str) -> None:
    """Liveness: kopf's own endpoint. Readiness: what the Pod's Services route to (kube-score's
    identical-probes critical)."""
    objs = render(MODES[mode])
    container = _container(objs)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    liveness, readiness = container["livenessProbe"], container["readinessProbe"]
    assert _handler(liveness) == {"httpGet": {"path": "/healthz", "port": "liveness"}}
    assert _handler(liveness) != _handler(readiness)
    if find(objs, "ValidatingWebhookConfiguration"):
        assert _handler(readiness) == {"tcpSocket": {"port": "webhook"}}
        (service,) = [s for s in find(objs, "Service") if s["metadata"]["name"].endswith("-webhook")]
        assert service["spec"]["ports"][0]["targetPort"] in ("webhook", ports["webhook"])
    else:
        assert _handler(readiness) == {"httpGet": {"path": "/metrics", "port": "metrics"}}
    assert set(ports) >= {"liveness", "metrics"}
    # A restart is the slower, more tolerant decision.
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > (
        readiness["periodSeconds"] * readiness["failureThreshold"]
    )


def test_resources_bound_memory_and_ephemeral_storage_but_not_cpu() -> None:
    resources = _container(render())["resources"]
    assert set(resources["requests"]) == {"cpu", "memory", "ephemeral-storage"}
    assert set(resources["limits"]) == {"memory", "ephemeral-storage"}  # no CPU limit: README explains
    tmp = [v for v in _deployment(render())["spec"]["template"]["spec"]["volumes"] if v["name"] == "tmp"]
    assert tmp[0]["emptyDir"]["sizeLimit"] == "64Mi"  # within the ephemeral-storage limit (256Mi)


def test_ha_replicas_prefer_different_nodes() -> None:
    def affinity(values: dict[str, str]) -> Any:
        return _deployment(render(values))["spec"]["template"]["spec"].get("affinity")

    assert affinity({}) is None  # one replica: nothing to spread
    (term,) = affinity(MODES["ha"])["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    selector = _deployment(render(MODES["ha"]))["spec"]["selector"]["matchLabels"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
    # The user's own affinity wins, unchanged.
    own = affinity({**MODES["ha"], "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                    ".nodeSelectorTerms[0].matchExpressions[0].key": "pool",
                    "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                    ".nodeSelectorTerms[0].matchExpressions[0].operator": "Exists"})  # fmt: skip
    assert set(own) == {"nodeAffinity"}


def _notes(tmp_path: Path, values: dict[str, str]) -> str:
    """NOTES.txt as `helm install` prints it. `helm template` skips NOTES.txt, so a copy of the chart
    renders the same text through `tpl` into a ConfigMap."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy, dirs_exist_ok=True)
    (copy / "templates" / "NOTES.txt").rename(copy / "notes-source.txt")
    (copy / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
        'data:\n  notes: {{ tpl (.Files.Get "notes-source.txt") . | quote }}\n'
    )
    out = helm(
        "template",
        "rel",
        str(copy),
        "-n",
        "sis-system",
        "--show-only",
        "templates/zz-notes.yaml",
        *set_args(values),
    ).stdout
    return str(yaml.safe_load(out)["data"]["notes"])


def test_chart_metadata_and_notes_work_for_a_packaged_chart(tmp_path: Path) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["icon"].startswith("https://") and chart["maintainers"][0]["name"]
    assert chart["icon"].endswith("/docs/assets/icon.svg")
    assert (CHART.parents[2] / "docs" / "assets" / "icon.svg").read_text().startswith("<svg")
    # What `helm package` ships: NOTES may name nothing outside it (no deploy/..., no crds/ path to cd into).
    helm("package", str(CHART), "--destination", str(tmp_path))
    (package,) = tmp_path.glob("sekoia-intel-sync-*.tgz")
    with tarfile.open(package) as tar:
        shipped = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"files/crds/sekoiaintelsyncs.yaml", "templates/crds.yaml", "templates/NOTES.txt"} <= shipped
    for values in ({}, MODES["namespaced"], MODES["cert-manager"]):
        notes = _notes(tmp_path / "notes", values)
        assert "apt-feed" in notes  # rendered, not empty
        assert "deploy/" not in notes and "-f crds/" not in notes, notes
        assert "`helm upgrade` updates it" in notes and "`helm uninstall` keeps it" in notes
        assert chart["home"] in notes
    notes = " ".join(_notes(tmp_path / "notes", {"crds.enabled": "false"}).split())
    assert (
        f"helm template <chart> --version {chart['version']} --show-only templates/crds.yaml "
        "--set crds.enabled=true | kubectl apply --server-side --force-conflicts -f -"
    ) in notes.replace("\\ ", "")
