"""Prometheus metrics of the connector runtime, defined in one place.

Every module that counts something imports its metric from here, so the full list of what a
runtime exposes (and its label sets) can be read in one file. Labels never carry secrets or
indicator values: only event types, reasons, HTTP methods and status codes.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter(
    "sis_stream_events_total",
    "Live stream events received, by SSE event name and what the runtime did with them.",
    ["event", "action"],
    registry=REGISTRY,
)
VALUES_PUSHED = Counter(
    "sis_values_pushed_total",
    "Values Sekoia acknowledged as added, by Sekoia type.",
    ["type"],
    registry=REGISTRY,
)
VALUES_REVOKED = Counter(
    "sis_values_revoked_total",
    "Sekoia indicators revoked.",
    registry=REGISTRY,
)
VALUES_SKIPPED = Counter(
    "sis_values_skipped_total",
    "Pattern comparisons that could not become a Sekoia value, by reason.",
    ["reason"],
    registry=REGISTRY,
)
VALUES_REJECTED = Counter(
    "sis_values_rejected_total",
    "Values Sekoia refused (400/422), by reason.",
    ["reason"],
    registry=REGISTRY,
)
API_REQUESTS = Counter(
    "sis_sekoia_requests_total",
    "Requests sent to the Sekoia API, by operation and HTTP status ('error' for no answer).",
    ["operation", "status"],
    registry=REGISTRY,
)
API_RETRIES = Counter(
    "sis_sekoia_retries_total",
    "Sekoia requests retried, by cause.",
    ["cause"],
    registry=REGISTRY,
)
API_LATENCY = Histogram(
    "sis_sekoia_request_seconds",
    "Latency of Sekoia API requests, by operation.",
    ["operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "sis_push_batch_values",
    "Values per push request.",
    buckets=(1, 2, 5, 10, 20, 50, 75, 100),
    registry=REGISTRY,
)
VALUES_COARSENED = Counter(
    "sis_values_coarsened_total",
    "Values Sekoia acknowledged with a shared field coarser than their own, by field "
    "(valid_until later, kill_chain_phases united, description replaced).",
    ["field"],
    registry=REGISTRY,
)
PUSH_REQUESTS_BY_LEVEL = Counter(
    "sis_push_requests_by_level_total",
    "Push requests sent, by coarsening level (exact, rounded, widened, merged).",
    ["level"],
    registry=REGISTRY,
)
INDICATORS_REFUSED = Counter(
    "sis_indicators_refused_total",
    "Indicators the sharing guardrail kept from Sekoia, by the marking that refused them (TLP and "
    "PAP names, `unmarked`, or `other` for custom and unresolved markings).",
    ["marking"],
    registry=REGISTRY,
)
RESYNC_IN_PROGRESS = Gauge(
    "sis_resync_in_progress",
    "1 while a requested resync replays the stream (spec.opencti.resyncFrom), else 0.",
    registry=REGISTRY,
)
LAST_COMMITTED_EVENT_TIME = Gauge(
    "sis_last_committed_event_timestamp_seconds",
    "Time encoded in the last stream event id whose effect Sekoia acknowledged.",
    registry=REGISTRY,
)
LAG_SECONDS = Gauge(
    "sis_stream_lag_seconds",
    "Age of the oldest event received but not yet acknowledged by Sekoia (0 when idle).",
    registry=REGISTRY,
)
PENDING_EVENTS = Gauge(
    "sis_pending_events",
    "Events received whose effect Sekoia has not acknowledged yet.",
    registry=REGISTRY,
)
BUDGET_SHARE = Gauge(
    "sis_runtime_budget_requests_per_second",
    "Requests per second this runtime may send to Sekoia: its share of the operator's budget for "
    "the Sekoia host, capped by its own setting.",
    registry=REGISTRY,
)
# Label values come from closed sets: a label fed from the stream (an SSE event name, a reason that
# embeds one) would let the platform, or anyone able to inject events, grow the series without bound.
EVENT_NAMES = frozenset({"create", "update", "delete", "merge"})
# The reasons `stream.events.parse_event` gives, apart from the one made of the event's name.
IGNORE_REASONS = frozenset(
    {
        "malformed-json",
        "malformed-payload",
        "not-an-indicator",
        "malformed-indicator",
        "not-stix-pattern",
        "merge",
        "marking-not-allowed",
    }
)


def event_label(name: str | None) -> str:
    """The ``event`` label of an SSE event name: the name itself when known, else ``other``."""
    return name if name in EVENT_NAMES else "other"


def ignored_label(reason: str | None) -> str:
    """The ``action`` label of an ignored event: ``ignored:<reason>`` for a known reason, else
    ``ignored:other`` (e.g. the reason made of an unexpected event name)."""
    return f"ignored:{reason}" if reason in IGNORE_REASONS else "ignored:other"


READY = Gauge(
    "sis_ready",
    "1 when the stream is connected and Sekoia accepts the credentials.",
    registry=REGISTRY,
)
