"""Resync on demand through the real API server and operator: push, empty the collection by
hand, request a resync in the spec -> the operator rolls the runtime with the request, the
runtime (run with the rolled Pod template's variables) refills the collection with exactly what
is active, and reports the resync in status.progress.resync."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
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

OPENCTI_TOKEN, SEKOIA_KEY, STREAM = "octi-resync-token-2c4e", "sekoia-resync-key-6d1a", "live-resync"
COLLECTION = "ioc-collection--8c9d0e1f-2a3b-4c4d-9e5f-60718293a4b5"
DATA_FILE = Path(__file__).resolve().parents[2] / "testbed" / "data" / "sekoia-apt31-indicators.jsonl"


@pytest.fixture
def emulators() -> Iterator[tuple[OpenCTIEmulator, SekoiaEmulator]]:
    with running_emulators(OPENCTI_TOKEN, STREAM, SEKOIA_KEY, COLLECTION, recovery=True) as pair:
        yield pair


def _container_env(handles: dict[str, Any], namespace: str, name: str) -> dict[str, str]:
    dep = handles["apps"].read_namespaced_deployment(child(handles, namespace, name), namespace)
    return {e.name: e.value for e in dep.spec.template.spec.containers[0].env if e.value is not None}


def test_resync_request_refills_a_collection_emptied_by_hand(
    start_operator: Callable[..., Operator],  # noqa: F811  (the imported fixture)
    api: dict[str, Any],  # noqa: F811
    namespace: str,
    cluster: Any,
    emulators: tuple[OpenCTIEmulator, SekoiaEmulator],
    tmp_path: Path,
) -> None:
    opencti, sekoia = emulators
    op = start_operator()
    create_secret(api, namespace)
    create(api, namespace, manifest("feed", collection()))
    wait_condition(api, namespace, "feed", "Ready", "True", "Synchronizing", op)
    token = cluster.token_for(namespace, child(api, namespace, "feed"))
    kubeconfig = cluster.kubeconfig_for_token(token, tmp_path / "runtime.kubeconfig")
    connector_id = str(uuid.uuid4())

    def run_pod(name: str) -> RuntimeProcess:
        """What the kubelet would run for the current Pod template (endpoints: the emulators)."""
        rolled = _container_env(api, namespace, "feed")
        env = runtime_env(
            opencti.base_url,
            OPENCTI_TOKEN,
            STREAM,
            sekoia.base_url,
            SEKOIA_KEY,
            COLLECTION,
            connector_id,
            KUBECONFIG=str(kubeconfig),
            RUNTIME_STATUS_RESOURCE=f"{namespace}/feed",
            RUNTIME_STATUS_INTERVAL_SECONDS="1",
            RUNTIME_STATE_SAVE_INTERVAL_SECONDS="1",
            **{k: v for k, v in rolled.items() if k.startswith("RUNTIME_RESYNC_")},
        )
        return RuntimeProcess(env, tmp_path / f"{name}.log").start()

    rows = [json.loads(line) for line in DATA_FILE.read_text().splitlines() if line.strip()]
    indicators = [row for row in rows if convert_indicator(row).values][:30]
    opencti.add_bundle(indicators)
    opencti.delete(indicators[0])
    active = {v.value for ind in indicators[1:] for v in convert_indicator(ind).values}
    first = run_pod("first")
    try:
        wait_until(lambda: sekoia.active_values(COLLECTION) == active, 60, "the first sync")
    finally:
        assert first.terminate()[0] == 0
    assert sekoia.revoke_all(COLLECTION) == len(active)
    assert sekoia.active_values(COLLECTION) == set()

    generation = get(api, namespace, "feed")["metadata"]["generation"]
    patch_spec(
        api, namespace, "feed", {"opencti": {"resyncFrom": "2020-01-01T00:00:00Z", "resyncToken": "refill-1"}}
    )
    wait_until(
        lambda: _container_env(api, namespace, "feed").get("RUNTIME_RESYNC_TOKEN") == "refill-1",
        60,
        "the operator to roll the runtime with the resync request",
        on_timeout=op.log_text,
    )
    assert get(api, namespace, "feed")["metadata"]["generation"] == generation + 1
    second = run_pod("second")
    try:
        wait_until(
            lambda: sekoia.active_values(COLLECTION) == active,
            60,
            "the resync to refill the collection with exactly the active values",
            on_timeout=lambda: second.log()[-2000:],
        )

        def resync_status() -> dict[str, Any]:
            return dict((get(api, namespace, "feed")["status"].get("progress") or {}).get("resync") or {})

        wait_until(
            lambda: resync_status().get("state") == "Completed",
            30,
            "status.progress.resync to say Completed",
            on_timeout=lambda: str(resync_status()),
        )
        shown = resync_status()
        assert shown["token"] == "refill-1" and shown["from"] == "2020-01-01T00:00:00.000Z"
        assert shown["endedAt"] and shown["position"]
    finally:
        assert second.terminate()[0] == 0
