"""The soak, start to end: bring the stack up, stream the traffic while the faults run, wait for the
collection to settle, then judge it.

The operator runs as a user would run it (a process with the admin kubeconfig). The runtime runs
from the operator's Deployment, with its Pod's identity and the Secret's values: on the real node
(kubelet + containerd + runc, the image built from the Dockerfile) whenever this machine can run
one, else with the local stand-in for a kubelet, and the report says which and why. Their
configuration is the product's defaults plus the resource's ``push`` tuning.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from testbed.controlplane.cluster import LocalCluster
from testbed.demo.emulators import EmulatorProcess, start_opencti, start_sekoia
from testbed.demo.node import NodeChoice, choose_node, node_versions
from testbed.demo.stack import Stack
from testbed.emulators.sekoia.remote import RemoteEmulator
from testbed.manifests import GROUP, PLURAL, VERSION, credentials_and_sync
from testbed.node.build import NodeBuildFailed
from testbed.node.realnode import GATEWAY
from testbed.processes import ManagedProcess, wait_until
from testbed.soak.faults import SCHEDULE, Fault, FaultInjector, Injected
from testbed.soak.nodepods import KubeletRuntimes
from testbed.soak.runtimes import ROLLOUT, Runtimes
from testbed.soak.supervisor import RuntimeSupervisor
from testbed.soak.traffic import Traffic, build_traffic
from testbed.soak.verify import Verdict, judge, read_runtime_log_file, status_problems

NAMESPACE = "soak"
CLAIMS_NAMESPACE = "sekoia-intel-system"
SYNC_NAME = "soak-feed"
SECRET_NAME = "soak-credentials"
STREAM_ID = "9a0c2d4e-2222-4f6a-8b1c-0123456789ab"
COLLECTION = "ioc-collection--5b6c7d8e-9f00-4a1b-8c2d-3e4f5a6b7c8d"
CHUNK = 200  # events per admin call


@dataclass(frozen=True)
class SoakSettings:
    """Size and pace of one soak."""

    events: int = 50_000  # indicator events, at least
    stream_seconds: float = 300.0  # the traffic is spread over this long; faults scale with it
    drain_seconds: float = 900.0  # after the stream and the faults, time allowed to settle
    seed: int = 2026
    requests_per_second: float = 60.0  # spec.push.requestsPerSecond
    sekoia_rate_limit: int = 100  # the emulated firewall, requests per second per key
    schedule: tuple[Fault, ...] = SCHEDULE


@dataclass
class SoakResult:
    """Everything the report shows."""

    settings: SoakSettings
    traffic_kinds: dict[str, int]
    events_sent: int
    indicator_events: int
    faults: list[Injected]
    verdict: Verdict | None = None
    failure: str = ""
    runtime_where: str = ""  # the real node (versions) or the stand-in (and why)
    runtime_starts: int = 0
    runtime_ends: dict[str, int] = field(default_factory=dict)
    runtime_counters: dict[str, float] = field(default_factory=dict)
    runtime_memory: dict[str, float] = field(default_factory=dict)  # peak_bytes, limit_bytes
    sekoia_requests: int = 0
    sekoia_by_status: dict[str, int] = field(default_factory=dict)
    operator_restarts: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    last_event_id: str = ""
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Exit 0 only when the verdict found nothing wrong and every fault was injected."""
        return (
            not self.failure
            and self.verdict is not None
            and self.verdict.ok
            and all(f.ok for f in self.faults)
        )


