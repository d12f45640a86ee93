"""Status conditions of a SekoiaIntelSync, computed from what the operator observed.

Pure. The conditions follow kstatus so that Flux, kpt and `kubectl wait --for=condition=Ready` work:
`Reconciling=True` while Kubernetes is still converging, `Stalled=True` when only a change by the user
can help, otherwise `Ready` decides. `lastTransitionTime` only moves when a condition's status flips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .runtime_health import (
    REASON_SUSPENDED,
    RUNTIME_BLOCK_REASONS,
    RuntimeBlock,
    RuntimeHealth,
    blocked_from_progress,
)
from .secrets import CredentialsCheck
from .tls import TLSVerdict

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
COLLECTION_CLAIMED = "CollectionClaimed"
CREDENTIALS_VALID = "CredentialsValid"
RUNTIME_AVAILABLE = "RuntimeAvailable"
TLS_VERIFIED = "TLSVerified"
ORDER = (READY, RECONCILING, STALLED, COLLECTION_CLAIMED, CREDENTIALS_VALID, RUNTIME_AVAILABLE, TLS_VERIFIED)

REASON_COLLECTION_CONFLICT = "CollectionConflict"
REASON_CLAIMED = "Claimed"
REASON_INVALID_SPEC = "InvalidSpec"
REASON_SECRET_UNREADABLE = "SecretUnreadable"
REASON_SYNCHRONIZING = "Synchronizing"
REASON_AS_EXPECTED = "AsExpected"
REASON_NOT_CHECKED = "NotChecked"
REASON_CHILD_NAME_TAKEN = "ChildNameTaken"
REASON_WAITING_FOR_PREVIOUS_RUNTIME = "WaitingForPreviousRuntime"
REASON_INSECURE_SKIP_TLS_VERIFY = "InsecureSkipTLSVerify"
REASON_CERTIFICATES_VERIFIED = "CertificatesVerified"


def now_rfc3339() -> str:
    """Current time in the second-precision format Kubernetes uses for condition times."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ClaimView:
    """What the conditions need to know about the collection claim."""

    held: bool
    holder: str
    collection: str


@dataclass(frozen=True)
class Observation:
    """Everything observed during one reconciliation (None = not known this time)."""

    generation: int
    spec_error: str | None = None
    claim: ClaimView | None = None
    credentials: CredentialsCheck | None = None
    runtime: RuntimeHealth | None = None
    suspended: bool = False
    #: (reason, message) when the operator's allowlists refuse the spec: nothing is claimed or run.
    refusal: tuple[str, str] | None = None
    #: Why a child object could not be applied (its name is taken by an object we do not own).
    child_conflict: str | None = None
    #: Runtimes of the collection that must stop before this holder's runtime may start.
    waiting_for: str | None = None
    tls: TLSVerdict | None = None
    # What the runtime itself reports: Sekoia acknowledges nothing (redirects, HTML pages...).
    blocked: RuntimeBlock | None = None


Condition = dict[str, Any]


def _cond(kind: str, status: bool | None, reason: str, message: str) -> Condition:
    text = "Unknown" if status is None else ("True" if status else "False")
    return {"type": kind, "status": text, "reason": reason, "message": message}


def _claim_conditions(obs: Observation) -> Condition:
    claim = obs.claim
    if claim is None:
        return _cond(COLLECTION_CLAIMED, None, REASON_NOT_CHECKED, "the collection claim was not checked")
    if claim.held:
        return _cond(
            COLLECTION_CLAIMED, True, REASON_CLAIMED, f"this resource holds the claim on {claim.collection}"
        )
    return _cond(
        COLLECTION_CLAIMED,
        False,
        REASON_COLLECTION_CONFLICT,
        f"collection {claim.collection} is already synced by {claim.holder}; this resource waits and "
        "takes over when that one is deleted",
    )


def _credentials_condition(obs: Observation) -> Condition:
    creds = obs.credentials
    if creds is None:
        return _cond(
            CREDENTIALS_VALID, None, REASON_SECRET_UNREADABLE, "the credentials Secret could not be read"
        )
    return _cond(CREDENTIALS_VALID, creds.valid, creds.reason, creds.message)


