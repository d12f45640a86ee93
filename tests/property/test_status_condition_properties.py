"""Properties of the CRD status computation (`sekoia_intel_operator.conditions`, `.runtime_health`).

The observed state is generated from the functions' own input types: Kubernetes-shaped Deployments
and Pods (every field optional, as the API server omits empty ones) judged by `assess`, Secrets
judged by `check_credentials`, claim views, spec errors, and also RuntimeHealth and
CredentialsCheck values built directly. Whatever the state, the conditions must be what kstatus
consumers (Flux, kpt, `kubectl wait`) can rely on, and must never carry a credential.

tests/operator/test_conditions.py and test_runtime_health.py check the named situations one by one;
this file checks the rules over all of them at once.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import re
import string
from collections.abc import Iterator, Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sekoia_intel_operator import conditions as c
from sekoia_intel_operator import runtime_health as rh
from sekoia_intel_operator.events import transition_events
from sekoia_intel_operator.secrets import CredentialsCheck, check_credentials

from testbed.kstatus_runner import kstatus_verdicts, with_conditions

# kstatus and metav1.Condition: a reason is a CamelCase word (the API's validation pattern is
# `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`; this operator's own reasons are plain CamelCase).
CAMEL_CASE = re.compile(r"[A-Z][A-Za-z0-9]*")
STATUSES = ("True", "False", "Unknown")
# Limits of the CRD's condition schema: a status patch beyond them is rejected whole.
MAX_TYPE, MAX_REASON, MAX_MESSAGE = 316, 1024, 32768

CAMEL_WORDS = st.from_regex(r"[A-Z][a-z]{1,8}([A-Z][a-z0-9]{1,8}){0,3}", fullmatch=True)
NAMES = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
MESSAGES = st.text(max_size=80)
COUNTS = st.integers(0, 5)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object where each field may be absent, as the API server omits empty fields."""
    return st.fixed_dictionaries({}, optional=fields)


# --- Kubernetes-shaped observed objects -----------------------------------------------------------

WAITING_REASONS = st.one_of(
    # The transient reasons, then every reason the operator treats as needing a user's change.
    st.sampled_from(["ContainerCreating", "PodInitializing", *sorted(rh._STALLED_WAITING)]),
    CAMEL_WORDS,
)
TERMINATED = optional(
    exitCode=st.integers(-(2**31), 2**31 - 1),
    signal=st.integers(0, 64),
    reason=st.one_of(st.sampled_from(["Error", "Completed", "OOMKilled", "ContainerCannotRun"]), CAMEL_WORDS),
    # The kubelet keeps up to 4096 bytes of a termination message; the operator bounds its own copy.
    message=st.one_of(MESSAGES, st.text(min_size=1000, max_size=4096)),
)
WAITING = st.fixed_dictionaries(
    {"waiting": st.fixed_dictionaries({"reason": WAITING_REASONS}, optional={"message": MESSAGES})}
)
STATES = st.one_of(
    st.just({}),
    WAITING,  # twice: waiting is where the stalled verdicts come from
    WAITING,
    st.fixed_dictionaries({"running": optional(startedAt=st.just("2024-01-01T00:00:00Z"))}),
    st.fixed_dictionaries({"terminated": TERMINATED}),
)
CONTAINER_STATUSES = st.fixed_dictionaries(
    # The kubelet always reports a state; lastState is empty until a first termination.
    {"name": NAMES, "ready": st.booleans(), "restartCount": st.integers(0, 10**6), "state": STATES},
    optional={"lastState": st.one_of(st.just({}), st.fixed_dictionaries({"terminated": TERMINATED}))},
)
POD_CONDITIONS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["PodScheduled", "Initialized", "ContainersReady", "Ready"]),
        "status": st.sampled_from(STATUSES),
    },
    optional={"reason": CAMEL_WORDS, "message": MESSAGES},
)


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    """A runtime Pod as listed through the API (possibly terminating, possibly with no status yet)."""
    metadata = draw(
        st.fixed_dictionaries(
            {"name": NAMES}, optional={"deletionTimestamp": st.just("2024-01-01T00:00:00Z")}
        )
    )
    status: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {
                "phase": st.sampled_from(["Pending", "Running", "Running", "Succeeded", "Failed", "Unknown"]),
                "containerStatuses": st.lists(CONTAINER_STATUSES, max_size=2),
            },
            optional={
                "reason": st.one_of(
                    st.sampled_from(["Evicted", "NodeLost", "UnexpectedAdmissionError"]), CAMEL_WORDS
                ),
                "message": MESSAGES,
                "conditions": st.lists(POD_CONDITIONS, max_size=3),
                "initContainerStatuses": st.lists(CONTAINER_STATUSES, max_size=1),
            },
        )
    )
    # The scheduler only reports PodScheduled=False on a Pod that is still Pending.
    if any(
        cond["type"] == "PodScheduled" and cond["status"] == "False" for cond in status.get("conditions", [])
    ):
        status["phase"] = "Pending"
    # A Pod just created may have no status at all yet.
    return {"metadata": metadata, **({"status": status} if draw(st.sampled_from(range(6))) else {})}


