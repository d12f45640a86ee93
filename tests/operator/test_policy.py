"""The operator's allowlists: what a resource's author may choose for the runtime."""

from __future__ import annotations

from typing import Any

import pytest
from operator_helpers import raw_spec
from sekoia_intel_operator.policy import Allowlists, check, url_matches
from sekoia_intel_operator.spec import SpecError, parse_spec

DEFAULT_IMAGE = "ghcr.io/sekoia-intel-sync/sekoia-intel-sync:0.1.0"
STRICT = Allowlists()


def verdict(lists: Allowlists = STRICT, **overrides: Any) -> Any:
    return check(parse_spec(raw_spec(**overrides)), lists, default_image=DEFAULT_IMAGE)


def test_defaults_accept_the_ordinary_spec() -> None:
    assert verdict().allowed
    assert verdict(sekoia={"collectionId": raw_spec()["sekoia"]["collectionId"]}).allowed
    assert verdict(runtime={"image": DEFAULT_IMAGE}).allowed


@pytest.mark.parametrize(
    "image, allowed",
    [
        (DEFAULT_IMAGE, True),
        ("ghcr.io/sekoia-intel-sync/sekoia-intel-sync:0.2.0", False),
        ("evil.example/miner:1", False),
        ("registry.corp/sis/runtime:2", True),  # a prefix entry
        ("registry.corp/sisx/runtime:2", False),
        ("registry.corp/exact:1", True),
    ],
)
def test_runtime_image_allowlist(image: str, allowed: bool) -> None:
    lists = Allowlists(runtime_images=("registry.corp/sis/*", "registry.corp/exact:1"))
    result = verdict(lists, runtime={"image": image})
    assert result.allowed is allowed
    if not allowed:
        assert result.reason == "ImageNotAllowed" and image in result.message
        assert "spec.runtime.image" in result.message


@pytest.mark.parametrize(
    "url, allowed",
    [
        ("https://api.sekoia.io", True),
        ("https://api.sekoia.io/", True),
        ("https://API.Sekoia.IO", True),
        ("https://api.sekoia.io:443", True),
        ("https://api.sekoia.io.", True),
        ("https://app.usa1.sekoia.io/api", True),
        ("https://app.usa1.sekoia.io/api/v1/x", True),
        ("https://app.usa1.sekoia.io/other", False),  # two labels: only the /api form
        ("https://app.usa1.sekoia.io/api/../admin", False),
        ("http://api.sekoia.io", False),
        ("https://api.sekoia.io:8443", False),
        ("https://sekoia.io.evil.example", False),
        ("https://evil.example/sekoia.io", False),
        ("https://169.254.169.254", False),
        ("https://127.0.0.1", False),
    ],
)
def test_sekoia_url_patterns(url: str, allowed: bool) -> None:
    result = verdict(sekoia={"url": url, "collectionId": raw_spec()["sekoia"]["collectionId"]})
    assert result.allowed is allowed, result.message
    if not allowed:
        assert result.reason == "URLNotAllowed" and "spec.sekoia.url" in result.message


