"""Settings of the Sekoia emulator.

`EmulatorOptions` holds one field per GUESS of the API reference (so a test can flip a guess and see
the runtime cope) plus limits; `FaultSettings` holds the injected faults. Both are immutable: the
emulator swaps the whole object, which keeps readers on other threads consistent without locking.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

COLLECTION_ID_FORMS = ("both", "uuid", "prefixed")
STRUCTURED_ADD_MODES = ("sync", "sync_202", "async")
READD_REVOKED_MODES = ("reactivate", "create_new", "reject")
QUOTA_SCOPES = ("community", "collection")
RATE_SCOPES = ("key", "global")  # what the limiter counts: each API key, or every client together
FAULT_SCOPES = ("writes", "all")  # writes: POST, PUT, PATCH and DELETE; all: reads too


@dataclass(frozen=True)
class EmulatorOptions:
    """Behaviour switches of the emulator. Fields marked GUESS decide what the reference leaves open."""

    # GUESS: which collection id form the path takes: bare uuid, `ioc-collection--<uuid>` or both.
    collection_id_form: str = "both"
    # GUESS: structured add answers 200 with items ("sync"), 202 with items ("sync_202") or
    # 202 with only a task id, applied in the background ("async").
    structured_add_mode: str = "sync"
    # GUESS: re-adding a revoked value reactivates it, creates a new indicator or is refused.
    readd_revoked: str = "reactivate"
    # GUESS: the search answers revoked indicators too.
    search_includes_revoked: bool = True
    # GUESS: status of a validation error (400 or 422).
    validation_status: int = 400
    # GUESS: whether a 429 carries Retry-After (the firewall may answer without it).
    retry_after: bool = True
    # Requests per `rate_window` seconds per API key; None disables the limiter.
    rate_limit: int | None = None
    rate_window: float = 1.0
    # GUESS: how the firewall counts. None: a strict sliding window (never more than `rate_limit`
    # arrivals in any `rate_window`). A number: a token bucket of that capacity refilled at
    # rate_limit/rate_window, i.e. the average rate with short bursts tolerated, as API gateways do.
    rate_burst: int | None = None
    # "key": each API key has its own limit (the tenant as the firewall sees it). "global": one limit
    # for every client together, what a shared egress (all runtimes of a cluster) meets.
    rate_scope: str = "key"
    # Active IOC cap; `quota_scope` says whether it counts the whole community or one collection.
    quota: int | None = None
    quota_scope: str = "community"
    quota_status: int = 400
    max_values_per_add: int = 100
    max_search_limit: int = 100
    max_description: int = 500
    # Delay before a text import (or an async structured add) is applied.
    async_delay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        _one_of("collection_id_form", self.collection_id_form, COLLECTION_ID_FORMS)
        _one_of("structured_add_mode", self.structured_add_mode, STRUCTURED_ADD_MODES)
        _one_of("readd_revoked", self.readd_revoked, READD_REVOKED_MODES)
        _one_of("quota_scope", self.quota_scope, QUOTA_SCOPES)
        _one_of("rate_scope", self.rate_scope, RATE_SCOPES)
        if self.validation_status not in (400, 422):
            raise ValueError("validation_status must be 400 or 422")
        if self.rate_limit is not None and self.rate_limit < 1:
            raise ValueError("rate_limit must be a positive number of requests or None")

    def updated(self, changes: dict[str, Any]) -> EmulatorOptions:
        """Return a copy with `changes` applied; unknown names raise ValueError."""
        return dataclasses.replace(self, **_known(self, changes))

    def as_dict(self) -> dict[str, Any]:
        """Plain-JSON view, for the admin API."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FaultSettings:
    """Faults injected into the Sekoia API (never into the admin API)."""

    error_ratio: float = 0.0  # share of requests answered with `error_status`
    error_status: int = 503
    latency: float = 0.0  # fixed delay added before answering, in seconds
    latency_jitter: float = 0.0  # extra random delay, uniform in [0, latency_jitter]
    drop_ratio: float = 0.0  # share of connections closed without any answer
    # When True a dropped request is applied first: the effect exists but the client never hears it.
    drop_after_apply: bool = False
    # Set: answer `redirect_status` with this Location (what an http:// URL behind an https redirect,
    # or a root without its /api prefix, gets) to every request in `redirect_scope`. Nothing applied.
    redirect_location: str | None = None
    redirect_status: int = 301
    redirect_scope: str = "writes"
    # What a proxy in front of the API answers in its place, to every request in `proxy_scope`:
    # 200 with an HTML login page, or 200 with a JSON object of another shape (`{"status": "ok"}`).
    html_answers: bool = False
    wrong_shape_answers: bool = False
    proxy_scope: str = "writes"
    # Set: a search whose term is longer than this gets 414 URI Too Long, as a gateway answers.
    max_term_length: int | None = None

    def __post_init__(self) -> None:
        for name in ("error_ratio", "drop_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if not 500 <= self.error_status <= 599:
            raise ValueError("error_status must be a 5xx status")
        if self.latency < 0 or self.latency_jitter < 0:
            raise ValueError("latencies cannot be negative")
        if not 300 <= self.redirect_status <= 399:
            raise ValueError("redirect_status must be a 3xx status")
        _one_of("redirect_scope", self.redirect_scope, FAULT_SCOPES)
        _one_of("proxy_scope", self.proxy_scope, FAULT_SCOPES)
        if self.max_term_length is not None and self.max_term_length < 1:
            raise ValueError("max_term_length must be a positive number of characters or None")

    def updated(self, changes: dict[str, Any]) -> FaultSettings:
        """Return a copy with `changes` applied; unknown names raise ValueError."""
        return dataclasses.replace(self, **_known(self, changes))

    def as_dict(self) -> dict[str, Any]:
        """Plain-JSON view, for the admin API."""
        return dataclasses.asdict(self)


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


def _known(instance: object, changes: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(instance)}  # type: ignore[arg-type]
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
    return changes