DEPLOYMENT_CONDITIONS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Progressing", "Available", "ReplicaFailure"]),
        "status": st.sampled_from(STATUSES),
    },
    optional={
        "reason": st.one_of(
            st.sampled_from(
                ["ProgressDeadlineExceeded", "NewReplicaSetAvailable", "MinimumReplicasAvailable"]
            ),
            CAMEL_WORDS,
        ),
        "message": MESSAGES,
    },
)
DEPLOYMENTS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"metadata": st.fixed_dictionaries({"name": NAMES}, optional={"generation": st.integers(1, 10)})},
        optional={
            "status": optional(
                observedGeneration=st.integers(0, 10),
                replicas=COUNTS,
                updatedReplicas=COUNTS,
                readyReplicas=COUNTS,
                availableReplicas=COUNTS,
                conditions=st.lists(DEPLOYMENT_CONDITIONS, max_size=2),
            )
        },
    ),
)


@st.composite
def deployments(draw: st.DrawFn, desired: int) -> dict[str, Any] | None:
    """The runtime Deployment: absent, anything, or (mostly) close to `desired` as a rollout ends."""
    shape = draw(st.sampled_from(["absent", "anything", "converging", "converging", "converging"]))
    if shape == "absent":
        return None
    if shape == "anything":
        return draw(DEPLOYMENTS)
    generation = draw(st.integers(1, 10))
    lag = st.sampled_from([0, 0, 0, 0, 0, 1])  # how far a count still is from the desired one
    status = {
        "observedGeneration": generation - draw(lag),
        "replicas": desired + draw(lag),
        "updatedReplicas": max(0, desired - draw(lag)),
        "readyReplicas": max(0, desired - draw(lag)),
        "availableReplicas": max(0, desired - draw(lag)),
        "conditions": draw(st.lists(DEPLOYMENT_CONDITIONS, max_size=1)),
    }
    return {"metadata": {"name": draw(NAMES), "generation": generation}, "status": status}


@st.composite
def assessed(
    draw: st.DrawFn,
) -> tuple[rh.RuntimeHealth, dict[str, Any] | None, list[dict[str, Any]], int, bool]:
    """`assess` over generated objects: (verdict, deployment, pods, desired replicas, suspended)."""
    suspended = draw(st.sampled_from(range(5))) == 4
    desired = 0 if suspended else draw(st.sampled_from([1, 1, 1, 0, 2]))
    deployment = draw(deployments(desired))
    pod_list = draw(st.lists(pods(), max_size=3))
    verdict = rh.assess(deployment, pod_list, desired_replicas=desired, suspended=suspended)
    return verdict, deployment, pod_list, desired, suspended


