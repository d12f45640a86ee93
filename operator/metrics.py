"""Prometheus metrics of the operator itself (the runtime exports its own)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECONCILES = Counter(
    "sis_operator_reconciles_total", "Reconciliations of SekoiaIntelSync resources", ["trigger", "result"]
)
RECONCILE_SECONDS = Histogram(
    "sis_operator_reconcile_duration_seconds",
    "Duration of one reconciliation",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EVENTS = Counter("sis_operator_events_total", "Kubernetes Events posted", ["type", "reason"])
CLAIM_HANDOVERS = Counter(
    "sis_operator_claim_handovers_total", "Collection claims handed to a waiting resource"
)
ADMISSION = Counter("sis_operator_admission_reviews_total", "Admission reviews answered", ["result"])
