"""Prometheus metrics of the operator itself (the runtime exports its own)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
BUDGET_LIMIT = Gauge(
    "sis_operator_sekoia_budget_requests_per_second",
    "Sekoia request budget of a host, shared by every sync pushing to it",
    ["host"],
)
BUDGET_ALLOCATED = Gauge(
    "sis_operator_sekoia_budget_allocated_requests_per_second",
    "Requests per second currently given out of a host's budget, all syncs together",
    ["host"],
)
BUDGET_SYNCS = Gauge("sis_operator_sekoia_budget_syncs", "Running syncs sharing a host's budget", ["host"])
BUDGET_PUBLICATIONS = Counter(
    "sis_operator_sekoia_budget_publications_total",
    "Shares written into resources' status.budget (a rebalance writes one per changed sync)",
    ["host"],
)