RUNTIME_HEALTH = st.one_of(
    assessed().map(lambda case: case[0]),
    st.builds(
        rh.RuntimeHealth,
        available=st.booleans(),
        reason=st.one_of(st.sampled_from([rh.REASON_SUSPENDED, rh.REASON_READY]), CAMEL_WORDS),
        message=MESSAGES.filter(bool),
        stalled=st.booleans(),
        progressing=st.booleans(),
        replicas=COUNTS,
        ready_replicas=COUNTS,
        restarts=st.integers(0, 10**6),
        last_termination_message=st.one_of(st.none(), MESSAGES),
    ),
)

# --- Secrets (whose values must never reach the status) ---------------------------------------

SECRET_KEYS = st.from_regex(r"[-._a-zA-Z0-9]{1,30}", fullmatch=True)
# Token-like values. The `+` (a base64 character, so a plausible token) cannot occur in a Secret
# key or a resource name, so finding a value in a message cannot be a coincidence of generation.
SECRET_VALUES = st.text(string.ascii_letters + string.digits, min_size=12, max_size=48).map(
    lambda token: f"tok+{token}"
)


@st.composite
def secrets(draw: st.DrawFn) -> tuple[CredentialsCheck, list[str]]:
    """A credentials verdict computed from a generated Secret, and the secret values it holds."""
    name = draw(NAMES)
    keys = draw(st.lists(SECRET_KEYS, min_size=2, max_size=2))
    values = draw(st.lists(SECRET_VALUES, max_size=4))
    data: dict[str, str] = {}
    for index, value in enumerate(values):
        # A referenced key (first ones), unrelated keys of a shared Secret (the others).
        key = keys[index] if index < len(keys) else f"other-{index}"
        shape = draw(st.sampled_from(["value", "value", "blank", "not-base64"]))
        if shape == "value":
            data[key] = base64.b64encode(value.encode()).decode()
        elif shape == "blank":
            data[key] = base64.b64encode(draw(st.sampled_from([b"", b" ", b"\n"]))).decode()
        else:
            data[key] = value + "%"  # not valid base64: the check must still not echo it
    exists = draw(st.sampled_from(range(6))) != 0  # mostly there: a missing Secret says little
    verdict = check_credentials(name, data or None, keys, draw(st.uuids()).hex, exists=exists)
    return verdict, values


CREDENTIALS = st.one_of(
    secrets().map(lambda case: case[0]),
    st.builds(CredentialsCheck, valid=st.booleans(), reason=CAMEL_WORDS, message=MESSAGES.filter(bool)),
)
CLAIMS = st.builds(
    c.ClaimView,
    held=st.booleans(),
    holder=st.tuples(NAMES, NAMES).map("/".join),
    collection=st.uuids().map(lambda value: f"https://api.sekoia.io/{value}"),
)
HEALTHY_RUNTIME = st.builds(
    rh.RuntimeHealth,
    available=st.just(True),
    reason=st.just(rh.REASON_READY),
    message=st.just("Deployment sis-x: 1/1 runtime Pods ready"),
    replicas=st.just(1),
    ready_replicas=st.just(1),
    restarts=st.integers(0, 3),
)
VALID_CREDENTIALS = st.builds(
    CredentialsCheck,
    valid=st.just(True),
    reason=st.just("CredentialsFound"),
    message=st.just("Secret 'creds' holds both credentials"),
    fingerprint=st.uuids().map(lambda value: value.hex),
)


@st.composite
def observations(draw: st.DrawFn) -> c.Observation:
    """One reconciliation's observations, weighted so that every branch of the verdict is common."""
    # sampled_from rather than integers: Hypothesis favours 0 and the bounds of integer ranges.
    spec_error = draw(MESSAGES.filter(bool)) if draw(st.sampled_from(range(8))) == 0 else None
    claim = draw(st.one_of(st.none(), CLAIMS))
    if claim is not None and draw(st.sampled_from(range(4))):
        claim = dataclasses.replace(claim, held=True)  # a conflict is the exception
    credentials = draw(st.one_of(st.none(), CREDENTIALS, VALID_CREDENTIALS, VALID_CREDENTIALS))
    runtime = draw(st.one_of(st.none(), RUNTIME_HEALTH, RUNTIME_HEALTH, HEALTHY_RUNTIME))
    return c.Observation(
        draw(st.integers(0, 2**63 - 1)), spec_error, claim, credentials, runtime, draw(st.booleans())
    )