def _tls_condition(obs: Observation) -> Condition:
    """Not a blocker: a waived verification runs, but says so in status and in a Warning Event."""
    tls = obs.tls
    if tls is None:
        return _cond(TLS_VERIFIED, None, REASON_NOT_CHECKED, "the TLS settings were not checked")
    if tls.waived:
        return _cond(
            TLS_VERIFIED,
            False,
            REASON_INSECURE_SKIP_TLS_VERIFY,
            f"certificates are NOT verified ({', '.join(tls.waived)}): anyone on the network path can "
            "read the credentials the runtime sends",
        )
    bundles = f"; CA bundles: {'; '.join(tls.ca_bundles)}" if tls.ca_bundles else ""
    return _cond(
        TLS_VERIFIED,
        True,
        REASON_CERTIFICATES_VERIFIED,
        f"the certificates of OpenCTI and Sekoia.io are verified{bundles}",
    )


def desired_conditions(obs: Observation) -> list[Condition]:
    """The conditions of `ORDER` (without times) for an observation."""
    gen = obs.generation
    blocked: tuple[str, str] | None = None
    if obs.spec_error is not None:
        blocked = (REASON_INVALID_SPEC, f"spec is invalid: {obs.spec_error}")
    elif obs.refusal is not None:
        blocked = (obs.refusal[0], f"refused by the operator's policy: {obs.refusal[1]}")
    if blocked is not None:
        reason, msg = blocked
        conds = [
            _cond(READY, False, reason, msg),
            _cond(RECONCILING, False, reason, msg),
            _cond(STALLED, True, reason, msg),
            _cond(COLLECTION_CLAIMED, None, reason, msg),
            _cond(CREDENTIALS_VALID, None, reason, msg),
            _cond(RUNTIME_AVAILABLE, False, reason, msg),
            _cond(TLS_VERIFIED, None, reason, msg),
        ]
        return [{**c, "observedGeneration": gen} for c in conds]

    claim_cond = _claim_conditions(obs)
    creds_cond = _credentials_condition(obs)
    runtime = obs.runtime

    # The first blocking problem decides Ready/Stalled/Reconciling; order = what the user must fix first.
    ready: Condition
    stalled = _cond(STALLED, False, REASON_AS_EXPECTED, "no failure that needs a change")
    reconciling = _cond(RECONCILING, False, REASON_AS_EXPECTED, "desired state reached")
    if obs.claim is not None and not obs.claim.held:
        runtime_cond = _cond(
            RUNTIME_AVAILABLE,
            False,
            REASON_COLLECTION_CONFLICT,
            "no runtime runs while another resource holds the collection",
        )
        ready = _cond(READY, False, REASON_COLLECTION_CONFLICT, claim_cond["message"])
        stalled = _cond(STALLED, True, REASON_COLLECTION_CONFLICT, claim_cond["message"])
    elif obs.child_conflict is not None:
        runtime_cond = _cond(RUNTIME_AVAILABLE, False, REASON_CHILD_NAME_TAKEN, obs.child_conflict)
        ready = _cond(READY, False, REASON_CHILD_NAME_TAKEN, obs.child_conflict)
        stalled = _cond(STALLED, True, REASON_CHILD_NAME_TAKEN, obs.child_conflict)
    elif obs.credentials is not None and not obs.credentials.valid:
        runtime_cond = _cond(
            RUNTIME_AVAILABLE,
            False,
            obs.credentials.reason,
            "the runtime is scaled to zero until its credentials are fixed",
        )
        ready = _cond(READY, False, obs.credentials.reason, obs.credentials.message)
        stalled = _cond(STALLED, True, obs.credentials.reason, obs.credentials.message)
    elif obs.waiting_for is not None:
        msg = f"the runtime starts once the previous runtime of the collection has stopped: {obs.waiting_for}"
        runtime_cond = _cond(RUNTIME_AVAILABLE, False, REASON_WAITING_FOR_PREVIOUS_RUNTIME, msg)
        ready = _cond(READY, False, REASON_WAITING_FOR_PREVIOUS_RUNTIME, msg)
        reconciling = _cond(RECONCILING, True, REASON_WAITING_FOR_PREVIOUS_RUNTIME, msg)
    elif runtime is None:
        runtime_cond = _cond(RUNTIME_AVAILABLE, None, REASON_NOT_CHECKED, "runtime not observed yet")
        ready = _cond(READY, False, REASON_NOT_CHECKED, "runtime not observed yet")
        reconciling = _cond(RECONCILING, True, REASON_NOT_CHECKED, "runtime not observed yet")
    else:
        runtime_cond = _cond(RUNTIME_AVAILABLE, runtime.available, runtime.reason, runtime.message)
        report = obs.blocked if not obs.suspended else None
        if runtime.stalled:
            ready = _cond(READY, False, runtime.reason, runtime.message)
            stalled = _cond(STALLED, True, runtime.reason, runtime.message)
        elif report is not None:
            # The runtime runs but nothing it sends is acknowledged: retrying will not fix a
            # redirecting URL or a proxy page, the user has to.
            message = f"{report.message} (the stream position does not move"
            message += f"; since {report.since})" if report.since else ")"
            ready = _cond(READY, False, report.reason, message)
            stalled = _cond(STALLED, True, report.reason, message)
        elif runtime.progressing:
            ready = _cond(READY, False, runtime.reason, runtime.message)
            reconciling = _cond(RECONCILING, True, runtime.reason, runtime.message)
        elif obs.suspended and runtime.reason == REASON_SUSPENDED:
            # Suspension is a desired state: reporting it as not-ready would page people for nothing.
            ready = _cond(READY, True, REASON_SUSPENDED, runtime.message)
        elif runtime.available:
            collection = obs.claim.collection if obs.claim else "the collection"
            ready = _cond(
                READY, True, REASON_SYNCHRONIZING, f"runtime is running and synchronising into {collection}"
            )
        else:
            ready = _cond(READY, False, runtime.reason, runtime.message)
            reconciling = _cond(RECONCILING, True, runtime.reason, runtime.message)

    conds = [ready, reconciling, stalled, claim_cond, creds_cond, runtime_cond, _tls_condition(obs)]
    return [{**c, "observedGeneration": gen} for c in conds]


