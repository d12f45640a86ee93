"""A local stand-in for a kubelet: runs the runtime container the operator's Deployment describes.

Where the demo cannot run the real node (``testbed.demo.node`` says why), the control plane has a
kwok node that marks Pods Running without executing anything, so this module does the part of a
kubelet's job that matters for the demo, from what the API server holds and nothing else:

- the container's ``command``/``args`` and ``env`` come from the Deployment's Pod template, with
  ``secretKeyRef`` values read from the Secret through the API (as the kubelet does);
- the process authenticates as the Pod's ServiceAccount with a token from the TokenRequest API,
  bound to the Pod kwok runs (the kubelet projects such a token into every Pod); it gets a
  kubeconfig file instead of the in-cluster token mount, since it is not in a container;
- ``/readyz`` is polled like the template's readiness probe;
- ``configMap`` and ``secret`` volumes (e.g. a CA bundle) are projected into a local directory, and
  environment values that point into their mount path are pointed at that directory instead.

Not reproduced: the image (the command runs from this checkout's installation), the security
context (user 10001, read-only root file system), resource limits and restarts.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.controlplane.cluster import LocalCluster
from testbed.demo.nodepod import metric_value
from testbed.processes import ManagedProcess, free_port, wait_until

# The runtime follows its token file (as it follows a projected token), but nothing here rotates it:
# a day outlasts any demo or soak session.
TOKEN_SECONDS = 24 * 3600
_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


class PodSpecError(RuntimeError):
    """The Pod template uses something this stand-in cannot reproduce (or a reference is broken)."""


@dataclass
class PodPlan:
    """What the stand-in runs: one container of one Pod, fully resolved."""

    namespace: str
    deployment: str
    pod_name: str
    pod_uid: str
    service_account: str
    container: str
    command: list[str]
    env: dict[str, str]
    from_secrets: dict[str, str] = field(default_factory=dict)  # variable -> "secret/key" (never values)
    readiness_path: str | None = None
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # mountPath -> {path: content}


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known variables are replaced, unknown ones kept, ``$$`` -> ``$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REFERENCE.sub(replace, text)


def resolve_env(
    entries: list[dict[str, Any]], read_secret: Callable[[str, str], str | None]
) -> tuple[dict[str, str], dict[str, str]]:
    """The container's environment, in order (later entries may refer to earlier ones).

    ``read_secret(name, key)`` returns the decoded value, or None when the Secret or key is missing.
    Returns (environment, {variable: "secret/key"} for the variables that came from Secrets).
    """
    env: dict[str, str] = {}
    from_secrets: dict[str, str] = {}
    for entry in entries:
        name = entry["name"]
        if "value" in entry or "valueFrom" not in entry:
            env[name] = expand(entry.get("value") or "", env)
            continue
        ref = entry["valueFrom"].get("secretKeyRef")
        if ref is None:
            source = next(iter(entry["valueFrom"]), "?")
            raise PodSpecError(f"env {name}: valueFrom.{source} is not supported by the kubelet stand-in")
        value = read_secret(ref["name"], ref["key"])
        if value is None:
            if ref.get("optional"):
                continue
            # What a kubelet reports as CreateContainerConfigError.
            raise PodSpecError(f"env {name}: key {ref['key']!r} of Secret {ref['name']!r} not found")
        env[name] = value
        from_secrets[name] = f"{ref['name']}/{ref['key']}"
    return env, from_secrets


def resolve_volumes(
    pod_spec: Mapping[str, Any],
    container: Mapping[str, Any],
    read_data: Callable[[str, str], dict[str, bytes] | None],
) -> dict[str, dict[str, bytes]]:
    """The files the container sees under each mount of a ``configMap`` or ``secret`` volume:
    ``{mountPath: {relative path: content}}``. ``read_data(kind, name)`` returns the object's
    decoded data, or None when it does not exist (a kubelet would then fail to mount it).
    ``emptyDir`` volumes are skipped: the local process writes to this machine's ``/tmp``."""
    volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
    files: dict[str, dict[str, bytes]] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"]) or {}
        if "emptyDir" in volume:
            continue
        if "configMap" in volume:
            kind, source, name = "ConfigMap", volume["configMap"], volume["configMap"].get("name")
        elif "secret" in volume:
            kind, source, name = "Secret", volume["secret"], volume["secret"].get("secretName")
        else:
            raise PodSpecError(f"volume {mount['name']!r}: only emptyDir, configMap and secret are supported")
        data = read_data(kind, str(name))
        if data is None:
            raise PodSpecError(f"volume {mount['name']!r}: {kind} {name!r} not found")
        items = source.get("items") or [{"key": key, "path": key} for key in data]
        projected: dict[str, bytes] = {}
        for item in items:
            if item["key"] not in data:
                raise PodSpecError(f"volume {mount['name']!r}: {kind} {name!r} has no key {item['key']!r}")
            projected[item["path"]] = data[item["key"]]
        files[mount["mountPath"]] = projected
    return files