OBSERVATIONS = observations()


def by_type(conditions: list[c.Condition]) -> dict[str, c.Condition]:
    """The conditions keyed by type."""
    return {cond["type"]: cond for cond in conditions}


def kstatus_both(conditions: list[c.Condition], generation: int) -> dict[str, str]:
    """Each kstatus library's verdict for a resource whose observedGeneration is current."""
    return kstatus_verdicts([with_conditions(conditions, generation, generation)])[0]


def assert_valid_conditions(conditions: list[c.Condition], generation: int) -> None:
    """The shape every condition list written to the status must have."""
    types = [cond["type"] for cond in conditions]
    assert types == list(c.ORDER)
    for cond in conditions:
        assert set(cond) == {"type", "status", "reason", "message", "observedGeneration"}
        assert cond["status"] in STATUSES
        assert isinstance(cond["reason"], str) and CAMEL_CASE.fullmatch(cond["reason"]), cond
        assert isinstance(cond["message"], str) and cond["message"], cond
        assert len(cond["type"]) <= MAX_TYPE and len(cond["reason"]) <= MAX_REASON
        assert len(cond["message"]) <= MAX_MESSAGE
        assert cond["observedGeneration"] == generation


# --- desired_conditions -------------------------------------------------------------------------


@given(OBSERVATIONS)
def test_conditions_are_valid_kstatus_for_any_observation(obs: c.Observation) -> None:
    conditions = c.desired_conditions(obs)
    assert_valid_conditions(conditions, obs.generation)
    by = by_type(conditions)
    ready, reconciling, stalled = by[c.READY], by[c.RECONCILING], by[c.STALLED]
    # Exactly one of the three says where the resource stands: Reconciling while Kubernetes
    # converges, Stalled when only the user can help, otherwise Ready.
    assert [ready["status"], reconciling["status"], stalled["status"]].count("True") == 1
    assert "Unknown" not in (ready["status"], reconciling["status"], stalled["status"])
    if ready["status"] == "False":
        # The blocking problem is named the same way on Ready and on the condition it raises.
        blocking = reconciling if reconciling["status"] == "True" else stalled
        assert (blocking["reason"], blocking["message"]) == (ready["reason"], ready["message"])
    # So both kstatus libraries conclude the same, and only a Ready resource is Current.
    verdicts = kstatus_both(conditions, obs.generation)
    assert len(set(verdicts.values())) == 1, verdicts
    assert (verdicts["cli-utils"] == "Current") == (ready["status"] == "True")


