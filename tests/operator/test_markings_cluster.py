"""spec.push.markings through the real API server and operator to a real runtime: the CRD
validates it, the operator writes it into the runtime's environment (a change rolls the
runtime), and the runtime run with that environment skips what the policy refuses and reports
it in status.progress.valuesSkipped through its own ServiceAccount."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from test_operator_cluster import (  # noqa: F401  (fixtures are used by name)
    Operator,
    api,
    child,
    collection,
    crd,
    create,
    create_secret,
    get,
    manifest,
    patch_spec,
    start_operator,
    wait_condition,
)

from connector_runtime.conversion import convert_indicator
from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.pair import running_emulators
from testbed.emulators.sekoia.server import SekoiaEmulator
from testbed.processes import wait_until
from testbed.runtime_process import RuntimeProcess, runtime_env

pytestmark = pytest.mark.cluster

OPENCTI_TOKEN, SEKOIA_KEY, STREAM = "octi-markings-token-3b7d", "sekoia-markings-key-91fe", "live-markings"
COLLECTION = "ioc-collection--7b8c9d0e-1f2a-4b3c-8d4e-5f6071829304"


@pytest.fixture
def emulators() -> Iterator[tuple[OpenCTIEmulator, SekoiaEmulator]]:
    with running_emulators(OPENCTI_TOKEN, STREAM, SEKOIA_KEY, COLLECTION) as pair:
        yield pair


def _indicator(n: int, marking: str) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=n)}",
        "pattern": f"[domain-name:value = 'host-{n}.example']",
        "pattern_type": "stix",
        "valid_from": "2025-01-01T00:00:00.000Z",
        "object_marking_refs": [marking],
    }


def _container_env(handles: dict[str, Any], namespace: str, name: str) -> dict[str, str]:
    dep = handles["apps"].read_namespaced_deployment(child(handles, namespace, name), namespace)
    return {e.name: e.value for e in dep.spec.template.spec.containers[0].env if e.value is not None}


def test_markings_spec_reaches_the_runtime_and_its_status(
    start_operator: Callable[..., Operator],  # noqa: F811  (the imported fixture)
    api: dict[str, Any],  # noqa: F811
    namespace: str,
    cluster: Any,
    emulators: tuple[OpenCTIEmulator, SekoiaEmulator],
    tmp_path: Path,
) -> None:
    opencti, sekoia = emulators
    # The API server refuses a level that does not exist, naming the field.
    with pytest.raises(ApiException) as refused:
        create(api, namespace, manifest("bad", collection(), push={"markings": {"maxTlp": "TLP:PINK"}}))
    assert refused.value.status == 422 and "spec.push.markings.maxTlp" in str(refused.value.body)

    op = start_operator()
    create_secret(api, namespace)
    create(api, namespace, manifest("feed", collection()))
    wait_condition(api, namespace, "feed", "Ready", "True", "Synchronizing", op)
    assert not any(k.startswith("SEKOIA_INTEL_MARKINGS_") for k in _container_env(api, namespace, "feed"))
    stored = get(api, namespace, "feed")["spec"]["push"]["markings"]
    assert stored == {"maxTlp": "TLP:AMBER+STRICT", "unmarked": "push"}  # the CRD's defaults

    patch_spec(api, namespace, "feed", {"push": {"markings": {"maxTlp": "TLP:GREEN"}}})
    wait_until(
        lambda: _container_env(api, namespace, "feed").get("SEKOIA_INTEL_MARKINGS_MAX_TLP") == "TLP:GREEN",
        60,
        "the operator to roll the runtime with the new policy",
        on_timeout=op.log_text,
    )
    wait_condition(api, namespace, "feed", "Ready", "True", "Synchronizing", op)
    guardrail_env = {
        k: v
        for k, v in _container_env(api, namespace, "feed").items()
        if k.startswith("SEKOIA_INTEL_MARKINGS_")
    }

    green, amber, red = (opencti.markings.by_name(f"TLP:{level}") for level in ("GREEN", "AMBER", "RED"))
    indicators = [_indicator(1, green), _indicator(2, amber), _indicator(3, red), _indicator(4, green)]
    opencti.add_bundle(indicators)
    # The runtime runs outside the (kwok) Pod, with the resource's identity and the operator's policy.
    token = cluster.token_for(namespace, child(api, namespace, "feed"))
    kubeconfig = cluster.kubeconfig_for_token(token, tmp_path / "runtime.kubeconfig")
    env = runtime_env(
        opencti.base_url,
        OPENCTI_TOKEN,
        STREAM,
        sekoia.base_url,
        SEKOIA_KEY,
        COLLECTION,
        str(uuid.uuid4()),
        KUBECONFIG=str(kubeconfig),
        RUNTIME_STATUS_RESOURCE=f"{namespace}/feed",
        RUNTIME_STATUS_INTERVAL_SECONDS="1",
        **guardrail_env,
    )
    runtime = RuntimeProcess(env, tmp_path / "runtime.log").start()
    try:
        expected = {v.value for ind in (indicators[0], indicators[3]) for v in convert_indicator(ind).values}
        wait_until(
            lambda: sekoia.active_values(COLLECTION) == expected,
            60,
            "only the TLP:GREEN values in Sekoia",
            on_timeout=lambda: runtime.log()[-2000:],
        )
        wait_until(
            lambda: (get(api, namespace, "feed")["status"].get("progress") or {}).get("valuesSkipped") == 2,
            30,
            "status.progress.valuesSkipped to count the refused values",
            on_timeout=lambda: str(get(api, namespace, "feed")["status"].get("progress")),
        )
        assert "TLP:AMBER" in runtime.log() and "TLP:RED" in runtime.log()
    finally:
        runtime.terminate()
