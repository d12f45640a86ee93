"""The chart's CRD story with real helm against the real API server: install, an upgrade that
changes the CRD, uninstall with `crds.keep`, adoption of a CRD created outside the release, and the
documented standalone `kubectl apply` on a CRD Helm manages.

The session's other tests share the SekoiaIntelSync CRD: this one starts from the CRD as
deploy/crds defines it, unowned, and puts it back that way (`kubectl replace`) at the end.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging_helpers import CHART, CRD

pytestmark = pytest.mark.cluster

NAME = "sekoiaintelsyncs.sync.sekoia-intel.dev"
GROUP, VERSION, PLURAL = "sync.sekoia-intel.dev", "v1alpha1", "sekoiaintelsyncs"
# Values that keep the release small: the CRD is what is under test.
LEAN = [
    "--set",
    "webhook.enabled=false",
    "--set",
    "admissionPolicy.enabled=false",
    "--set",
    "peering.enabled=false",
]


def live_crd(cluster: Any) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", "crd", NAME, "-o", "json").stdout))


def spec_properties(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return dict(version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"])


def reset_crd(cluster: Any) -> None:
    """The CRD exactly as deploy/crds defines it, with no Helm ownership (whoever made it before)."""
    verb = "replace" if cluster.kubectl("get", "crd", NAME, check=False).returncode == 0 else "create"
    cluster.kubectl(verb, "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{NAME}", "--timeout=60s")


@pytest.fixture
def shared_crd(cluster: Any) -> Iterator[None]:
    reset_crd(cluster)
    yield
    reset_crd(cluster)


@pytest.fixture
def release_ns(cluster: Any) -> Iterator[str]:
    name = f"crd-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def chart_with_new_field(tmp_path: Path) -> Path:
    """The chart as its next version would be: the CRD gains an optional spec field."""
    chart = tmp_path / "chart-next"
    shutil.copytree(CHART, chart)
    crd_file = chart / "files" / "crds" / CRD.name
    crd = yaml.safe_load(crd_file.read_text())
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert "upgradeProbe" not in props
    props["upgradeProbe"] = {"type": "string", "description": "Added by the next chart version."}
    crd_file.write_text(yaml.safe_dump(crd, sort_keys=False))
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"] = meta["version"] + "-next"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return chart


def sync_body(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SekoiaIntelSync",
        "metadata": {"name": name},
        "spec": {
            "opencti": {"url": "https://opencti.example.org", "streamId": "live"},
            "sekoia": {"collectionId": str(uuid.uuid4())},
            "credentialsSecretRef": {"name": "creds"},
            **extra,
        },
    }


def test_helm_upgrades_the_crd_keeps_it_on_uninstall_and_kubectl_can_take_it_over(
    cluster: Any, shared_crd: None, release_ns: str, tmp_path: Path
) -> None:
    release = "crds"
    # A CRD that exists without Helm ownership (as the chart's crds/ folder used to leave it):
    # helm refuses to take it over...
    done = cluster.helm("install", release, str(CHART), "-n", release_ns, *LEAN, check=False)
    assert done.returncode != 0 and "invalid ownership metadata" in done.stderr, done.stderr
    # ...until the README's adoption commands ran.
    cluster.kubectl("label", "crd", NAME, "app.kubernetes.io/managed-by=Helm")
    cluster.kubectl(
        "annotate",
        "crd",
        NAME,
        f"meta.helm.sh/release-name={release}",
        f"meta.helm.sh/release-namespace={release_ns}",
    )
    cluster.helm("install", release, str(CHART), "-n", release_ns, *LEAN)
    installed = live_crd(cluster)
    assert installed["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert "upgradeProbe" not in spec_properties(installed)

    # `helm upgrade` to a chart whose CRD has a new field: the API server serves the new schema.
    cluster.helm("upgrade", release, str(chart_with_new_field(tmp_path)), "-n", release_ns, *LEAN)
    assert spec_properties(live_crd(cluster))["upgradeProbe"]["type"] == "string"
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{NAME}", "--timeout=60s")
    body = sync_body("probe", upgradeProbe="kept")
    cluster.kubectl("-n", release_ns, "create", "-f", "-", input=json.dumps(body))
    stored = json.loads(cluster.kubectl("-n", release_ns, "get", PLURAL, "probe", "-o", "json").stdout)
    assert stored["spec"]["upgradeProbe"] == "kept"  # not pruned: the field is in the served schema

    # Uninstall with crds.keep: the CRD and the resources stay.
    out = cluster.helm("uninstall", release, "-n", release_ns, "--wait", "--timeout", "120s")
    assert NAME in out.stdout + out.stderr  # helm names what its resource policy kept
    assert spec_properties(live_crd(cluster))["upgradeProbe"]
    assert cluster.kubectl("-n", release_ns, "get", PLURAL, "probe", check=False).returncode == 0

    # The standalone route on this Helm-managed CRD: a plain server-side apply conflicts with
    # Helm's field manager (what the NOTES used to recommend)...
    plain = cluster.kubectl("apply", "--server-side", "-f", str(CRD), check=False)
    assert plain.returncode != 0 and "conflict" in plain.stderr.lower(), plain.stderr
    assert '"helm"' in plain.stderr and ".spec.versions" in plain.stderr, plain.stderr
    # ...the documented commands take it over: from the repository file, and from the chart.
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    assert "upgradeProbe" not in spec_properties(live_crd(cluster))  # deploy/crds again
    rendered = cluster.helm(
        "template", str(CHART), "--show-only", "templates/crds.yaml", "--set", "crds.enabled=true"
    ).stdout
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=rendered)
    assert cluster.kubectl("-n", release_ns, "get", PLURAL, "probe", check=False).returncode == 0
