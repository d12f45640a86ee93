"""kstatus-compatible conditions from observed states."""

from __future__ import annotations

from sekoia_intel_operator import conditions as c
from sekoia_intel_operator.events import transition_events
from sekoia_intel_operator.runtime_health import RuntimeHealth, blocked_from_progress
from sekoia_intel_operator.secrets import CredentialsCheck

from testbed.kstatus_runner import kstatus, with_conditions

CLAIMED = c.ClaimView(True, "ns/me", "https://api.sekoia.io/x")
CONFLICT = c.ClaimView(False, "other/holder", "https://api.sekoia.io/x")
GOOD = CredentialsCheck(True, "CredentialsFound", "ok", "fp")
READY = RuntimeHealth(True, "RuntimeReady", "1/1 ready", replicas=1, ready_replicas=1)


def _by_type(conds: list[dict]) -> dict[str, dict]:
    return {x["type"]: x for x in conds}


def _kstatus(conds: list[dict], generation: int, observed: int) -> str:
    """What kstatus concludes (both sigs.k8s.io/cli-utils and Flux's fork, which must agree)."""
    return kstatus(with_conditions(conds, generation, observed))


def test_every_condition_carries_reason_message_generation() -> None:
    conds = c.desired_conditions(c.Observation(7, claim=CLAIMED, credentials=GOOD, runtime=READY))
    assert [x["type"] for x in conds] == list(c.ORDER)
    for cond in conds:
        assert cond["reason"] and cond["message"] and cond["observedGeneration"] == 7
        assert cond["status"] in ("True", "False", "Unknown")


def test_ready() -> None:
    conds = c.desired_conditions(c.Observation(1, claim=CLAIMED, credentials=GOOD, runtime=READY))
    by = _by_type(conds)
    assert by["Ready"]["status"] == "True" and by["Ready"]["reason"] == "Synchronizing"
    assert _kstatus(conds, 1, 1) == "Current"


def test_conflict_is_stalled_and_names_the_holder() -> None:
    conds = c.desired_conditions(c.Observation(1, claim=CONFLICT, credentials=GOOD))
    by = _by_type(conds)
    assert by["Ready"]["status"] == "False" and by["Ready"]["reason"] == "CollectionConflict"
    assert by["Stalled"]["status"] == "True" and by["Stalled"]["reason"] == "CollectionConflict"
    assert "other/holder" in by["Stalled"]["message"]
    assert by["CollectionClaimed"]["status"] == "False"
    assert by["RuntimeAvailable"]["status"] == "False"
    assert _kstatus(conds, 1, 1) == "Failed"


def test_missing_secret_is_a_precise_stalled_state() -> None:
    missing = CredentialsCheck(False, "SecretNotFound", "Secret 'creds' does not exist")
    by = _by_type(c.desired_conditions(c.Observation(1, claim=CLAIMED, credentials=missing, runtime=READY)))
    assert (
        by["CredentialsValid"]["status"] == "False" and by["CredentialsValid"]["reason"] == "SecretNotFound"
    )
    assert by["Stalled"]["reason"] == "SecretNotFound" and by["Ready"]["reason"] == "SecretNotFound"


def test_rollout_is_in_progress() -> None:
    rolling = RuntimeHealth(False, "RolloutInProgress", "0/1 updated", progressing=True)
    conds = c.desired_conditions(c.Observation(2, claim=CLAIMED, credentials=GOOD, runtime=rolling))
    assert _kstatus(conds, 2, 2) == "InProgress"
    assert _by_type(conds)["Reconciling"]["reason"] == "RolloutInProgress"


def test_crash_loop_is_failed() -> None:
    crash = RuntimeHealth(False, "CrashLoopBackOff", "boom", stalled=True)
    conds = c.desired_conditions(c.Observation(2, claim=CLAIMED, credentials=GOOD, runtime=crash))
    assert _kstatus(conds, 2, 2) == "Failed"
    assert _by_type(conds)["Ready"]["reason"] == "CrashLoopBackOff"


