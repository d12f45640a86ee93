"""Progress of the runtime, computed from its metrics and position, and reported into the
``status.progress`` of its own SekoiaIntelSync resource.

The runtime's Kubernetes identity may only get/patch the status of that one resource (the
operator grants it per resource), so the reporter never touches anything else.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

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


def progress_snapshot(tracker: PositionTracker, now: float | None = None) -> dict[str, Any]:
    """The ``status.progress`` object: committed position, counts and lag (pure apart from
    reading the process's own metrics)."""
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
    }
    return snapshot


def _custom_objects_api() -> Any:
    from kubernetes import client, config

    if os.environ.get("KUBECONFIG"):
        api_client = config.new_client_from_config(config_file=os.environ["KUBECONFIG"])
    else:
        config.load_incluster_config()
        api_client = client.ApiClient()
    return client.CustomObjectsApi(api_client)


class StatusReporter:
    """Patches ``status.progress`` of ``namespace/name`` every ``interval`` seconds."""

    def __init__(
        self,
        resource: str,
        snapshot: Callable[[], dict[str, Any]],
        interval: float,
        api_factory: Callable[[], Any] = _custom_objects_api,
    ) -> None:
        self.namespace, self.name = resource.split("/", 1)
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
            self._api.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, PLURAL, self.name, {"status": {"progress": self.snapshot()}}
            )
        except Exception as exc:
            self._failures += 1
            if self._failures in (1, 10) or self._failures % 100 == 0:
                status = getattr(exc, "status", None)
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
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.report_once()