def _data_reader(core: Any, namespace: str) -> Callable[[str, str], dict[str, bytes] | None]:
    from kubernetes.client.exceptions import ApiException

    def read(kind: str, name: str) -> dict[str, bytes] | None:
        try:
            if kind == "ConfigMap":
                config_map = core.read_namespaced_config_map(name, namespace)
                return {k: v.encode() for k, v in (config_map.data or {}).items()}
            secret = core.read_namespaced_secret(name, namespace)
            return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    return read


def _secret_reader(core: Any, namespace: str) -> Callable[[str, str], str | None]:
    from kubernetes.client.exceptions import ApiException

    def read(name: str, key: str) -> str | None:
        try:
            secret = core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        data = secret.data or {}
        return base64.b64decode(data[key]).decode() if key in data else None

    return read


def _running_pod(core: Any, namespace: str, selector: Mapping[str, str]) -> dict[str, Any] | None:
    label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
    for pod in core.list_namespaced_pod(namespace, label_selector=label_selector).items:
        if pod.metadata.deletion_timestamp is None and pod.status.phase == "Running":
            return {"name": pod.metadata.name, "uid": pod.metadata.uid, "node": pod.spec.node_name}
    return None


def plan_from_deployment(
    cluster: LocalCluster, namespace: str, deployment: str, timeout: float = 60
) -> PodPlan:
    """Read the Deployment and its running Pod, and resolve the container to run."""
    from kubernetes import client

    api_client = cluster.api_client()
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    dep = api_client.sanitize_for_serialization(apps.read_namespaced_deployment(deployment, namespace))
    pod_spec = dep["spec"]["template"]["spec"]
    if len(pod_spec["containers"]) != 1 or pod_spec.get("initContainers"):
        raise PodSpecError("the kubelet stand-in runs Pods of exactly one container")
    container = pod_spec["containers"][0]
    if container.get("envFrom"):
        raise PodSpecError("envFrom is not supported by the kubelet stand-in")

    found: dict[str, Any] = {}

    def pod_running() -> bool:
        found.update(_running_pod(core, namespace, dep["spec"]["selector"]["matchLabels"]) or {})
        return bool(found)

    wait_until(pod_running, timeout, f"a Running Pod of Deployment {namespace}/{deployment}")
    env, from_secrets = resolve_env(container.get("env") or [], _secret_reader(core, namespace))
    files = resolve_volumes(pod_spec, container, _data_reader(core, namespace))
    argv = [expand(part, env) for part in [*(container.get("command") or []), *(container.get("args") or [])]]
    if not argv:
        raise PodSpecError("the container has no command: the stand-in cannot use the image's entrypoint")
    probe = (container.get("readinessProbe") or {}).get("httpGet") or {}
    return PodPlan(
        namespace=namespace,
        deployment=deployment,
        pod_name=found["name"],
        pod_uid=found["uid"],
        service_account=pod_spec.get("serviceAccountName") or "default",
        container=container["name"],
        command=argv,
        env=env,
        from_secrets=from_secrets,
        readiness_path=probe.get("path"),
        files=files,
    )


