"""Watch of the collection-claim Leases: a Lease deleted or edited by hand is restored at once.

kopf watches one set of namespaces for every resource kind, and the claims namespace is usually not
one the operator serves (and watching Leases cluster-wide would mean reading every node heartbeat
and holding a cluster-wide grant for it). So this is a plain watch of the claims namespace only,
selected server-side by the labels the operator puts on its Leases, run in a daemon thread. Writers
race safely: every write is conditional (see claims), so two operator replicas can both run it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from . import claims
from .kube import Kube, KubeClaimBackend

log = logging.getLogger("sekoia_intel_operator.claims")

#: (holder, claimants) after a Lease was rewritten: the caller pokes them so runtimes follow at once.
OnChange = Callable[[claims.RestoreResult], None]

_SELECTOR = ",".join(f"{k}={v}" for k, v in sorted(claims.LEASE_LABELS.items()))


def handle(kube: Kube, namespace: str, collection: str, on_change: OnChange) -> None:
    """Restore the claim of one collection; report a change."""
    result = claims.restore(KubeClaimBackend(kube), namespace, collection)
    if result.changed:
        log.info(
            "claim on collection %s restored for %s",
            collection,
            result.holder.identity if result.holder else "nobody (Lease removed)",
        )
        on_change(result)


class LeaseWatcher:
    """Runs `handle` for every claim Lease added, changed or deleted in one namespace."""

    def __init__(self, kube: Kube, namespace: str, on_change: OnChange) -> None:
        self.kube, self.namespace, self.on_change = kube, namespace, on_change
        self._stop = threading.Event()
        self._resource_version: str | None = None
        self._thread = threading.Thread(target=self._run, name="claim-lease-watch", daemon=True)

    def start(self) -> LeaseWatcher:
        """Start the watch thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the thread to end (it does at the end of the current watch window)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch_once()
            except ApiException as exc:
                if exc.status == 410:  # too old to resume: list again
                    self._resource_version = None
                    continue
                log.warning("claim Lease watch: Kubernetes API error %s %s", exc.status, exc.reason)
                self._stop.wait(5)
            except Exception as exc:  # never let the thread die: the watch is the fast path of a guarantee
                log.warning("claim Lease watch failed: %s", type(exc).__name__)
                self._stop.wait(5)

    def _watch_once(self) -> None:
        # The first watch starts with the current Leases as ADDED events: each one is checked, which
        # migrates legacy Leases and repairs whatever changed while the operator was down. Later
        # watches resume where the previous one ended.
        watcher = watch.Watch()
        kwargs: dict[str, Any] = {
            "label_selector": _SELECTOR,
            "timeout_seconds": 120,
            "_request_timeout": 150,
        }
        if self._resource_version:
            kwargs["resource_version"] = self._resource_version
        for event in watcher.stream(self.kube.coordination.list_namespaced_lease, self.namespace, **kwargs):
            self._resource_version = watcher.resource_version
            if self._stop.is_set():
                return
            raw = event.get("raw_object") or {}
            collection = claims.lease_collection(raw)
            if not collection or event.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
                continue
            try:
                handle(self.kube, self.namespace, collection, self.on_change)
            except (ApiException, claims.ClaimConflict) as exc:
                # The timer re-checks every claim soon; this watch only makes it immediate.
                log.warning("restoring the claim on collection %s failed: %s", collection, exc)
