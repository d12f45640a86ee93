"""Static expectations on the CRD (the live API server checks the rest in the cluster tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from operator_helpers import raw_spec
from sekoia_intel_operator import naming
from sekoia_intel_operator.spec import parse_spec

from connector_runtime.config import Coarsening, ValidityGranularity
from connector_runtime.delivery.positions import PositionTracker
from connector_runtime.progress import progress_snapshot

CRD_PATH = Path(__file__).resolve().parents[2] / "deploy" / "crds" / "sekoiaintelsyncs.yaml"


def _crd() -> dict[str, Any]:
    return yaml.safe_load(CRD_PATH.read_text())


def _schema() -> dict[str, Any]:
    return _crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _walk(node: Any, path: str = ""):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def test_identity_matches_the_operator() -> None:
    crd = _crd()
    assert crd["metadata"]["name"] == f"{naming.PLURAL}.{naming.API_GROUP}"
    spec = crd["spec"]
    assert spec["group"] == naming.API_GROUP and spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == naming.KIND and "sis" in spec["names"]["shortNames"]
    version = spec["versions"][0]
    assert version["name"] == naming.API_VERSION and version["subresources"] == {"status": {}}


def _properties(node: dict[str, Any], path: str = ""):
    """Every property schema under `node` (nested objects, array items, map values), with its path."""
    for name, child in node.get("properties", {}).items():
        yield f"{path}.{name}", child
        yield from _properties(child, f"{path}.{name}")
    items = node.get("items")
    if isinstance(items, dict):
        yield from _properties(items, f"{path}[]")
    values = node.get("additionalProperties")
    if isinstance(values, dict):
        yield from _properties(values, f"{path}{{}}")


def test_every_property_has_a_description() -> None:
    """`kubectl explain sekoiaintelsync.<path>` has something to say for every field."""
    schema = _schema()
    assert schema.get("description")
    paths = dict(_properties(schema))
    assert len(paths) >= 80  # the walk reaches nested objects, array items and status
    for must in (
        ".spec",
        ".status",
        ".spec.push",
        ".spec.runtime.resources.limits",
        ".status.conditions[].reason",
    ):
        assert must in paths
    # The API server refuses anything but `type: object` on metadata (ObjectMeta has its own docs).
    assert paths.pop(".metadata") == {"type": "object"}
    missing = sorted(path for path, node in paths.items() if not str(node.get("description", "")).strip())
    assert not missing, f"properties without a description: {missing}"
    objects_in_arrays = [
        p for p, n in paths.items() if n.get("type") == "array" and "properties" in n["items"]
    ]
    for path in objects_in_arrays:
        assert paths[path]["items"].get("description"), f"{path}[] has no description"


#: The structural-schema keywords this CRD uses; anything else is a typo (e.g. a comma inside a
#: flow-style description starts a new key) that the API server's strict decoding refuses.
SCHEMA_KEYWORDS = {
    "type", "description", "properties", "required", "items", "additionalProperties", "default", "enum",
    "maxLength", "minLength", "pattern", "maximum", "minimum", "exclusiveMinimum", "maxItems",
    "maxProperties", "format", "nullable", "anyOf", "x-kubernetes-validations",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
}  # fmt: skip


def test_every_schema_node_uses_only_schema_keywords() -> None:
    schema = _schema()
    for path, node in [("", schema), *_properties(schema)]:
        unknown = set(node) - SCHEMA_KEYWORDS
        assert not unknown, f"{path or '<root>'}: not a schema keyword: {sorted(unknown)}"
        assert isinstance(node.get("description", ""), str), path


def _columns() -> list[dict[str, Any]]:
    return _crd()["spec"]["versions"][0]["additionalPrinterColumns"]


def test_printer_columns_keep_the_default_table_narrow() -> None:
    """`kubectl get sis`: state and counters; the UUIDs and the Ready message only with `-o wide`."""
    columns = _columns()
    default = [c["name"] for c in columns if c.get("priority", 0) == 0]
    wide = {c["name"]: c for c in columns if c.get("priority", 0) == 1}
    assert default == ["Ready", "Reason", "Pushed", "Lag", "Age"]
    assert set(wide) == {"Suspended", "Share", "Stream", "Collection", "Message"}
    assert wide["Share"]["jsonPath"] == ".status.budget.requestsPerSecond"
    assert wide["Stream"]["jsonPath"] == ".spec.opencti.streamId"
    assert wide["Collection"]["jsonPath"] == ".spec.sekoia.collectionId"
    assert wide["Message"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].message'
    assert all(c.get("priority", 0) in (0, 1) for c in columns)


def test_printer_columns_point_at_declared_fields() -> None:
    paths = {path for path, _ in _properties(_schema())}
    for column in _columns():
        json_path = column["jsonPath"]
        if json_path.startswith(".metadata."):
            continue
        # `.status.conditions[?(...)].x` -> `.status.conditions[].x`
        declared = json_path.split("[?", 1)[0] + (
            "[]." + json_path.rsplit(".", 1)[1] if "[?" in json_path else ""
        )
        assert declared in paths, column
        assert column.get("description"), column


def test_status_keeps_kopf_fields_and_declares_progress() -> None:
    status = _schema()["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map" and conditions["x-kubernetes-list-map-keys"] == [
        "type"
    ]
    progress = status["properties"]["progress"]["properties"]
    for field in (
        "lastCommittedEventId",
        "lastCommittedEventTime",
        "valuesPushed",
        "valuesRevoked",
        "valuesRejected",
        "valuesSkipped",
        "pendingEvents",
        "lagSeconds",
        "updatedAt",
        "blocked",
    ):
        assert field in progress


def test_every_cel_rule_has_a_message() -> None:
    rules = [r for _, node in _walk(_schema()) for r in node.get("x-kubernetes-validations", [])]
    assert len(rules) >= 8
    for rule in rules:
        assert rule.get("message"), rule["rule"]


def test_immutable_fields() -> None:
    spec = _schema()["properties"]["spec"]["properties"]

    def transition(node: dict[str, Any]) -> bool:
        return any("oldSelf" in r["rule"] for r in node.get("x-kubernetes-validations", []))

    assert transition(spec["opencti"]["properties"]["streamId"])
    assert transition(spec["sekoia"]["properties"]["collectionId"])
    assert transition(spec["sekoia"]["properties"]["url"])
    assert not transition(spec["opencti"]["properties"]["url"])


def test_schema_defaults_match_the_typed_spec() -> None:
    spec_schema = _schema()["properties"]["spec"]
    assert set(spec_schema["required"]) == {"opencti", "sekoia", "credentialsSecretRef"}
    props = spec_schema["properties"]
    parsed = parse_spec(raw_spec())
    assert props["sekoia"]["properties"]["url"]["default"] == parsed.sekoia.url
    assert props["opencti"]["properties"]["listenDelete"]["default"] is parsed.opencti.listen_delete
    assert props["opencti"]["properties"]["noDependencies"]["default"] is parsed.opencti.no_dependencies
    creds = props["credentialsSecretRef"]["properties"]
    assert (
        creds["openctiTokenKey"]["default"],
        creds["sekoiaApiKeyKey"]["default"],
    ) == parsed.credentials_secret_ref.keys
    assert props["suspend"]["default"] is parsed.suspend
    push = props["push"]["properties"]
    assert push["batchSize"]["default"] == parsed.push.batch_size
    assert (push["batchSize"]["minimum"], push["batchSize"]["maximum"]) == (1, 100)
    assert push["requestsPerSecond"]["default"] == parsed.push.requests_per_second
    for field, attribute in (
        ("maxCoarsening", "max_coarsening"),
        ("validityGranularity", "validity_granularity"),
        ("coarseValidity", "coarse_validity"),
    ):
        assert push[field]["default"] == getattr(parsed.push, attribute)
        # The CRD and the runtime accept the same words: the runtime's enums are the reference.
        assert push[field]["description"]
    assert set(push["maxCoarsening"]["enum"]) == {c.value for c in Coarsening}
    assert set(push["validityGranularity"]["enum"]) == {g.value for g in ValidityGranularity}
    assert set(push["coarseValidity"]["enum"]) == {"hour", "day", "week", "month"}
    assert props["connector"]["properties"]["logLevel"]["default"] == parsed.connector.log_level


def test_progress_schema_declares_everything_the_runtime_writes() -> None:
    """A field the runtime writes but the schema does not declare has no description in `kubectl explain`."""
    declared = set(_schema()["properties"]["status"]["properties"]["progress"]["properties"])
    assert set(progress_snapshot(PositionTracker(), now=0.0)) <= declared