def pod_bound_token(cluster: LocalCluster, plan: PodPlan) -> str:
    """A ServiceAccount token from the TokenRequest API, bound to the Pod like a projected token
    (the API server stops accepting it once that Pod is deleted)."""
    from kubernetes import client

    core = client.CoreV1Api(cluster.api_client())
    body = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(
            audiences=[],
            expiration_seconds=TOKEN_SECONDS,
            bound_object_ref=client.V1BoundObjectReference(
                api_version="v1", kind="Pod", name=plan.pod_name, uid=plan.pod_uid
            ),
        )
    )
    answer = core.create_namespaced_service_account_token(plan.service_account, plan.namespace, body)
    return str(answer.status.token)


def _resolve_executable(argv: list[str], search_path: str) -> list[str]:
    # The image's PATH would find the console script; here the installation's bin dir stands in.
    if os.sep in argv[0]:
        return argv
    found = shutil.which(argv[0], path=search_path)
    if found is None:
        raise PodSpecError(f"command {argv[0]!r} is not installed in {search_path.split(os.pathsep)[0]}")
    return [found, *argv[1:]]


@dataclass
class LocalContainer:
    """The runtime container running as a local process under the Pod's identity."""

    plan: PodPlan
    process: ManagedProcess
    kubeconfig: Path
    port: int
    overrides: dict[str, str]

    def ready(self) -> bool:
        """One readiness probe (the template's httpGet path on the overridden port)."""
        if not self.process.alive():
            raise RuntimeError(f"the runtime exited:\n{self.process.log_tail(1500)}")
        path = self.plan.readiness_path or "/readyz"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def metric(self, name: str) -> float | None:
        """Sum of one counter over its label sets, from the runtime's /metrics (None if unreadable)."""
        return metric_value(f"http://127.0.0.1:{self.port}/metrics", name)

    def wait_ready(self, timeout: float = 60) -> float:
        """Probe until ready; returns the seconds it took."""
        began = time.monotonic()
        wait_until(
            self.ready,
            timeout,
            "the runtime's readiness probe",
            on_timeout=lambda: self.process.log_tail(2000),
        )
        return time.monotonic() - began


def run_container(cluster: LocalCluster, plan: PodPlan, run_dir: Path) -> LocalContainer:
    """Start the planned container as a local process (the caller tracks and stops it).

    Two values of the template are overridden, because the process shares this machine's network
    and file system: the HTTP port (8080 may be taken) and the termination-message path
    (``/dev/termination-log`` is the kubelet's file, not writable here).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    # A token file, as the kubelet projects one: whoever rotates it, the runtime re-reads it.
    token_file = run_dir / "runtime.token"
    token_file.write_text(pod_bound_token(cluster, plan))
    token_file.chmod(0o600)
    kubeconfig = cluster.kubeconfig_for_token_file(token_file, run_dir / "runtime.kubeconfig")
    port = free_port()
    overrides = {
        "RUNTIME_HTTP_PORT": str(port),
        "RUNTIME_TERMINATION_LOG": str(run_dir / "runtime.termination-log"),
    }
    search_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    plan_env = dict(plan.env)
    for mount_path, files in plan.files.items():
        local = run_dir / "volumes" / mount_path.strip("/").replace("/", "_")
        for relative, content in files.items():
            (local / relative).parent.mkdir(parents=True, exist_ok=True)
            (local / relative).write_bytes(content)
        prefix = mount_path.rstrip("/") + "/"
        for name, value in plan_env.items():
            if value.startswith(prefix):
                plan_env[name] = str(local / value[len(prefix) :])
    home = run_dir / "runtime-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **plan_env,
        **overrides,
        # What the container runtime and kubelet add to every container.
        "PATH": search_path,
        "HOME": str(home),
        "HOSTNAME": plan.pod_name,
        # Instead of the in-cluster token mount: the runtime reads $KUBECONFIG when it is set.
        "KUBECONFIG": str(kubeconfig),
    }
    argv = _resolve_executable(plan.command, search_path)
    process = ManagedProcess(
        "connector-runtime", argv, run_dir / "logs" / "connector-runtime.log", env=env, cwd=home
    )
    return LocalContainer(plan, process.start(), kubeconfig, port, overrides)