def test_suspended_is_ready() -> None:
    suspended = RuntimeHealth(False, "Suspended", "scaled to zero")
    conds = c.desired_conditions(
        c.Observation(3, claim=CLAIMED, credentials=GOOD, runtime=suspended, suspended=True)
    )
    by = _by_type(conds)
    assert by["Ready"]["status"] == "True" and by["Ready"]["reason"] == "Suspended"
    assert by["RuntimeAvailable"]["status"] == "False"


def test_invalid_spec() -> None:
    conds = c.desired_conditions(c.Observation(1, spec_error="spec.x: bad"))
    assert _kstatus(conds, 1, 1) == "Failed"
    assert "spec.x: bad" in _by_type(conds)["Ready"]["message"]


def test_transition_time_only_moves_on_status_flip() -> None:
    first = c.merge_conditions(
        [], c.desired_conditions(c.Observation(1, claim=CLAIMED, credentials=GOOD, runtime=READY)), "T1"
    )
    rolling = RuntimeHealth(False, "RolloutInProgress", "0/1", progressing=True)
    second = c.merge_conditions(
        first, c.desired_conditions(c.Observation(2, claim=CLAIMED, credentials=GOOD, runtime=rolling)), "T2"
    )
    by = _by_type(second)
    assert by["Ready"]["lastTransitionTime"] == "T2"  # flipped True -> False
    assert by["CollectionClaimed"]["lastTransitionTime"] == "T1"  # unchanged
    assert by["CollectionClaimed"]["observedGeneration"] == 2


def test_foreign_conditions_are_preserved() -> None:
    merged = c.merge_conditions(
        [{"type": "Custom", "status": "True"}], c.desired_conditions(c.Observation(1)), "T"
    )
    assert any(x["type"] == "Custom" for x in merged)


def test_events_follow_transitions_once() -> None:
    start = c.desired_conditions(c.Observation(1, claim=CONFLICT, credentials=GOOD))
    events = transition_events([], start)
    assert [(e.type, e.reason) for e in events] == [("Warning", "CollectionConflict")]
    assert transition_events(start, start) == []
    claimed = c.desired_conditions(c.Observation(1, claim=CLAIMED, credentials=GOOD, runtime=READY))
    reasons = [e.reason for e in transition_events(start, claimed)]
    assert reasons == ["CollectionClaimed", "Synchronizing"]
    crash = c.desired_conditions(
        c.Observation(
            1,
            claim=CLAIMED,
            credentials=GOOD,
            runtime=RuntimeHealth(False, "CrashLoopBackOff", "boom", stalled=True),
        )
    )
    assert [(e.type, e.reason) for e in transition_events(claimed, crash)] == [
        ("Warning", "CrashLoopBackOff")
    ]


def test_credentials_roundtrip_through_conditions() -> None:
    conds = c.desired_conditions(c.Observation(1, claim=CLAIMED, credentials=GOOD, runtime=READY))
    back = c.credentials_from_conditions(conds)
    assert back is not None and back.valid and back.reason == "CredentialsFound"
    assert c.credentials_from_conditions(c.desired_conditions(c.Observation(1, claim=CLAIMED))) is None


def test_child_name_taken_is_stalled_and_says_what_to_do() -> None:
    message = "a Deployment named 'sis-feed-0123456789' already exists ... delete or rename it"
    by = _by_type(
        c.desired_conditions(c.Observation(1, claim=CLAIMED, credentials=GOOD, child_conflict=message))
    )
    assert by["Stalled"]["status"] == "True" and by["Stalled"]["reason"] == c.REASON_CHILD_NAME_TAKEN
    assert by["Ready"]["status"] == "False" and by["Ready"]["message"] == message
    assert by["RuntimeAvailable"]["status"] == "False"
    assert by["CollectionClaimed"]["status"] == "True"


def test_waiting_for_the_previous_runtime_is_in_progress() -> None:
    obs = c.Observation(1, claim=CLAIMED, credentials=GOOD, waiting_for="Pod intel/sis-old-1")
    by = _by_type(c.desired_conditions(obs))
    assert by["Reconciling"]["status"] == "True"
    assert by["Reconciling"]["reason"] == c.REASON_WAITING_FOR_PREVIOUS_RUNTIME
    assert "Pod intel/sis-old-1" in by["Ready"]["message"] and by["Ready"]["status"] == "False"
    assert by["Stalled"]["status"] == "False"


