"""Chart values for runtime Pods (runtimeDefaults.*, policy.imagePullSecretNames,
policy.maxRuntimeResources) rendered into the operator's flags and the admission policy, and read
back by the operator's own command-line parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from packaging_helpers import CHART, find, helm
from sekoia_intel_operator import cli

VALUES: dict[str, Any] = {
    "runtimeDefaults": {
        "imagePullSecrets": [{"name": "regcred"}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "64Mi"},
            "limits": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "512Mi"},
        },
        "nodeSelector": {"pool": "intel"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "intel", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "connector-runtime"}},
            }
        ],
        "priorityClassName": "intel-feeds",
    },
    "policy": {"imagePullSecretNames": ["team-*"], "maxRuntimeResources": {"memory": "2Gi", "cpu": 2}},
}


def _render(tmp_path: Path, values: dict[str, Any] | None) -> list[dict[str, Any]]:
    # Without the webhook: the parser checks that the webhook's certificate files exist.
    args = ["template", "rel", str(CHART), "--namespace", "sis-system", "--set", "webhook.enabled=false"]
    if values is not None:
        path = tmp_path / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        args += ["-f", str(path)]
    return [d for d in yaml.safe_load_all(helm(*args).stdout) if d]


def _args(objs: list[dict[str, Any]]) -> list[str]:
    (dep,) = find(objs, "Deployment")
    args: list[str] = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def _variables(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (vap,) = find(objs, "ValidatingAdmissionPolicy")
    return {v["name"]: yaml.safe_load(v["expression"]) for v in vap["spec"]["variables"]}


def test_default_values_give_bounded_runtime_resources_and_nothing_else(tmp_path: Path) -> None:
    objs = _render(tmp_path, None)
    cfg = cli.config_from_args(cli.build_parser().parse_args(_args(objs)))
    defaults = cfg.pod_defaults
    assert defaults.resources == {
        "requests": {"cpu": "50m", "memory": "128Mi", "ephemeral-storage": "64Mi"},
        "limits": {"memory": "512Mi", "ephemeral-storage": "256Mi"},
    }
    assert not (defaults.image_pull_secrets or defaults.node_selector or defaults.tolerations)
    assert not (defaults.affinity or defaults.topology_spread_constraints or defaults.priority_class_name)
    assert cfg.allowlists.image_pull_secret_names == ()
    assert dict(cfg.allowlists.max_resources) == {"memory": "2Gi", "ephemeral-storage": "1Gi"}
    variables = _variables(objs)
    # Lists, never null: CEL cannot range over null and the API server would refuse the policy.
    for name in ("pullSecrets", "tolerationKeys", "nodeSelectorKeys", "priorityClasses"):
        assert variables[name] == [], name
    assert variables["maxResources"] == {"memory": "2Gi", "ephemeral-storage": "1Gi"}


def test_runtime_defaults_become_the_operators_flags_and_pass_the_admission_policy(tmp_path: Path) -> None:
    objs = _render(tmp_path, VALUES)
    args = _args(objs)
    assert "--allow-image-pull-secret=team-*" in args
    assert "--max-runtime-resource=cpu=2" in args and "--max-runtime-resource=memory=2Gi" in args
    # The operator parses exactly what the chart renders: every default arrives as given.
    cfg = cli.config_from_args(cli.build_parser().parse_args(args))
    given = VALUES["runtimeDefaults"]
    d = cfg.pod_defaults
    assert d.image_pull_secrets == ("regcred",)
    assert d.resources == given["resources"]
    assert d.node_selector == given["nodeSelector"]
    assert list(d.tolerations) == given["tolerations"]
    assert d.affinity == given["affinity"]
    assert list(d.topology_spread_constraints) == given["topologySpreadConstraints"]
    assert d.priority_class_name == "intel-feeds"
    # The admission policy lets the operator write the defaults (their keys and names are allowed)
    # next to what policy.* lets a resource add.
    variables = _variables(objs)
    assert variables["pullSecrets"] == ["team-*", "regcred"]
    assert variables["tolerationKeys"] == ["dedicated"]
    assert variables["nodeSelectorKeys"] == ["pool"]
    assert variables["priorityClasses"] == ["intel-feeds"]
    # Numbers become quantities; the default ephemeral-storage bound stays (Helm merges maps).
    assert variables["maxResources"] == {"memory": "2Gi", "cpu": "2", "ephemeral-storage": "1Gi"}
    (vap,) = find(objs, "ValidatingAdmissionPolicy")
    expressions = "\n".join(v["expression"] for v in vap["spec"]["validations"])
    assert "(true || !has(object.spec.template.spec.affinity))" in expressions
    assert "(true || !has(object.spec.template.spec.topologySpreadConstraints))" in expressions
    plain = "\n".join(
        v["expression"]
        for v in find(_render(tmp_path, None), "ValidatingAdmissionPolicy")[0]["spec"]["validations"]
    )
    assert "(false || !has(object.spec.template.spec.topologySpreadConstraints))" in plain


def test_misspelt_runtime_defaults_are_rejected_by_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump({"runtimeDefaults": {"imagePullSecret": [{"name": "x"}]}}))
    done = helm("template", "rel", str(CHART), "-f", str(path), check=False)
    assert done.returncode != 0 and "imagePullSecret" in done.stderr
