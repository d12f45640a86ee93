"""The demo's story, step by step: bring everything up, let the operator create the runtime, run it
(on the real node when this machine can run one, else with the kubelet stand-in, saying why), watch
the values arrive, show the status, then revoke a few indicators and resync.

Every step waits on an observable fact (an endpoint, a condition, the collection's contents) with a
deadline, and a missed deadline raises with one line saying what did not happen.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from testbed.demo.dataset import DataSet
from testbed.demo.display import Console, ProgressBar
from testbed.demo.emulators import (
    EmulatorProcess,
    OpenCTIAdmin,
    sekoia_admin,
    start_opencti,
    start_sekoia,
)
from testbed.demo.kubelet import LocalContainer, plan_from_deployment, run_container
from testbed.demo.node import STAND_IN, NodeChoice, choose_node, node_versions
from testbed.demo.nodepod import NodePod, wait_ready_pod
from testbed.demo.stack import Stack
from testbed.manifests import GROUP, PLURAL, VERSION, credentials_and_sync
from testbed.node.build import NodeBuildFailed
from testbed.node.realnode import BRIDGE, GATEWAY, NODE_NAME
from testbed.processes import wait_until

NAMESPACE = "intel"
CLAIMS_NAMESPACE = "sekoia-intel-system"
SYNC_NAME = "apt-feed"
SECRET_NAME = "sis-credentials"
STREAM_ID = "5f3e1a2b-1111-4c2d-9e8f-0123456789ab"
COLLECTION = "ioc-collection--0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

RESYNC_FROM = "2020-01-01T00:00:00Z"
RESYNC_TOKEN = "demo-refill-1"

SYNC_TIMEOUT = 180.0  # the whole data set into the collection
STATUS_TIMEOUT = 45.0  # the runtime reports its progress every 10 s


class DemoFailure(RuntimeError):
    """The scenario did not reach its goal; the message is one line for the user."""


@dataclass
class Outcome:
    """What the run achieved, written as JSON with ``--report`` (the test reads it)."""

    expected: dict[str, str] = field(default_factory=dict)
    active: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    deleted_values: list[str] = field(default_factory=list)
    refused_values: list[str] = field(default_factory=list)
    resync: dict[str, Any] = field(default_factory=dict)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, Any] = field(default_factory=dict)
    runtime_identity: str = ""
    node: str = ""  # "real" (kubelet + containerd + runc) or "stand-in"
    node_reason: str = ""  # why the stand-in ran (empty on the real node)
    runtime_pods: list[dict[str, Any]] = field(default_factory=list)  # real node: each Pod that ran
    processes: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        """Save as JSON."""
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))


class Scenario:
    """One run of the demo over a :class:`Stack` (which the caller stops)."""

    def __init__(
        self, stack: Stack, console: Console, dataset: DataSet, node: NodeChoice | None = None
    ) -> None:
        self.stack = stack
        self.node = choose_node() if node is None else node
        self.out = console
        # Two indicators carry OpenCTI's TLP:RED marking: the sharing guardrail must keep them out.
        self.data = dataset.mark_red(2, stack.run_dir / "demo-indicators.jsonl")
        self.outcome = Outcome(expected=self.data.expected, refused_values=sorted(self.data.refused_values))
        # Fresh credentials per run: they only ever travel through the Secret.
        self.opencti_token = f"demo-opencti-{secrets.token_hex(8)}"
        self.sekoia_key = f"demo-sekoia-{secrets.token_hex(8)}"
        self.opencti: EmulatorProcess | None = None
        self.sekoia: EmulatorProcess | None = None
        # The runtime as it runs: a local process (stand-in) or a Pod on the real node.
        self.container: LocalContainer | None = None
        self.pod: NodePod | None = None
        self._api: Any = None

    # ------------------------------------------------------------------------------ the story
    def run(self) -> Outcome:
        """All steps; raises DemoFailure (or TimeoutError) when one does not reach its goal."""
        self._timed("control_plane", self.start_control_plane)
        self._timed("emulators", self.start_emulators)
        self._timed("operator", self.start_operator)
        self._timed("resources", self.apply_resources)
        self._timed("runtime_pod" if self.node.real else "kubelet_stand_in", self.run_runtime)
        self._timed("sync", self.watch_sync)
        self._timed("guardrail", self.show_guardrail)
        self._timed("status", self.show_status)
        self._timed("revocation", self.revoke)
        self._timed("resync", self.resync)
        self.verify()
        self.outcome.processes = self.stack.process_table()
        return self.outcome

    def start_control_plane(self) -> None:
        self.out.step(
            "Local Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler) "
            + ("and a real node" if self.node.real else "and kwok")
        )
        cluster = None
        if self.node.real:
            try:
                cluster = self.stack.start_cluster(real_node=True)
            except NodeBuildFailed as exc:
                # The machine could run a node but not build it (e.g. no package index reachable).
                lines = str(exc).strip().splitlines()
                self.node = NodeChoice(False, f"the real node's build failed: {lines[0] if lines else exc}")
        if cluster is not None:
            node = cluster.real_node
            self.out.detail(f"API server {cluster.server}, up in {cluster.startup_seconds:.1f}s")
            self.out.detail(
                f"real node: {node_versions(node.artifacts.bin_dir)} "
                f"(node {NODE_NAME}, Ready {node.startup_seconds:.1f}s after containerd started)"
            )
            self.out.detail(
                f"image      {cluster.node_artifacts.image_ref}: built from the project's Dockerfile "
                "(buildah), imported into the node's containerd"
            )
            self.out.detail(f"Pods get addresses on bridge {BRIDGE} and reach this host at {GATEWAY}.")
        else:
            self.out.detail(f"{STAND_IN} — because {self.node.reason}")
            cluster = self.stack.start_cluster()
            self.out.detail(f"API server {cluster.server}, up in {cluster.startup_seconds:.1f}s")
            self.out.detail("kwok plays the kubelet of one fake node: Pods scheduled there become Running")
            self.out.detail("without executing anything (step 5 runs the runtime's Pod as a local process).")
        self.outcome.node = "real" if self.node.real else "stand-in"
        self.outcome.node_reason = self.node.reason
        self.stack.install_crd()
        self.out.detail("CRD installed: deploy/crds/sekoiaintelsyncs.yaml (Established)")

    def start_emulators(self) -> None:
        # On the real node the runtime runs in a Pod: it reaches this host at the Pods' gateway.
        host = GATEWAY if self.node.real else "127.0.0.1"
        where = f"on the Pods' gateway {GATEWAY}" if self.node.real else "loopback only"
        self.out.step(f"OpenCTI and Sekoia.io emulators (separate processes, {where})")
        self.opencti = start_opencti(
            self.stack.log_dir, self.opencti_token, STREAM_ID, self.data.path, host=host
        )
        self.stack.track(self.opencti.process)
        self.sekoia = start_sekoia(self.stack.log_dir, self.sekoia_key, COLLECTION, host=host)
        self.stack.track(self.sekoia.process)
        self.out.detail(f"OpenCTI  {self.opencti.base_url}  live stream {STREAM_ID}")
        self.out.detail(
            f"         loaded with {len(self.data.indicators)} real indicators ({self.data.path.name}): "
            f"{self.data.pushable_indicators} STIX ones -> {len(self.data.expected)} Sekoia values, "
            f"{len(self.data.indicators) - self.data.pushable_indicators} YARA ones (not pushable)"
        )
        self.out.detail(
            f"         {len(self.data.refused)} of them marked TLP:RED (OpenCTI's marking-definition id): "
            "the sharing guardrail must keep them out of Sekoia"
        )
        self.out.detail(f"Sekoia   {self.sekoia.base_url}  collection {COLLECTION} (empty)")

    def start_operator(self) -> None:
        self.out.step("Operator (sekoia-intel-operator, a local process with the admin kubeconfig)")
        self._kubectl("create", "namespace", CLAIMS_NAMESPACE)
        extra: list[str] = []
        if self.node.real:
            image = self.stack.require_cluster().node_artifacts.image_ref
            extra = ["--runtime-image", image, f"--allow-sekoia-url=http://{GATEWAY}:*"]
        proc = self.stack.start_operator(CLAIMS_NAMESPACE, extra)
        self.out.detail(
            f"pid {proc.pid}, all namespaces, collection claims in {CLAIMS_NAMESPACE}, liveness OK"
        )
        if extra:
            self.out.detail(f"runtime image {extra[1]} (--runtime-image)")

    def apply_resources(self) -> None:
        self.out.step(f"An example Secret and SekoiaIntelSync in namespace {NAMESPACE}")
        assert self.opencti is not None and self.sekoia is not None
        self._kubectl("create", "namespace", NAMESPACE)
        if self.node.real:
            # The runtime Pod must pass the strictest Pod Security profile to run at all.
            self._kubectl("label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted")
            self.out.detail(f"namespace/{NAMESPACE} enforces the restricted Pod Security profile")
        secret, sync = credentials_and_sync(
            NAMESPACE,
            SYNC_NAME,
            SECRET_NAME,
            opencti=(self.opencti.base_url, STREAM_ID, self.opencti_token),
            sekoia=(self.sekoia.base_url, COLLECTION, self.sekoia_key),
            connector={"name": "apt31-demo"},
            # Smaller, slower pushes than the defaults (100 values, 5 requests/s), so that the
            # progress bar has something to show; they reach the Pod as SEKOIA_INTEL_* variables.
            # The sharing guardrail's default, written out: everything below TLP:RED may leave.
            push={"batchSize": 10, "requestsPerSecond": 3, "markings": {"maxTlp": "TLP:AMBER+STRICT"}},
        )
        self._kubectl("apply", "-f", "-", input=yaml.safe_dump_all([secret, sync]))
        self.out.detail(
            f"secret/{SECRET_NAME}: keys opencti-token, sekoia-api-key (values generated for this run)"
        )
        self.out.detail(yaml.safe_dump(sync, sort_keys=False).rstrip())

    def run_runtime(self) -> None:
        if self.node.real:
            self._run_on_real_node()
        else:
            self._run_with_stand_in()

    def _run_on_real_node(self) -> None:
        self.out.step("Real node: the kubelet runs the runtime Pod the operator wrote")
        deployment = self._wait_for_deployment()
        self.out.detail(f"Deployment {NAMESPACE}/{deployment} (created by the operator)")
        self.out.detail("waiting for the kubelet: image from containerd, sandbox + CNI address, probes...")
        self.pod = wait_ready_pod(self.stack.require_cluster(), NAMESPACE, self._selector(deployment))
        pod = self.pod
        took = f"{pod.seconds_to_ready:.0f}s" if pod.seconds_to_ready is not None else "?"
        self.out.detail(f"Pod {pod.name} on node {NODE_NAME}: Ready through its probes {took} after creation")
        self.out.detail(f"image        {pod.image}")
        self.out.detail(f"container    {pod.container_id} (runc, started by containerd's CRI plugin)")
        self.out.detail(f"Pod IP       {pod.ip} (bridge {BRIDGE}); metrics at {pod.base_url}/metrics")
        for name, ref in pod.from_secrets.items():
            self.out.detail(f"env          {name} <- secretKeyRef {ref} (resolved by the kubelet)")
        sc = pod.security
        self.out.detail(
            f"security     runAsUser {sc.get('runAsUser')}, runAsNonRoot {sc.get('runAsNonRoot')}, "
            f"readOnlyRootFilesystem {sc.get('readOnlyRootFilesystem')}, "
            f"capabilities drop {((sc.get('capabilities') or {}).get('drop'))}, "
            f"seccomp {(sc.get('seccompProfile') or {}).get('type')}"
        )
        seen = pod.host_view(self.stack.require_cluster())
        self.outcome.runtime_pods.append({"name": pod.name, "ip": pod.ip, "image": pod.image, **seen})
        self.out.detail(
            f"on this host pid {seen['hostPid']}: uid {seen['uid']}, CapEff {seen['capEff']}, "
            f"seccomp mode {seen['seccomp']}, root file system {seen['rootMount']} (/proc/{seen['hostPid']})"
        )
        self.out.detail(
            f"identity     ServiceAccount {NAMESPACE}/{pod.service_account}: token projected by the kubelet"
        )
        self._show_identity(service_account=pod.service_account)

    def _run_with_stand_in(self) -> None:
        self.out.step(f"{STAND_IN}: run the runtime Pod the operator wrote")
        deployment = self._wait_for_deployment()
        plan = plan_from_deployment(self.stack.require_cluster(), NAMESPACE, deployment)
        self.out.detail(f"Deployment {NAMESPACE}/{deployment} (created by the operator), Pod {plan.pod_name}")
        self.out.detail(
            f"command      {' '.join(plan.command)}   (from this checkout's installation, not the image)"
        )
        self.out.detail(f"env          {len(plan.env)} variables from the Pod template, of which")
        for name, ref in plan.from_secrets.items():
            self.out.detail(f"             {name} <- secretKeyRef {ref} (read through the API)")
        self.out.detail(
            f"identity     ServiceAccount {NAMESPACE}/{plan.service_account}: TokenRequest token bound"
        )
        self.out.detail(f"             to Pod {plan.pod_name}, in a kubeconfig passed as $KUBECONFIG")
        self.container = run_container(self.stack.require_cluster(), plan, self.stack.run_dir)
        self.stack.track(self.container.process)
        overrides = ", ".join(f"{k}={v}" for k, v in self.container.overrides.items())
        self.out.detail(f"overridden   {overrides}")
        self.out.detail(
            "             (the process shares this machine's ports and files, unlike a container)"
        )
        self._show_identity()
        seconds = self.container.wait_ready()
        self.out.detail(
            f"pid {self.container.process.pid}: readiness probe {plan.readiness_path} OK after {seconds:.1f}s"
        )

    def watch_sync(self) -> None:
        self.out.step("Synchronisation: values in the Sekoia collection, live")
        expected = set(self.data.expected)
        admin = sekoia_admin(self._sekoia_url())
        bar = ProgressBar(len(expected), "values in the collection", self.out.stream)
        deadline = time.monotonic() + SYNC_TIMEOUT
        try:
            while True:
                self._check_processes()
                done = len(admin.active_values(COLLECTION) & expected)
                pushed = self._metric("sis_values_pushed_total")
                bar.update(done, f"runtime's own count: {int(pushed) if pushed is not None else '-'} pushed")
                if done == len(expected):
                    break
                if time.monotonic() > deadline:
                    raise DemoFailure(
                        f"only {done} of {len(expected)} values reached the collection in {SYNC_TIMEOUT:.0f}s"
                    )
                time.sleep(0.3)
        finally:
            bar.close()
        self.out.detail("waiting for the runtime's own report in status.progress (every 10 s)...")
        self._wait_progress("valuesPushed", len(expected))

    def show_guardrail(self) -> None:
        self.out.step("Sharing guardrail: the TLP:RED indicators stay in OpenCTI")
        refused = self.data.refused_values
        active = sekoia_admin(self._sekoia_url()).active_values(COLLECTION)
        rows = [
            (
                ind["id"],
                ind["name"],
                "TLP:RED",
                "absent" if not set(self.data.values[ind["id"]]) & active else "PRESENT",
            )
            for ind in self.data.indicators
            if ind["id"] in self.data.refused
        ]
        self.out.table(("INDICATOR", "NAME", "MARKING", "IN SEKOIA"), rows)
        if set(refused) & active:
            raise DemoFailure(f"TLP:RED values reached the collection: {sorted(set(refused) & active)}")
        skipped = self._metric('sis_values_skipped_total{reason="marking-not-allowed"}')
        self.out.detail(
            f'runtime metric sis_values_skipped_total{{reason="marking-not-allowed"}} = {skipped}'
        )
        if skipped is not None and int(skipped) != len(refused):
            raise DemoFailure(f"the runtime counted {skipped} refused values, {len(refused)} expected")
        self._wait_progress("valuesSkipped", len(refused))
        self.out.detail(
            f"status.progress.valuesSkipped = {self._progress().get('valuesSkipped')} "
            "(the TLP:RED values, plus comparisons that cannot become Sekoia values, e.g. YARA rules)"
        )

    def show_status(self) -> None:
        self.out.step("What Kubernetes and Sekoia say")
        self._wait_ready()
        self.out.detail(f"$ kubectl -n {NAMESPACE} get sekoiaintelsyncs -o wide")
        self.out.detail(self._kubectl("-n", NAMESPACE, "get", "sekoiaintelsyncs", "-o", "wide").rstrip())
        status = self._resource().get("status") or {}
        self.out.line()
        self.out.detail("conditions:")
        rows = [
            (c["type"], c["status"], c.get("reason", ""), c.get("message", ""))
            for c in status.get("conditions", [])
        ]
        self.out.table(("  TYPE", "STATUS", "REASON", "MESSAGE"), [(f"  {r[0]}", *r[1:]) for r in rows])
        self.out.line()
        self.out.detail("status.progress (written by the runtime with its own ServiceAccount):")
        for key, value in (status.get("progress") or {}).items():
            self.out.detail(f"  {key}: {value}")
        if status.get("budget"):
            self.out.line()
            self.out.detail("status.budget (its share of the Sekoia host's budget, written by the operator):")
            for key, value in status["budget"].items():
                self.out.detail(f"  {key}: {value}")
        self.out.line()
        self._show_collection()

    def revoke(self) -> None:
        self.out.step("Revocation: delete indicators in OpenCTI, watch them revoked in Sekoia")
        picked = self.data.pick_for_deletion()
        opencti = OpenCTIAdmin(self._opencti_url())
        for indicator in picked:
            event = opencti.delete(indicator["id"])
            self.out.detail(f"deleted {indicator['id']} ({indicator['name']}) -> stream event {event}")
        deleted = {v: t for ind in picked for v, t in self.data.values[ind["id"]].items()}
        self.outcome.deleted_values = sorted(deleted)
        admin = sekoia_admin(self._sekoia_url())

        def revoked_now() -> dict[str, dict[str, Any]]:
            return {
                i["value"]: i for i in admin.indicators(COLLECTION) if i["value"] in deleted and i["revoked"]
            }

        wait_until(
            lambda: len(revoked_now()) == len(deleted), 60, "the deleted indicators to be revoked in Sekoia"
        )
        rows = [(value, deleted[value], "revoked") for value in sorted(deleted)]
        self.out.table(("VALUE", "TYPE", "IN SEKOIA"), rows)
        self._wait_progress("valuesRevoked", len(deleted))
        progress = self._progress()
        self.out.detail(
            f"status.progress: valuesPushed={progress.get('valuesPushed')} "
            f"valuesRevoked={progress.get('valuesRevoked')} pendingEvents={progress.get('pendingEvents')}"
        )
        self._show_collection()

    def resync(self) -> None:
        self.out.step("Resync on demand: empty the collection by hand, ask for a resync in the spec")
        admin = sekoia_admin(self._sekoia_url())
        self.out.detail(f"revoked by hand in Sekoia (admin API): {admin.revoke_all(COLLECTION)} values")
        patch = {"spec": {"opencti": {"resyncFrom": RESYNC_FROM, "resyncToken": RESYNC_TOKEN}}}
        self.out.detail(
            f"$ kubectl -n {NAMESPACE} patch sis {SYNC_NAME} --type merge -p '{json.dumps(patch)}'"
        )
        self._kubectl("-n", NAMESPACE, "patch", "sis", SYNC_NAME, "--type", "merge", "-p", json.dumps(patch))
        deployment = self._wait_for_deployment()
        wait_until(
            lambda: self._template_env(deployment).get("RUNTIME_RESYNC_TOKEN") == RESYNC_TOKEN,
            60,
            "the operator to roll the runtime with the resync request",
            on_timeout=self._status_text,
        )
        self.out.detail(
            "the operator rolled the runtime: RUNTIME_RESYNC_FROM / RUNTIME_RESYNC_TOKEN in its Pod"
        )
        if self.node.real:
            self._roll_on_real_node(deployment)
        else:
            self._roll_stand_in(deployment)
        want = set(self.data.expected) - set(self.outcome.deleted_values)
        wait_until(
            lambda: admin.active_values(COLLECTION) == want,
            SYNC_TIMEOUT,
            "the resync to refill the collection",
            on_timeout=self._status_text,
        )
        self.out.detail(
            f"the collection holds the {len(want)} active values again (deleted ones stay revoked)"
        )

        def completed() -> bool:
            return (self._progress().get("resync") or {}).get("state") == "Completed"

        wait_until(
            completed, STATUS_TIMEOUT, "status.progress.resync to say Completed", on_timeout=self._status_text
        )
        self.outcome.resync = dict(self._progress().get("resync") or {})
        self.out.detail("status.progress.resync:")
        for key, value in self.outcome.resync.items():
            self.out.detail(f"  {key}: {value}")
        in_progress = self._metric("sis_resync_in_progress")
        self.out.detail(f"runtime metric sis_resync_in_progress = {in_progress}")
        self._show_collection()

    def _roll_on_real_node(self, deployment: str) -> None:
        """The kubelet does the roll: the old Pod gets SIGTERM, the new one must become Ready."""
        assert self.pod is not None
        old = self.pod
        self.out.detail(
            "the kubelet rolls the Pod: SIGTERM to the old runtime, the new Pod through its probes"
        )
        wait_until(
            lambda: self._pods_rolled(RESYNC_TOKEN),
            120,
            "the new runtime Pod to be the only one running",
            on_timeout=self._status_text,
        )
        self.pod = wait_ready_pod(
            self.stack.require_cluster(), NAMESPACE, self._selector(deployment), exclude={old.uid}
        )
        seen = self.pod.host_view(self.stack.require_cluster())
        self.outcome.runtime_pods.append(
            {"name": self.pod.name, "ip": self.pod.ip, "image": self.pod.image, **seen}
        )
        self.out.detail(
            f"Pod {old.name} replaced by Pod {self.pod.name} ({self.pod.ip}, host pid {seen['hostPid']}, "
            f"uid {seen['uid']}), Ready"
        )

    def _roll_stand_in(self, deployment: str) -> None:
        """The stand-in replaces its process with one for the new Pod (a kubelet would do it)."""
        assert self.container is not None
        self.out.detail(f"{STAND_IN}: replacing the runtime process with the new Pod's")
        wait_until(
            lambda: self._pods_rolled(RESYNC_TOKEN),
            60,
            "the new runtime Pod to be the only one running",
            on_timeout=self._status_text,
        )
        self.stack.retire(self.container.process)
        plan = plan_from_deployment(self.stack.require_cluster(), NAMESPACE, deployment)
        self.container = run_container(self.stack.require_cluster(), plan, self.stack.run_dir)
        self.stack.track(self.container.process)
        self.container.wait_ready()

    def _pods_rolled(self, token: str) -> bool:
        """Only Pods of the new template run (not being deleted)."""
        from kubernetes import client

        core = client.CoreV1Api(self.stack.require_cluster().api_client())
        pods = [
            pod
            for pod in core.list_namespaced_pod(NAMESPACE).items
            if pod.metadata.deletion_timestamp is None and pod.status.phase == "Running"
        ]
        tokens = [
            {e.name: e.value for e in pod.spec.containers[0].env or []}.get("RUNTIME_RESYNC_TOKEN")
            for pod in pods
        ]
        return bool(tokens) and all(t == token for t in tokens)

    def _template_env(self, deployment: str) -> dict[str, str]:
        from kubernetes import client

        apps = client.AppsV1Api(self.stack.require_cluster().api_client())
        dep = apps.read_namespaced_deployment(deployment, NAMESPACE)
        return {e.name: e.value for e in dep.spec.template.spec.containers[0].env if e.value is not None}

    def verify(self) -> None:
        """The demo's definition of success, checked on the final state."""
        indicators = sekoia_admin(self._sekoia_url()).indicators(COLLECTION)
        active = {i["value"] for i in indicators if not i["revoked"]}
        revoked = {i["value"] for i in indicators if i["revoked"]}
        self.outcome.active, self.outcome.revoked = sorted(active), sorted(revoked)
        status = self._resource().get("status") or {}
        self.outcome.conditions = status.get("conditions") or []
        self.outcome.progress = status.get("progress") or {}
        want_active = set(self.data.expected) - set(self.outcome.deleted_values)
        if active != want_active:
            raise DemoFailure(
                f"the collection holds {len(active)} active values, {len(want_active)} expected "
                f"(missing {sorted(want_active - active)[:3]}, extra {sorted(active - want_active)[:3]})"
            )
        if set(self.outcome.refused_values) & (active | revoked):
            raise DemoFailure(
                f"TLP:RED values reached Sekoia: {sorted(set(self.outcome.refused_values) & active)}"
            )
        if not set(self.outcome.deleted_values) <= revoked:
            raise DemoFailure(f"not revoked in Sekoia: {sorted(set(self.outcome.deleted_values) - revoked)}")

    # ------------------------------------------------------------------------------ for KEEP=1
    def exploration_notes(self) -> list[str]:
        """Where everything is, for a user who keeps the demo running."""
        cluster = self.stack.require_cluster()
        kubectl = cluster.bin_dir / "kubectl" if cluster.bin_dir else "kubectl"
        lines = [
            f"export KUBECONFIG={cluster.kubeconfig}   # admin",
            f"alias kubectl={kubectl}",
            f"kubectl -n {NAMESPACE} get sis {SYNC_NAME} -o yaml",
            self._identity_note(),
            f"OpenCTI emulator  {self._opencti_url()}   (admin API: {self._opencti_url()}/_emulator/events)",
            f"Sekoia emulator   {self._sekoia_url()}   (admin API: {self._sekoia_url()}/_emulator/state)",
        ]
        if self.container:
            lines.append(
                f"runtime           http://127.0.0.1:{self.container.port}/metrics  /readyz  /healthz"
            )
        if self.pod:
            lines.append(f"runtime Pod       {self.pod.base_url}/metrics  /readyz  /healthz")
            lines.append(
                f"kubectl -n {NAMESPACE} logs {self.pod.name}   # the container's log, via the kubelet"
            )
        lines.append(
            f"logs              {self.stack.log_dir}/ and {self.stack.run_dir / 'cluster' / 'logs'}/"
        )
        return lines

    def _identity_note(self) -> str:
        if self.pod:
            return (
                f"runtime's own identity:  ServiceAccount {NAMESPACE}/{self.pod.service_account} "
                f"(kubectl --as=system:serviceaccount:{NAMESPACE}:{self.pod.service_account})"
            )
        return f"runtime's own identity:  KUBECONFIG={self.container.kubeconfig if self.container else '?'}"

    # ------------------------------------------------------------------------------ helpers
    def _metric(self, name: str) -> float | None:
        """The running runtime's own count (its /metrics), wherever it runs."""
        runtime = self.pod or self.container
        return runtime.metric(name) if runtime is not None else None

    def _selector(self, deployment: str) -> dict[str, str]:
        from kubernetes import client

        apps = client.AppsV1Api(self.stack.require_cluster().api_client())
        return dict(apps.read_namespaced_deployment(deployment, NAMESPACE).spec.selector.match_labels)

    def _timed(self, name: str, step: Any) -> None:
        began = time.monotonic()
        step()
        self.outcome.timings[name] = round(time.monotonic() - began, 2)

    def _kubectl(self, *args: str, input: str | None = None) -> str:
        return self.stack.require_cluster().kubectl(*args, input=input).stdout

    def _custom(self) -> Any:
        if self._api is None:
            from kubernetes import client

            self._api = client.CustomObjectsApi(self.stack.require_cluster().api_client())
        return self._api

    def _resource(self) -> dict[str, Any]:
        return dict(self._custom().get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, SYNC_NAME))

    def _progress(self) -> dict[str, Any]:
        return dict((self._resource().get("status") or {}).get("progress") or {})

    def _opencti_url(self) -> str:
        assert self.opencti is not None
        return self.opencti.base_url

    def _sekoia_url(self) -> str:
        assert self.sekoia is not None
        return self.sekoia.base_url

    def _check_processes(self) -> None:
        dead = self.stack.dead()
        if dead:
            raise DemoFailure(
                f"process(es) exited unexpectedly: {', '.join(dead)} (see {self.stack.log_dir})"
            )

    def _wait_for_deployment(self) -> str:
        """The Deployment the operator created for the resource (found by owner, not by name)."""
        from kubernetes import client

        apps = client.AppsV1Api(self.stack.require_cluster().api_client())
        uid = self._resource()["metadata"]["uid"]
        found: list[str] = []

        def created() -> bool:
            self._check_processes()
            for dep in apps.list_namespaced_deployment(NAMESPACE).items:
                if any(ref.uid == uid for ref in dep.metadata.owner_references or []):
                    found.append(dep.metadata.name)
            return bool(found)

        wait_until(created, 60, "the operator to create the runtime Deployment", on_timeout=self._status_text)
        return found[0]

    def _show_identity(self, service_account: str | None = None) -> None:
        """What the runtime's identity may do, asked of the API server (`kubectl auth can-i`): with
        the stand-in's token, or (real node) as the Pod's ServiceAccount, by impersonation."""
        as_account = [f"--as=system:serviceaccount:{NAMESPACE}:{service_account}"] if service_account else []
        kubeconfig = self.container.kubeconfig if self.container and not service_account else None
        checks = [
            ("patch", f"{PLURAL}.{GROUP}/{SYNC_NAME}", "--subresource=status"),
            ("patch", f"{PLURAL}.{GROUP}/{SYNC_NAME}", None),
            ("get", "secrets", None),
        ]
        answers = []
        for verb, what, extra in checks:
            args = ["-n", NAMESPACE, "auth", "can-i", verb, what, *([extra] if extra else []), *as_account]
            done = self.stack.require_cluster().kubectl(*args, check=False, kubeconfig=kubeconfig)
            answers.append(
                f"{verb} {what.split('.')[0]}{'/status' if extra else ''}: {done.stdout.strip() or '?'}"
            )
        self.outcome.runtime_identity = "; ".join(answers)
        self.out.detail(f"can-i        {'; '.join(answers)}")

    def _wait_progress(self, key: str, at_least: int) -> None:
        wait_until(
            lambda: int(self._progress().get(key) or 0) >= at_least,
            STATUS_TIMEOUT,
            f"the runtime to report status.progress.{key} >= {at_least}",
            interval=0.5,
            on_timeout=self._status_text,
        )

    def _wait_ready(self) -> None:
        def ready() -> bool:
            obj = self._resource()
            status = obj.get("status") or {}
            conds = {c["type"]: c for c in status.get("conditions") or []}
            current = status.get("observedGeneration") == obj["metadata"]["generation"]
            return current and conds.get("Ready", {}).get("status") == "True"

        wait_until(
            ready, 60, f"{NAMESPACE}/{SYNC_NAME} to be Ready", interval=0.5, on_timeout=self._status_text
        )

    def _status_text(self) -> str:
        try:
            return json.dumps(self._resource().get("status"), indent=1)
        except Exception as exc:  # only used to explain a timeout
            return f"(status unavailable: {exc})"

    def _show_collection(self) -> None:
        indicators = sekoia_admin(self._sekoia_url()).indicators(COLLECTION)
        by_type: dict[str, list[int]] = {}
        for item in indicators:
            counts = by_type.setdefault(item["type"], [0, 0])
            counts[1 if item["revoked"] else 0] += 1
        rows = [(kind, active, revoked) for kind, (active, revoked) in sorted(by_type.items())]
        total_active = sum(r[1] for r in rows)
        total_revoked = sum(r[2] for r in rows)
        rows.append(("total", total_active, total_revoked))
        self.out.detail(f"Sekoia collection {COLLECTION}:")
        self.out.table(("  TYPE", "ACTIVE", "REVOKED"), [(f"  {r[0]}", r[1], r[2]) for r in rows])
