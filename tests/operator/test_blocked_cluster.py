"""A real runtime whose Sekoia writes are all redirected reports itself blocked through its own
ServiceAccount, and the operator turns that into Stalled with a reason a user can act on."""

from __future__ import annotations

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
    condition,
    crd,
    create,
    create_secret,
    get,
    manifest,
    start_operator,
    wait_condition,
)

from connector_runtime.sekoia import protocol
from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.pair import running_emulators
from testbed.emulators.sekoia.server import SekoiaEmulator
from testbed.processes import wait_until
from testbed.runtime_process import RuntimeProcess, runtime_env
from testbed.workload import build_workload, emit

pytestmark = pytest.mark.cluster

OPENCTI_TOKEN, SEKOIA_KEY, STREAM = "octi-blocked-token-5e1a", "sekoia-blocked-key-77c2", "live-blocked"
COLLECTION = "ioc-collection--6a7b8c9d-0e1f-4a2b-8c3d-4e5f60718293"


@pytest.fixture
def emulators() -> Iterator[tuple[OpenCTIEmulator, SekoiaEmulator]]:
    with running_emulators(OPENCTI_TOKEN, STREAM, SEKOIA_KEY, COLLECTION) as pair:
        yield pair


def test_a_runtime_whose_writes_are_redirected_makes_the_resource_stalled(
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

    # The runtime runs outside the (kwok) Pod, with the identity the operator gave the resource.
    token = cluster.token_for(namespace, child(api, namespace, "feed"))
    kubeconfig = cluster.kubeconfig_for_token(token, tmp_path / "runtime.kubeconfig")
    location = f"{sekoia.base_url}/api{protocol.API_PREFIX}/{COLLECTION}/indicators"
    sekoia.set_faults(redirect_location=location)
    work = build_workload(60, seed=4, churn=0.0)
    list(emit(opencti, work.operations))
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
        SEKOIA_INTEL_MAX_BACKOFF_SECONDS="1",
    )
    runtime = RuntimeProcess(env, tmp_path / "runtime.log").start()
    try:
        obj = wait_condition(api, namespace, "feed", "Stalled", "True", "SekoiaURLRedirects", op)
        stalled = condition(obj, "Stalled")
        assert f"set the Sekoia URL to {sekoia.base_url}/api" in stalled["message"]
        assert "the stream position does not move" in stalled["message"]
        ready = condition(obj, "Ready")
        assert ready["status"] == "False" and ready["reason"] == "SekoiaURLRedirects"
        blocked = obj["status"]["progress"]["blocked"]
        assert blocked["reason"] == "SekoiaURLRedirects" and blocked["since"]
        assert obj["status"]["progress"].get("lastCommittedEventId") in (None, "0-0")
        assert SEKOIA_KEY not in stalled["message"] and OPENCTI_TOKEN not in stalled["message"]
        printed = cluster.kubectl("-n", namespace, "get", "sis", "feed").stdout
        assert "SekoiaURLRedirects" in printed

        sekoia.set_faults(redirect_location=None)
        wait_until(
            lambda: sekoia.active_values(COLLECTION) == work.expected_values(),
            60,
            "every value once the redirect is gone",
            on_timeout=lambda: runtime.log()[-2000:],
        )
        obj = wait_condition(api, namespace, "feed", "Ready", "True", "Synchronizing", op)
        assert condition(obj, "Stalled")["status"] == "False"
        wait_until(
            lambda: "blocked" not in (get(api, namespace, "feed")["status"].get("progress") or {}),
            30,
            "the runtime to clear its report",
        )
    finally:
        runtime.terminate()
