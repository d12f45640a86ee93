"""Progress of the runtime, computed from its metrics and position, and reported into the
``status.progress`` of its own SekoiaIntelSync resource.

The runtime's Kubernetes identity may only get/patch the status of that one resource (the
operator grants it per resource), so the reporter never touches anything else.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import yaml
from prometheus_client import Counter

from connector_runtime import metrics
from connector_runtime.delivery.positions import PositionTracker, event_id_time

log = logging.getLogger(__name__)

GROUP = "sync.sekoia-intel.dev"
VERSION = "v1alpha1"
PLURAL = "sekoiaintelsyncs"


def _total(counter: Counter) -> int:
    return int(
        sum(
            sample.value
            for metric in counter.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
    )


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def progress_snapshot(
    tracker: PositionTracker, now: float | None = None, blocked: dict[str, str] | None = None
) -> dict[str, Any]:
    """The ``status.progress`` object: committed position, counts and lag (pure apart from
    reading the process's own metrics). ``blocked`` is None (which a merge patch turns into
    removing the field) or why Sekoia acknowledges nothing: the operator reports it as Stalled."""
    committed = tracker.committed
    committed_time = event_id_time(committed) if committed else None
    snapshot: dict[str, Any] = {
        "lastCommittedEventId": committed,
        "lastCommittedEventTime": _iso(committed_time) if committed_time else None,
        "valuesPushed": _total(metrics.VALUES_PUSHED),
        "valuesRevoked": _total(metrics.VALUES_REVOKED),
        "valuesRejected": _total(metrics.VALUES_REJECTED),
        "valuesSkipped": _total(metrics.VALUES_SKIPPED),
        "pendingEvents": tracker.pending_count(),
        "lagSeconds": round(tracker.oldest_pending_age(), 1),
        "updatedAt": _iso(now if now is not None else dt.datetime.now(dt.UTC).timestamp()),
        "blocked": blocked,
    }
    return snapshot


def update_position_metrics(tracker: PositionTracker) -> None:
    """Refresh the gauges derived from the committed position (called periodically)."""
    committed = tracker.committed
    committed_time = event_id_time(committed) if committed else None
    if committed_time:
        metrics.LAST_COMMITTED_EVENT_TIME.set(committed_time)
    metrics.PENDING_EVENTS.set(tracker.pending_count())
    metrics.LAG_SECONDS.set(tracker.oldest_pending_age())


class BearerToken:
    """A bearer token that follows its source: re-read whenever the files it comes from change,
    and on demand after the API server refused it (401).

    The kubelet rotates a Pod's projected ServiceAccount token (hourly by default, by swapping a
    symlink), and the old token stops working once it expires or its Pod goes: a token read once
    would end status reporting silently.
    """

    def __init__(self, load: Callable[[], tuple[str, list[Path]]]) -> None:
        """``load`` returns the token and the files it was read from (watched for changes)."""
        self._load = load
        self._lock = threading.Lock()
        self._token: str | None = None
        self._sources: list[Path] = []
        self._signature: tuple[Any, ...] | None = None

    def _stat(self) -> tuple[Any, ...]:
        signature: list[tuple[int, int, int] | None] = []
        for path in self._sources:
            try:
                st = path.stat()  # follows the kubelet's ..data symlink to the current file
                signature.append((st.st_ino, st.st_mtime_ns, st.st_size))
            except OSError:
                signature.append(None)
        return tuple(signature)

    def value(self) -> str:
        """The current token, re-read first when a source file changed since the last read."""
        with self._lock:
            if self._token is None or self._stat() != self._signature:
                self._read()
            assert self._token is not None
            return self._token

    def reload(self) -> bool:
        """Re-read now; True when the token differs from the one held before."""
        with self._lock:
            before = self._token
            self._read()
            return self._token != before

    def _read(self) -> None:
        token, self._sources = self._load()
        self._signature = self._stat()
        self._token = token.strip()


class StatusApi:
    """The one call the reporter makes, over plain HTTPS: a merge patch of the status subresource.

    Not the ``kubernetes`` client: importing it costs ~30 MB of resident memory in every runtime
    Pod, for a single request type.
    """

    def __init__(
        self,
        server: str,
        token: BearerToken | None,
        verify: str | bool,
        cert: tuple[str, str] | None,
    ):
        self.server = server.rstrip("/")
        self.token = token
        self.session = requests.Session()
        # Passed per request too: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        self.verify = verify
        self.session.cert = cert

    def headers(self) -> dict[str, str]:
        """Authorization with the current token (none for client-certificate identities)."""
        return {"Authorization": f"Bearer {self.token.value()}"} if self.token else {}

    def patch_status(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch ``status`` of one SekoiaIntelSync and return the resource as the API server
        answered it (what the operator wrote there too); raises ``requests.HTTPError`` on refusal.

        A 401 makes the token be read again; the patch is retried once when it changed.
        """
        url = f"{self.server}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}/status"
        data = json.dumps(body)
        for attempt in (1, 2):
            answer = self.session.patch(
                url,
                data=data,
                headers={"Content-Type": "application/merge-patch+json", **self.headers()},
                timeout=15,
                verify=self.verify,
                # The status belongs to this API server only: a redirect would carry the token elsewhere.
                allow_redirects=False,
            )
            if 300 <= answer.status_code < 400:
                raise requests.HTTPError(f"status patch redirected ({answer.status_code})", response=answer)
            if answer.status_code == 401 and attempt == 1 and self.token and self.token.reload():
                log.info("the API server refused the ServiceAccount token; retrying with the new one")
                continue
            answer.raise_for_status()
            try:
                reply = answer.json()
            except ValueError:
                return {}
            return reply if isinstance(reply, dict) else {}
        return {}


SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def status_api_from_environment(service_account: Path | None = None) -> StatusApi:
    """In a Pod: the projected service-account token (followed as it rotates) and CA. Elsewhere
    (the demo's kubelet stand-in, tests): the kubeconfig named by ``$KUBECONFIG`` (token, token
    file or client certificate)."""
    if os.environ.get("KUBECONFIG"):
        return _from_kubeconfig(Path(os.environ["KUBECONFIG"]))
    directory = service_account or SERVICE_ACCOUNT
    host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
    server = f"https://{host}:{port}" if ":" not in host else f"https://[{host}]:{port}"
    token_file = directory / "token"
    token = BearerToken(lambda: (token_file.read_text(), [token_file]))
    return StatusApi(server, token, str(directory / "ca.crt"), None)


def _kubeconfig_user(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    config = yaml.safe_load(path.read_text())
    context_name = config.get("current-context")
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    return cluster, user


def _kubeconfig_token(path: Path) -> tuple[str, list[Path]]:
    """The token of the kubeconfig's current user, read afresh (inline or from its tokenFile)."""
    _, user = _kubeconfig_user(path)
    if user.get("tokenFile"):
        token_file = Path(user["tokenFile"])
        if not token_file.is_absolute():
            token_file = path.parent / token_file
        return token_file.read_text(), [path, token_file]
    return str(user.get("token") or ""), [path]


def _from_kubeconfig(path: Path) -> StatusApi:
    cluster, user = _kubeconfig_user(path)
    files = Path(tempfile.mkdtemp(prefix="sis-kube-"))
    verify: str | bool = True
    if cluster.get("certificate-authority-data"):
        verify = _write(files / "ca.crt", cluster["certificate-authority-data"])
    elif cluster.get("certificate-authority"):
        verify = cluster["certificate-authority"]
    token = None
    cert = None
    if user.get("token") or user.get("tokenFile"):
        token = BearerToken(lambda: _kubeconfig_token(path))
    elif user.get("client-certificate-data"):
        cert = (
            _write(files / "client.crt", user["client-certificate-data"]),
            _write(files / "client.key", user["client-key-data"]),
        )
    return StatusApi(cluster["server"], token, verify, cert)


def _write(path: Path, b64: str) -> str:
    path.write_bytes(base64.b64decode(b64))
    path.chmod(0o600)
    return str(path)


class StatusReporter:
    """Patches ``status.progress`` of ``namespace/name`` every ``interval`` seconds."""

    def __init__(
        self,
        resource: str,
        snapshot: Callable[[], dict[str, Any]],
        interval: float,
        api_factory: Callable[[], Any] = status_api_from_environment,
        on_status: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        """``on_status`` receives the resource's ``status`` after each report: the patch answer
        carries what the operator wrote (the budget share), so following it costs no request."""
        self.namespace, self.name = resource.split("/", 1)
        self.on_status = on_status
        self.snapshot = snapshot
        self.interval = interval
        self._api_factory = api_factory
        self._api: Any = None
        self._stop = threading.Event()
        self._failures = 0
        self._thread = threading.Thread(target=self._loop, name="status-reporter", daemon=True)

    def start(self) -> None:
        """Start reporting in the background."""
        self._thread.start()

    def stop(self, final_report: bool = True) -> None:
        """Stop, sending one last report first."""
        self._stop.set()
        if final_report:
            self.report_once()

    def report_once(self) -> bool:
        """Send one report; errors are logged (rate-limited) and never raised."""
        try:
            if self._api is None:
                self._api = self._api_factory()
            answer = self._api.patch_status(
                self.namespace, self.name, {"status": {"progress": self.snapshot()}}
            )
        except Exception as exc:
            self._failures += 1
            if self._failures in (1, 10) or self._failures % 100 == 0:
                response = getattr(exc, "response", None)
                status = getattr(response, "status_code", None)
                log.warning(
                    "could not report progress to the resource status",
                    extra={
                        "resource": f"{self.namespace}/{self.name}",
                        "status": status,
                        "failures": self._failures,
                    },
                )
            return False
        self._failures = 0
        if self.on_status is not None and isinstance(answer, dict):
            status = answer.get("status")
            self.on_status(status if isinstance(status, dict) else {})
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.report_once()