@given(OBSERVATIONS)
def test_the_first_blocking_problem_decides(obs: c.Observation) -> None:
    by = by_type(c.desired_conditions(obs))
    ready, runtime = by[c.READY], by[c.RUNTIME_AVAILABLE]
    if obs.spec_error is not None:
        assert {cond["reason"] for cond in by.values()} == {c.REASON_INVALID_SPEC}
        assert all(obs.spec_error in cond["message"] for cond in by.values())
        assert by[c.STALLED]["status"] == "True"
        return
    claimed = by[c.COLLECTION_CLAIMED]["status"]
    assert claimed == ("Unknown" if obs.claim is None else str(obs.claim.held))
    credentials = by[c.CREDENTIALS_VALID]
    if obs.credentials is None:
        assert credentials["status"] == "Unknown"
    else:
        assert (credentials["status"], credentials["reason"], credentials["message"]) == (
            str(obs.credentials.valid),
            obs.credentials.reason,
            obs.credentials.message,
        )
    if obs.claim is not None and not obs.claim.held:
        assert ready["reason"] == c.REASON_COLLECTION_CONFLICT and by[c.STALLED]["status"] == "True"
        assert obs.claim.holder in ready["message"] and runtime["status"] == "False"
    elif obs.credentials is not None and not obs.credentials.valid:
        assert ready["reason"] == obs.credentials.reason and by[c.STALLED]["status"] == "True"
        assert runtime["status"] == "False"
    elif obs.runtime is None:
        assert ready["reason"] == c.REASON_NOT_CHECKED and runtime["status"] == "Unknown"
        assert by[c.RECONCILING]["status"] == "True"
    else:
        assert runtime["status"] == str(obs.runtime.available)
        assert runtime["reason"] == obs.runtime.reason
        if ready["status"] == "True":
            # Ready means synchronising, or suspended on purpose: never a failing runtime.
            assert not obs.runtime.stalled and not obs.runtime.progressing
            assert obs.runtime.available or (obs.suspended and ready["reason"] == rh.REASON_SUSPENDED)
        elif obs.runtime.stalled:
            assert by[c.STALLED]["status"] == "True" and ready["reason"] == obs.runtime.reason


@given(OBSERVATIONS.filter(lambda obs: obs.spec_error is None))
def test_stored_credentials_verdict_gives_back_the_same_conditions(obs: c.Observation) -> None:
    conditions = c.desired_conditions(obs)
    rebuilt = c.credentials_from_conditions(conditions)
    if obs.credentials is None:
        assert rebuilt is None
    else:
        assert rebuilt is not None
        assert (rebuilt.valid, rebuilt.reason, rebuilt.message) == (
            obs.credentials.valid,
            obs.credentials.reason,
            obs.credentials.message,
        )
    # refresh_runtime judges with the verdict read back from the status: it must not flip anything.
    assert c.desired_conditions(dataclasses.replace(obs, credentials=rebuilt)) == conditions


# --- merge_conditions ---------------------------------------------------------------------------

TIMES = st.sampled_from(["2024-01-01T00:00:00Z", "2024-06-01T12:00:00Z", ""])
STORED_CONDITIONS = st.lists(
    st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(c.ORDER), CAMEL_WORDS), "status": st.sampled_from(STATUSES)},
        optional={"reason": CAMEL_WORDS, "message": MESSAGES, "lastTransitionTime": TIMES},
    ),
    max_size=8,
    # The CRD declares conditions a list-map keyed by type: the API server keeps types unique.
    unique_by=lambda cond: cond["type"],
)
NOW, LATER = "2025-01-01T00:00:00Z", "2025-01-01T00:10:00Z"


@given(st.one_of(st.none(), STORED_CONDITIONS), OBSERVATIONS)
def test_merge_moves_transition_times_only_on_status_flips(
    previous: list[dict[str, Any]] | None, obs: c.Observation
) -> None:
    desired = c.desired_conditions(obs)
    snapshot = copy.deepcopy(previous)
    merged = c.merge_conditions(previous, desired, NOW)
    assert previous == snapshot, "the stored conditions must not be modified in place"
    types = [cond["type"] for cond in merged]
    assert len(types) == len(set(types))
    old = {cond["type"]: cond for cond in previous or []}
    for want, got in zip(desired, merged, strict=False):
        assert {k: v for k, v in got.items() if k != "lastTransitionTime"} == want
        before = old.get(want["type"])
        kept = before is not None and before["status"] == want["status"] and before.get("lastTransitionTime")
        assert got["lastTransitionTime"] == (before["lastTransitionTime"] if kept and before else NOW)
    # Conditions someone else set are kept as they were, after ours.
    foreign = [cond for cond in previous or [] if cond["type"] not in c.ORDER]
    assert merged[len(desired) :] == foreign
    # Merging the same verdict again moves nothing, so the status is not rewritten for nothing.
    again = c.merge_conditions(merged, desired, LATER)
    assert again == merged
    assert not c.status_changed({"conditions": merged}, {"conditions": again})
    assert transition_events(merged, again) == []


