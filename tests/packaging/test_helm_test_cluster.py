"""The chart's `helm test` Pod against the real API server's Pod Security admission.

kwok never runs a container, so `helm test` itself cannot finish here (the Pod would stay Running);
the script's behaviour is tested on its own in test_release.py. What a cluster decides, and only a
cluster can, is whether the Pod is admitted in a namespace enforcing the restricted profile.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import yaml
from packaging_helpers import CHART

pytestmark = pytest.mark.cluster


def test_helm_test_pod_is_admitted_under_the_restricted_profile(cluster: Any) -> None:
    namespace = f"h-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", namespace)
    try:
        cluster.kubectl(
            "label",
            "namespace",
            namespace,
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest",
        )
        rendered = cluster.helm(
            "template",
            "rel",
            str(CHART),
            "-n",
            namespace,
            "--show-only",
            "templates/tests/metrics-answer.yaml",
        ).stdout
        pod = yaml.safe_load(rendered)
        done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
        assert done.returncode == 0, done.stderr
        assert "Warning" not in done.stderr, done.stderr
        # The same namespace refuses a Pod that keeps its capabilities: the profile is enforced.
        del pod["spec"]["containers"][0]["securityContext"]["capabilities"]
        done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
        assert done.returncode != 0 and 'violates PodSecurity "restricted:latest"' in done.stderr, done.stderr
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
