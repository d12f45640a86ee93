"""The per-runtime NetworkPolicy: egress by port, link-local excluded, :8080 from known namespaces."""

from __future__ import annotations

from operator_helpers import raw_spec
from sekoia_intel_operator.config import NetworkPolicyConfig
from sekoia_intel_operator.netpol import desired_network_policy, ip_block, url_port
from sekoia_intel_operator.spec import parse_spec
from sekoia_intel_operator.workload import SyncRef, selector_labels

REF = SyncRef("team-a", "feed", "4b1c0a6e-0000-4000-8000-000000000001")


def test_policy_shape() -> None:
    spec = parse_spec(
        raw_spec(
            opencti={"url": "https://opencti.example.org:4443", "streamId": "live"},
            sekoia={"url": "https://api.sekoia.io", "collectionId": raw_spec()["sekoia"]["collectionId"]},
        )
    )
    cfg = NetworkPolicyConfig(monitoring_namespaces=["monitoring"], operator_namespace="sis-system")
    pol = desired_network_policy(REF, spec, cfg)
    assert pol["kind"] == "NetworkPolicy" and pol["metadata"]["ownerReferences"][0]["uid"] == REF.uid
    body = pol["spec"]
    assert body["podSelector"] == {"matchLabels": selector_labels(REF)}
    assert body["policyTypes"] == ["Ingress", "Egress"]
    [ingress] = body["ingress"]
    assert ingress["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert [
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in ingress["from"]
    ] == [
        "sis-system",
        "monitoring",
    ]
    dns, out = body["egress"]
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert [p["port"] for p in out["ports"]] == [443, 4443, 6443]
    assert out["to"] == [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}},
        {"ipBlock": {"cidr": "::/0", "except": ["fe80::/10"]}},
    ]


def test_no_ingress_source_means_no_ingress() -> None:
    pol = desired_network_policy(REF, parse_spec(raw_spec()), NetworkPolicyConfig(operator_namespace=""))
    assert pol["spec"]["ingress"] == []


def test_helpers() -> None:
    assert url_port("http://127.0.0.1:8123/x") == 8123
    assert url_port("http://opencti") == 80 and url_port("https://opencti") == 443
    assert ip_block("10.0.0.0/8") == {"cidr": "10.0.0.0/8"}  # no link-local inside: no except
    assert ip_block("169.254.0.0/16") == {"cidr": "169.254.0.0/16"}  # explicitly configured: kept
