"""The platform's runtime Pod defaults (chart runtimeDefaults.*) in the desired Deployment, and the
policy on what a resource adds to them (imagePullSecrets, resources)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from operator_helpers import raw_spec
from sekoia_intel_operator import cli, workload
from sekoia_intel_operator.pod_defaults import DEFAULT_RESOURCES, RuntimePodDefaults, parse_defaults
from sekoia_intel_operator.policy import Allowlists, check
from sekoia_intel_operator.spec import parse_spec

REF = workload.SyncRef(namespace="intel", name="feed", uid="11111111-2222-4333-8444-555555555555")
IMAGE = "ghcr.io/sekoia-intel-sync/sekoia-intel-sync:0.1.0"
SPREAD = {
    "maxSkew": 1,
    "topologyKey": "topology.kubernetes.io/zone",
    "whenUnsatisfiable": "ScheduleAnyway",
    "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "connector-runtime"}},
}
PLATFORM = {
    "imagePullSecrets": [{"name": "regcred"}],
    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    "nodeSelector": {"pool": "intel"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "intel", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
    "topologySpreadConstraints": [SPREAD],
    "priorityClassName": "intel-feeds",
}


def _pod(defaults: RuntimePodDefaults | None, **runtime: Any) -> dict[str, Any]:
    spec = parse_spec(raw_spec(runtime=runtime) if runtime else raw_spec())
    dep = workload.desired_deployment(
        REF, spec, credentials_fingerprint=None, replicas=1, pod_defaults=defaults
    )
    pod: dict[str, Any] = dep["spec"]["template"]["spec"]
    return pod


def test_without_defaults_the_pod_has_no_scheduling_fields_and_bounded_resources() -> None:
    pod = _pod(None)
    for key in ("imagePullSecrets", "nodeSelector", "tolerations", "affinity", "priorityClassName"):
        assert key not in pod
    assert "topologySpreadConstraints" not in pod
    resources = pod["containers"][0]["resources"]
    assert resources == DEFAULT_RESOURCES
    # ephemeral-storage requested and limited (kube-score), memory limited, CPU deliberately not.
    assert set(resources["limits"]) == {"memory", "ephemeral-storage"}
    assert pod == _pod(RuntimePodDefaults())


def test_every_default_reaches_the_pod() -> None:
    pod = _pod(parse_defaults(json.dumps(PLATFORM)))
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["containers"][0]["resources"] == PLATFORM["resources"]
    assert pod["nodeSelector"] == {"pool": "intel"}
    assert pod["tolerations"] == PLATFORM["tolerations"]
    assert pod["affinity"] == PLATFORM["affinity"]
    assert pod["topologySpreadConstraints"] == [SPREAD]
    assert pod["priorityClassName"] == "intel-feeds"


def test_resource_fields_add_to_or_replace_the_defaults() -> None:
    own = {"requests": {"memory": "300Mi"}, "limits": {"memory": "600Mi"}}
    pod = _pod(
        parse_defaults(json.dumps(PLATFORM)),
        imagePullSecrets=[{"name": "team-pull"}, {"name": "regcred"}],
        resources=own,
        nodeSelector={"pool": "fast", "zone": "a"},
        tolerations=[{"key": "gpu", "operator": "Exists"}],
        affinity={"podAffinity": {}},
        priorityClassName="low",
    )
    # Pull Secrets: the defaults (which pull the default image) are kept, each name once.
    assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "team-pull"}]
    assert pod["containers"][0]["resources"] == own
    assert pod["nodeSelector"] == {"pool": "fast", "zone": "a"}
    assert pod["tolerations"] == [*PLATFORM["tolerations"], {"key": "gpu", "operator": "Exists"}]
    assert pod["affinity"] == {"podAffinity": {}}
    assert pod["priorityClassName"] == "low"
    assert pod["topologySpreadConstraints"] == [SPREAD]  # no per-resource field


def test_defaults_take_plain_names_and_refuse_unknown_keys_in_one_line() -> None:
    assert parse_defaults('{"imagePullSecrets": ["a", {"name": "b"}]}').image_pull_secrets == ("a", "b")
    assert parse_defaults("") == RuntimePodDefaults()
    with pytest.raises(ValueError, match=r"^--runtime-pod-defaults: nodeSelectr: Extra inputs"):
        parse_defaults('{"nodeSelectr": {}}')
    with pytest.raises(ValueError, match="not JSON"):
        parse_defaults("{")
    with pytest.raises(ValueError, match="must be a JSON object"):
        parse_defaults("[]")


def _verdict(lists: Allowlists, **runtime: Any) -> Any:
    return check(parse_spec(raw_spec(runtime=runtime)), lists, default_image=IMAGE)


def test_pull_secrets_only_from_the_policy() -> None:
    secrets = [{"name": "team-pull"}, {"name": "platform-robot"}]
    refused = _verdict(Allowlists(), imagePullSecrets=secrets)
    assert [v.message for v in refused.violations] == [
        "spec.runtime.imagePullSecrets 'team-pull' is not among the pull Secrets the operator allows",
        "spec.runtime.imagePullSecrets 'platform-robot' is not among the pull Secrets the operator allows",
    ]
    assert refused.reason == "PodFieldNotAllowed"
    partly = _verdict(Allowlists(image_pull_secret_names=("team-*",)), imagePullSecrets=secrets)
    assert [v.message for v in partly.violations] == [refused.violations[1].message]
    both = Allowlists(image_pull_secret_names=("team-*", "platform-robot"))
    assert _verdict(both, imagePullSecrets=secrets).allowed


MAXIMA = Allowlists(max_resources=(("memory", "1Gi"), ("ephemeral-storage", "1Gi")))


@pytest.mark.parametrize(
    "resources, problems",
    [
        ({"requests": {"memory": "2Gi"}, "limits": {"memory": "512Mi", "ephemeral-storage": "1Gi"}},
         ["requests.memory 2Gi exceeds the operator's maximum 1Gi"]),
        ({"limits": {"memory": "1025Mi", "ephemeral-storage": "1G"}},
         ["limits.memory 1025Mi exceeds the operator's maximum 1Gi"]),
        ({"requests": {"cpu": "8"}, "limits": {"memory": "1Gi"}},
         ["limits.ephemeral-storage must be set (at most 1Gi): the operator bounds ephemeral-storage"]),
        ({"requests": {"cpu": "8", "memory": "1Gi"},
          "limits": {"memory": "1Gi", "ephemeral-storage": "512Mi"}}, []),
    ],
)  # fmt: skip
def test_resources_stay_within_the_policy_maxima(resources: dict[str, Any], problems: list[str]) -> None:
    result = _verdict(MAXIMA, resources=resources)
    assert [v.message for v in result.violations] == [f"spec.runtime.resources.{p}" for p in problems]
    # No maximum: nothing bounds them (namespace quotas still do); no resources: the defaults apply.
    assert _verdict(Allowlists(), resources=resources).allowed
    assert check(parse_spec(raw_spec()), MAXIMA, default_image=IMAGE).allowed


def test_flags_become_policy_and_defaults() -> None:
    args = [
        "--allow-image-pull-secret=team-*",
        "--max-runtime-resource=memory=2Gi",
        f"--runtime-pod-defaults={json.dumps(PLATFORM)}",
    ]
    cfg = cli.config_from_args(cli.build_parser().parse_args(args))
    assert cfg.allowlists.image_pull_secret_names == ("team-*",)
    assert cfg.allowlists.max_resources == (("memory", "2Gi"),)
    assert cfg.pod_defaults.node_selector == {"pool": "intel"}


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--max-runtime-resource=memory", "must look like memory=1Gi"),
        ("--max-runtime-resource=memory=lots", "must look like memory=1Gi"),
        ('--runtime-pod-defaults={"tolerations": {}}', "--runtime-pod-defaults: tolerations"),
        # Defaults that break the maxima would make every runtime Deployment fail admission.
        (
            '--runtime-pod-defaults={"resources": {"limits": {"memory": "4Gi"}}}',
            "limits.memory 4Gi exceeds the operator's maximum 2Gi",
        ),
    ],
)
def test_bad_flags_stop_the_operator_in_one_line(
    flag: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [flag, "--max-runtime-resource=memory=2Gi", "--metrics-port", "0", "--liveness-port", "0"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sekoia-intel-operator: error:") and "\n" not in err and message in err, err