def test_url_pattern_ports_and_loopback_widening() -> None:
    assert url_matches("http://127.0.0.1:8123", "http://127.0.0.1:*")
    assert not url_matches("http://127.0.0.2:8123", "http://127.0.0.1:*")
    assert url_matches("http://127.0.0.1:8123", "http://127.0.0.1:8123")
    assert not url_matches("http://127.0.0.1:8124", "http://127.0.0.1:8123")
    test_bed = Allowlists(sekoia_urls=("http://127.0.0.1:*",), opencti_schemes=("http",), allow_loopback=True)
    local = {"url": "http://127.0.0.1:8123", "collectionId": raw_spec()["sekoia"]["collectionId"]}
    opencti = {"url": "http://127.0.0.1:4000", "streamId": "live"}
    assert verdict(test_bed, sekoia=local, opencti=opencti).allowed
    # Without allow_loopback the pattern alone is not enough: loopback is refused explicitly.
    refused = verdict(Allowlists(sekoia_urls=("http://127.0.0.1:*",)), sekoia=local)
    assert not refused.allowed and "loopback" in refused.message


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("http://opencti.example.org", "uses http://"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[::ffff:169.254.169.254]/", "link-local"),
        ("https://127.0.0.1", "loopback"),
        ("https://[::1]:8080", "loopback"),
        ("https://localhost", "localhost"),
        ("https://0.0.0.0", "no service"),
        ("https://2852039166/", "numeric host"),
        ("https://0xa9fea9fe/", "numeric host"),
        ("https://169.254.43518/", "numeric host"),
    ],
)
def test_opencti_url_refusals(url: str, fragment: str) -> None:
    result = verdict(opencti={"url": url, "streamId": "live"})
    assert not result.allowed and result.reason == "URLNotAllowed"
    assert fragment in result.message and "spec.opencti.url" in result.message


def test_link_local_and_userinfo_stay_refused_even_when_widened() -> None:
    wide = Allowlists(opencti_schemes=("http", "https"), allow_loopback=True)
    assert not verdict(wide, opencti={"url": "http://169.254.169.254", "streamId": "live"}).allowed


@pytest.mark.parametrize(
    "field, url",
    [
        ("sekoia", "https://api.sekoia.io@evil.example"),
        ("sekoia", "https://u:p@api.sekoia.io"),
        ("opencti", "https://user:pw@opencti.example.org"),
        ("opencti", "http://u:p@10.0.0.1"),
    ],
)
def test_userinfo_is_refused_by_the_spec_itself_and_matches_no_pattern(field: str, url: str) -> None:
    # The spec model refuses userinfo before any policy runs (and without quoting the URL); the
    # patterns refuse it too, so a widened allowlist cannot let it through.
    extra = (
        {"streamId": "live"} if field == "opencti" else {"collectionId": raw_spec()["sekoia"]["collectionId"]}
    )
    with pytest.raises(SpecError, match="user name or password") as caught:
        parse_spec(raw_spec(**{field: {"url": url, **extra}}))
    assert url not in str(caught.value)
    assert not any(url_matches(url, p) for p in (*STRICT.sekoia_urls, "https://*", "http://*"))


def test_pod_fields_that_widen_a_pod_are_refused_by_default() -> None:
    runtime = {
        "podAnnotations": {"example.com/team": "a"},
        "tolerations": [{"operator": "Exists"}, {"key": "gpu", "operator": "Exists"}],
        "priorityClassName": "system-node-critical",
        "nodeSelector": {"kubernetes.io/hostname": "n1"},
        "affinity": {"nodeAffinity": {}},
    }
    result = verdict(runtime=runtime)
    assert {v.reason for v in result.violations} == {"PodFieldNotAllowed"}
    for field in ("podAnnotations", "tolerations", "priorityClassName", "nodeSelector", "affinity"):
        assert f"spec.runtime.{field}" in result.message
    assert len(result.violations) == 6  # one per annotation, toleration, class, selector key, affinity

    lists = Allowlists(
        pod_annotation_keys=("example.com/*",),
        toleration_keys=("gpu",),
        priority_class_names=("batch-low",),
        node_selector_keys=("kubernetes.io/hostname",),
        allow_affinity=True,
    )
    partly = verdict(lists, runtime=runtime)
    # The key-less toleration tolerates every taint: only a bare "*" entry allows it.
    assert [v.message for v in partly.violations] == [
        "spec.runtime.tolerations: a toleration of key '(any)' is not allowed by the operator",
        "spec.runtime.priorityClassName 'system-node-critical' is not allowed by the operator",
    ]
    everything = Allowlists(
        **{**lists.__dict__, "toleration_keys": ("*",), "priority_class_names": ("system-node-critical",)}
    )
    assert verdict(everything, runtime=runtime).allowed