# -- what the runtime reports: Sekoia acknowledges nothing ---------------------------------------------

NOT_READY = RuntimeHealth(False, "PodNotReady", "0/1 ready", progressing=True, replicas=1)
REDIRECT = {
    "reason": "SekoiaURLRedirects",
    "message": "Sekoia add: POST http://sekoia.example/v2/... answered 301 redirecting to "
    "https://sekoia.example/api/v2/...; redirects are never followed: set the Sekoia URL to "
    "https://sekoia.example/api",
    "since": "2026-12-07T00:00:00Z",
}


def test_a_blocked_runtime_makes_the_resource_stalled_with_its_reason() -> None:
    block = blocked_from_progress({"valuesPushed": 0, "blocked": REDIRECT})
    assert block is not None
    for runtime in (READY, NOT_READY):  # whether or not the probe has failed yet
        obs = c.Observation(3, claim=CLAIMED, credentials=GOOD, runtime=runtime, blocked=block)
        conds = c.desired_conditions(obs)
        by = _by_type(conds)
        assert by["Stalled"]["status"] == "True" and by["Stalled"]["reason"] == "SekoiaURLRedirects"
        assert by["Ready"]["status"] == "False" and by["Ready"]["reason"] == "SekoiaURLRedirects"
        assert "set the Sekoia URL to https://sekoia.example/api" in by["Stalled"]["message"]
        assert "2026-12-07T00:00:00Z" in by["Stalled"]["message"]
        assert by["Reconciling"]["status"] == "False"
        assert _kstatus(conds, 3, 3) == "Failed"


def test_a_crash_loop_outranks_the_block_and_suspension_ignores_it() -> None:
    block = blocked_from_progress({"blocked": REDIRECT})
    crash = RuntimeHealth(False, "CrashLoopBackOff", "back-off", stalled=True)
    by = _by_type(
        c.desired_conditions(c.Observation(1, claim=CLAIMED, credentials=GOOD, runtime=crash, blocked=block))
    )
    assert by["Stalled"]["reason"] == "CrashLoopBackOff"
    suspended = RuntimeHealth(False, "Suspended", "scaled to zero")
    obs = c.Observation(1, claim=CLAIMED, credentials=GOOD, runtime=suspended, suspended=True, blocked=block)
    assert _by_type(c.desired_conditions(obs))["Stalled"]["status"] == "False"


def test_what_the_runtime_writes_is_checked() -> None:
    assert blocked_from_progress(None) is None
    assert blocked_from_progress({"blocked": None}) is None
    assert blocked_from_progress({"blocked": {"reason": ""}}) is None
    odd = blocked_from_progress({"blocked": {"reason": "Anything\nelse", "message": "a\nb" + "x" * 5000}})
    assert odd is not None and odd.reason == "RuntimeBlocked"
    assert "\n" not in odd.message and len(odd.message) <= 1024


def test_blocked_not_reflected_asks_for_a_refresh_only_when_status_and_report_disagree() -> None:
    def status(blocked: dict | None, stalled: tuple[str, str]) -> dict:
        return {
            "progress": {"blocked": blocked},
            "conditions": [{"type": "Stalled", "status": stalled[0], "reason": stalled[1]}],
        }

    assert c.blocked_not_reflected(status(REDIRECT, ("False", "AsExpected")))
    assert not c.blocked_not_reflected(status(REDIRECT, ("True", "SekoiaURLRedirects")))
    assert c.blocked_not_reflected(status(REDIRECT, ("True", "SekoiaUnexpectedAnswer")))
    assert not c.blocked_not_reflected(status(REDIRECT, ("True", "CrashLoopBackOff")))
    assert c.blocked_not_reflected(status(None, ("True", "SekoiaURLRedirects")))  # cleared
    assert not c.blocked_not_reflected(status(None, ("False", "AsExpected")))
    assert not c.blocked_not_reflected({})