def blocked_not_reflected(status: Mapping[str, Any] | None) -> bool:
    """Whether the runtime's `status.progress.blocked` and the Stalled condition disagree, so that
    the conditions need computing again (the runtime wrote its status; nothing else changed)."""
    status = status or {}
    block = blocked_from_progress(status.get("progress"))
    stalled = find(status.get("conditions"), STALLED) or {}
    is_stalled = stalled.get("status") == "True"
    shown = is_stalled and stalled.get("reason") in RUNTIME_BLOCK_REASONS
    if block is None:
        return shown  # the block has cleared: the Stalled it caused must go
    if is_stalled and not shown:
        return False  # a stall the operator found itself (crash loop, conflict...) outranks it
    return not (shown and stalled.get("reason") == block.reason)


def merge_conditions(
    previous: Sequence[Mapping[str, Any]] | None, desired: Sequence[Condition], now: str
) -> list[Condition]:
    """Stamp lastTransitionTime: kept from the previous condition of the same type when the status did
    not change, `now` otherwise. Conditions of other types (set by someone else) are preserved."""
    by_type = {c.get("type"): c for c in (previous or [])}
    result: list[Condition] = []
    for cond in desired:
        old = by_type.pop(cond["type"], None)
        same = old is not None and old.get("status") == cond["status"] and old.get("lastTransitionTime")
        stamped = {**cond, "lastTransitionTime": old["lastTransitionTime"] if same and old else now}
        result.append(stamped)
    result.extend(dict(c) for c in by_type.values())
    return result


def find(conditions: Sequence[Mapping[str, Any]] | None, kind: str) -> Mapping[str, Any] | None:
    """The condition of a given type, if present."""
    for cond in conditions or []:
        if cond.get("type") == kind:
            return cond
    return None


def is_true(conditions: Sequence[Mapping[str, Any]] | None, kind: str) -> bool:
    """Whether the condition of that type exists and is True."""
    cond = find(conditions, kind)
    return bool(cond and cond.get("status") == "True")


def credentials_from_conditions(conditions: Sequence[Mapping[str, Any]] | None) -> CredentialsCheck | None:
    """Rebuild the last credentials verdict from the stored CredentialsValid condition (None = unknown)."""
    cond = find(conditions, CREDENTIALS_VALID)
    if not cond or cond.get("status") == "Unknown":
        return None
    return CredentialsCheck(
        cond.get("status") == "True", str(cond.get("reason", "")), str(cond.get("message", ""))
    )


def runtime_details(health: RuntimeHealth, deployment_name: str, image: str | None) -> dict[str, Any]:
    """The `status.runtime` stanza."""
    details: dict[str, Any] = {
        "deploymentName": deployment_name,
        "replicas": health.replicas,
        "readyReplicas": health.ready_replicas,
        "restarts": health.restarts,
    }
    if image:
        details["image"] = image
    if health.last_termination_message:
        details["lastTerminationMessage"] = health.last_termination_message
    return details


def status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether patching `new` over `old` would change anything (avoids no-op writes and watch noise)."""
    old = old or {}
    return any(old.get(key) != value for key, value in new.items())