class Soak:
    """One run. ``run()`` returns a SoakResult; ``stop()`` tears everything down. ``node`` says
    where the runtime Pods run (default: the real node when this machine can run one)."""

    def __init__(self, run_dir: Path, settings: SoakSettings, node: NodeChoice | None = None) -> None:
        self.settings = settings
        self.node = choose_node() if node is None else node
        self.stack = Stack(run_dir)
        self.opencti_token = f"soak-opencti-{secrets.token_hex(8)}"
        self.sekoia_key = f"soak-sekoia-{secrets.token_hex(8)}"
        self.opencti: EmulatorProcess | None = None
        self.sekoia_process: EmulatorProcess | None = None
        self.operator: ManagedProcess | None = None
        self.operator_restarts = 0
        self._runtimes: Runtimes | None = None
        self._sekoia: RemoteEmulator | None = None
        self.traffic: Traffic | None = None
        self.sent = 0
        self.last_event_id = ""

    # ------------------------------------------------------------------ what faults need
    @property
    def cluster(self) -> LocalCluster:
        return self.stack.require_cluster()

    @property
    def runtimes(self) -> Runtimes:
        assert self._runtimes is not None
        return self._runtimes

    @property
    def sekoia(self) -> RemoteEmulator:
        assert self._sekoia is not None
        return self._sekoia

    @property
    def opencti_url(self) -> str:
        assert self.opencti is not None
        return self.opencti.base_url

    def restart_operator(self) -> str:
        """SIGKILL the operator, then start a new one (what its Deployment would do)."""
        assert self.operator is not None
        pid = self.operator.pid
        self.operator.kill()
        time.sleep(1.0)
        # The same flags as the first one: a replacement without them would roll the runtime over
        # to another image and refuse the emulator's URL.
        self.operator = self.stack.start_operator(CLAIMS_NAMESPACE, self._operator_args())
        self.operator_restarts += 1
        return f"operator pid {pid} SIGKILLed, pid {self.operator.pid} live again"

    def rotate_sekoia_key(self, new_key: str) -> str:
        """Give Sekoia a new key, put it in the Secret, wait for the runtime to roll over to it,
        then revoke the old key in Sekoia (a runtime still on it would fail from then on)."""
        began = time.monotonic()
        starts_before = self.runtimes.starts()
        self.sekoia.add_api_key(new_key)
        patch = {"stringData": {"sekoia-api-key": new_key}}
        self.cluster.kubectl(
            "-n", NAMESPACE, "patch", "secret", SECRET_NAME, "--type=merge", "-p", json.dumps(patch)
        )
        wait_until(
            lambda: self.runtimes.starts() > starts_before and ROLLOUT in self.runtimes.restarts_by_reason(),
            120,
            "the operator to roll the runtime over to the rotated Secret",
        )
        self.runtimes.wait_ready(90, started_after=began)
        if not self.sekoia.remove_api_key(self.sekoia_key):
            raise RuntimeError("the old Sekoia key was not known to the emulator")
        self.sekoia_key = new_key
        return f"Secret rotated; runtime rolled over in {time.monotonic() - began:.1f}s; old key revoked"

    def sync_condition(self, kind: str) -> dict[str, Any]:
        """One condition of the soak's resource (empty when absent)."""
        for cond in (self._resource().get("status") or {}).get("conditions") or []:
            if cond.get("type") == kind:
                return dict(cond)
        return {}

    # ------------------------------------------------------------------ the run
    def run(self) -> SoakResult:
        """All phases; failures are recorded in the result rather than raised."""
        settings = self.settings
        timings: dict[str, float] = {}
        began = time.monotonic()
        self.traffic = build_traffic(settings.events, seed=settings.seed)
        result = SoakResult(
            settings=settings,
            traffic_kinds=dict(self.traffic.kinds),
            events_sent=0,
            indicator_events=self.traffic.indicator_events,
            faults=[],
        )
        injector: FaultInjector | None = None
        try:
            self._bring_up()
            timings["set_up"] = time.monotonic() - began
            stream_began = time.monotonic()
            injector = FaultInjector(self, settings.schedule, settings.stream_seconds).start(stream_began)
            self._stream(stream_began)
            injector.join()
            timings["stream_and_faults"] = time.monotonic() - stream_began
            settle_began = time.monotonic()
            result.verdict = self._settle()
            timings["settle"] = time.monotonic() - settle_began
        except Exception as exc:
            result.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:400]
        finally:
            if injector is not None:
                result.faults = list(injector.done)
            result.events_sent = self.sent
            result.last_event_id = self.last_event_id
            self._collect(result)
            timings["total"] = time.monotonic() - began
            result.timings = {k: round(v, 1) for k, v in timings.items()}
        return result

    def stop(self) -> None:
        """Stop every process started (safe at any point)."""
        if self._runtimes is not None:
            self._runtimes.stop()
        self.stack.stop()

    # ------------------------------------------------------------------ phases
    def _bring_up(self) -> None:
        settings = self.settings
        self._start_cluster()
        self.stack.install_crd()
        empty = self.stack.run_dir / "empty.jsonl"
        empty.write_text("")
        # On the real node the runtime runs in a Pod: it reaches this host at the Pods' gateway.
        host = GATEWAY if self.node.real else "127.0.0.1"
        self.opencti = start_opencti(self.stack.log_dir, self.opencti_token, STREAM_ID, empty, host=host)
        self.stack.track(self.opencti.process)
        self.sekoia_process = start_sekoia(self.stack.log_dir, self.sekoia_key, COLLECTION, host=host)
        self.stack.track(self.sekoia_process.process)
        self._sekoia = RemoteEmulator(self.sekoia_process.base_url, timeout=60)
        self.sekoia.set_options(rate_limit=settings.sekoia_rate_limit, rate_window=1.0)
        self.sekoia.set_faults(latency=0.005, latency_jitter=0.02)
        self.cluster.kubectl("create", "namespace", CLAIMS_NAMESPACE)
        self.operator = self.stack.start_operator(CLAIMS_NAMESPACE, self._operator_args())
        self.cluster.kubectl("create", "namespace", NAMESPACE)
        if self.node.real:
            # The runtime Pod must pass the strictest Pod Security profile to run at all.
            self.cluster.kubectl(
                "label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted"
            )
        self.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(self._manifests()))
        deployment = self._wait_for_deployment()
        self._runtimes = self._watch_runtimes(deployment).start()
        # A real node's first Pod waits for the image, its sandbox and its probes.
        self.runtimes.wait_ready(240 if self.node.real else 120)

    def _start_cluster(self) -> None:
        if self.node.real:
            try:
                self.stack.start_cluster(real_node=True)
                return
            except NodeBuildFailed as exc:
                # The machine could run a node but not build it (e.g. no package index reachable).
                lines = str(exc).strip().splitlines()
                self.node = NodeChoice(False, f"the real node's build failed: {lines[0] if lines else exc}")
        self.stack.start_cluster()

    def _operator_args(self) -> list[str]:
        # The operator shares 5 requests/s per Sekoia host unless told the tenant's real budget;
        # the emulated firewall allows `sekoia_rate_limit`, which is what an operator of such a
        # tenant would configure (the sync's own requestsPerSecond stays the ceiling).
        budget = [f"--sekoia-budget={self.settings.sekoia_rate_limit}"]
        if not self.node.real:
            return budget
        image = self.cluster.node_artifacts.image_ref
        return [*budget, "--runtime-image", image, f"--allow-sekoia-url=http://{GATEWAY}:*"]

    def _watch_runtimes(self, deployment: str) -> Runtimes:
        run_dir = self.stack.run_dir
        if self.node.real:
            versions = node_versions(self.cluster.real_node.artifacts.bin_dir)
            where = f"real node: {versions}, image {self.cluster.node_artifacts.image_ref}"
            return KubeletRuntimes(self.cluster, NAMESPACE, deployment, run_dir, where)
        return RuntimeSupervisor(self.cluster, NAMESPACE, deployment, run_dir, self.node.reason)

    def _manifests(self) -> list[dict[str, Any]]:
        return credentials_and_sync(
            NAMESPACE,
            SYNC_NAME,
            SECRET_NAME,
            opencti=(self.opencti_url, STREAM_ID, self.opencti_token),
            sekoia=(self.sekoia.base_url, COLLECTION, self.sekoia_key),
            connector={"name": "soak"},
            push={"requestsPerSecond": self.settings.requests_per_second},
        )

    def _wait_for_deployment(self) -> str:
        from kubernetes import client

        apps = client.AppsV1Api(self.cluster.api_client())
        uid = self._resource()["metadata"]["uid"]
        found: list[str] = []

        def created() -> bool:
            for dep in apps.list_namespaced_deployment(NAMESPACE).items:
                if any(ref.uid == uid for ref in dep.metadata.owner_references or []):
                    found.append(dep.metadata.name)
            return bool(found)

        wait_until(created, 90, "the operator to create the runtime Deployment")
        return found[0]

    def _stream(self, began: float) -> None:
        """Send the traffic in chunks, evenly over ``stream_seconds``."""
        assert self.traffic is not None
        operations = self.traffic.operations
        session = requests.Session()
        session.trust_env = False
        pace = self.settings.stream_seconds / max(1, len(operations))
        for start in range(0, len(operations), CHUNK):
            wait = began + start * pace - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            chunk = operations[start : start + CHUNK]
            answer = session.post(
                f"{self.opencti_url}/_emulator/events/batch", json={"operations": chunk}, timeout=60
            )
            answer.raise_for_status()
            ids = answer.json()["event_ids"]
            self.sent += len(chunk)
            self.last_event_id = ids[-1]

    def _settle(self) -> Verdict:
        """Wait until the collection matches the model and the status says so (or the drain time
        is over), then judge."""
        assert self.traffic is not None
        expect = self.traffic.expect
        deadline = time.monotonic() + self.settings.drain_seconds
        verdict = self._judge()
        while not verdict.ok and time.monotonic() < deadline:
            time.sleep(5.0)
            if self.sekoia.summary()["active"] != len(expect.active):
                continue  # cheap check first: the full state is tens of MB
            verdict = self._judge()
        return verdict

    def _judge(self) -> Verdict:
        assert self.traffic is not None
        indicators = self.sekoia.indicators(COLLECTION)
        facts = read_runtime_log_file(self.runtimes.log_path())
        try:
            problems = status_problems(self._resource(), self.last_event_id)
        except Exception as exc:  # the API server may be restarting
            problems = [f"status unreadable: {type(exc).__name__}"]
        return judge(self.traffic.expect, indicators, facts, problems)

    def _resource(self) -> dict[str, Any]:
        from kubernetes import client

        api = client.CustomObjectsApi(self.cluster.api_client())
        return dict(api.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, SYNC_NAME))

    def _collect(self, result: SoakResult) -> None:
        if self._runtimes is not None:
            result.runtime_where = self.runtimes.where
            result.runtime_starts = self.runtimes.starts()
            result.runtime_ends = self.runtimes.restarts_by_reason()
            result.runtime_counters = self.runtimes.totals()
            result.runtime_memory = self.runtimes.peak_memory()
        if self._sekoia is not None:
            try:
                summary = self.sekoia.summary()
                result.sekoia_requests = int(summary["requests"])
                result.sekoia_by_status = {str(k): int(v) for k, v in summary["by_status"].items()}
            except Exception as exc:
                result.failure = result.failure or f"Sekoia emulator unreadable: {exc}"
        try:
            result.status = dict(self._resource().get("status") or {})
        except Exception:
            result.status = {}
        result.operator_restarts = self.operator_restarts


def run_and_stop(soak: Soak) -> SoakResult:
    """Run a soak and always stop everything it started."""
    try:
        return soak.run()
    finally:
        soak.stop()