# --- runtime_health.assess ----------------------------------------------------------------------


def _live(pod_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [pod for pod in pod_list if not pod["metadata"].get("deletionTimestamp")]


def _statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]


@given(assessed())
def test_runtime_verdict_is_consistent_for_any_observed_objects(
    case: tuple[rh.RuntimeHealth, dict[str, Any] | None, list[dict[str, Any]], int, bool],
) -> None:
    verdict, deployment, pod_list, desired, suspended = case
    assert CAMEL_CASE.fullmatch(verdict.reason), verdict.reason
    assert isinstance(verdict.message, str) and verdict.message
    assert not (verdict.stalled and verdict.progressing)
    if verdict.available:
        assert verdict.reason == rh.REASON_READY and not (verdict.stalled or verdict.progressing)
    if desired == 0:
        assert verdict.reason == (rh.REASON_SUSPENDED if suspended else rh.REASON_SCALED_DOWN)
        assert not verdict.available and not verdict.stalled
    elif deployment is None:
        assert verdict.reason == rh.REASON_DEPLOYMENT_PENDING and verdict.progressing
    assert verdict.replicas == desired
    assert verdict.ready_replicas == ((deployment or {}).get("status") or {}).get("readyReplicas", 0)
    # Restarts count the Pods that still exist, init containers included.
    assert verdict.restarts == sum(cs["restartCount"] for pod in _live(pod_list) for cs in _statuses(pod))
    if verdict.last_termination_message is not None:
        assert 0 < len(verdict.last_termination_message) <= rh.MAX_TERMINATION_MESSAGE
    details = c.runtime_details(verdict, "sis-x", None)
    assert {type(details[key]) for key in ("replicas", "readyReplicas", "restarts")} == {int}


HEALTHY_DEPLOYMENT = {
    "metadata": {"name": "sis-x", "generation": 2},
    "status": {
        "observedGeneration": 2,
        "replicas": 1,
        "updatedReplicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
    },
}


@given(pods())
def test_a_pod_that_changes_the_verdict_is_never_filtered_out(pod: dict[str, Any]) -> None:
    # The operator only reacts to Pod events that pod_needs_attention lets through, because
    # healthy changes show up in the Deployment's status anyway. Next to a Deployment that says all
    # is well, a Pod that still makes the verdict non-ready must therefore be let through.
    verdict = rh.assess(HEALTHY_DEPLOYMENT, [pod], desired_replicas=1, suspended=False)
    if verdict.reason != rh.REASON_READY:
        assert rh.pod_needs_attention(pod.get("status") or {}), verdict


# --- no credential ever reaches the status or an Event ------------------------------------------


def strings_in(value: object) -> Iterator[str]:
    """Every string inside a JSON-like value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield from strings_in(dataclasses.asdict(value))


@given(secrets(), st.one_of(st.none(), CLAIMS), st.one_of(st.none(), RUNTIME_HEALTH), STORED_CONDITIONS)
def test_no_secret_value_reaches_conditions_or_events(
    secret: tuple[CredentialsCheck, list[str]],
    claim: c.ClaimView | None,
    runtime: rh.RuntimeHealth | None,
    previous: list[dict[str, Any]],
) -> None:
    verdict, values = secret
    obs = c.Observation(1, claim=claim, credentials=verdict, runtime=runtime)
    conditions = c.merge_conditions(previous, c.desired_conditions(obs), NOW)
    events = transition_events(previous, conditions)
    written = [conditions, events, verdict.reason, verdict.message]
    if runtime is not None:
        written.append(c.runtime_details(runtime, "sis-x", "image:1"))
    texts = list(strings_in(written))
    for value in values:
        encoded = base64.b64encode(value.encode()).decode()
        for text in texts:
            assert value not in text and encoded not in text
    # The fingerprint is for the Pod template only; it is not a condition's business either.
    if verdict.fingerprint:
        assert all(verdict.fingerprint not in text for text in texts)
