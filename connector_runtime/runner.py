"""``connector-runtime run``: wires settings, pycti, the delivery engine, health and progress.

Lifecycle: health endpoints first (so probes answer during start-up), then the Sekoia client and a
background credentials check, then pycti (register + stream). SIGTERM — sent by Kubernetes, or by
pycti to its own process when its stream fails — stops intake, flushes what is batched, saves the
committed position with a ping and exits within the grace period: 0 when asked to stop, 1 when
something failed (the reason goes to the termination-message file).
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import logging
import os
import random
import signal
import sys
import threading
import time
from typing import Any

from connector_runtime import metrics, redaction
from connector_runtime.budget import BudgetFollower
from connector_runtime.config import RuntimeSettings
from connector_runtime.delivery.engine import DeliveryEngine, EngineSettings
from connector_runtime.delivery.grouping import SharedFieldsPolicy
from connector_runtime.guardrail import Guardrail
from connector_runtime.health import Health, serve
from connector_runtime.logs import setup_logging
from connector_runtime.progress import StatusReporter, progress_snapshot, update_position_metrics
from connector_runtime.resync import ResyncRecord
from connector_runtime.resync import ended as resync_ended
from connector_runtime.resync import iso as resync_iso
from connector_runtime.resync import plan as plan_resync
from connector_runtime.sekoia.client import SekoiaClient
from connector_runtime.sekoia.errors import (
    REASON_KEY_REJECTED,
    REASON_PERMISSION_MISSING,
    SekoiaAuthError,
    SekoiaBlocked,
    SekoiaError,
    Stopped,
)
from connector_runtime.sekoia.ratelimit import RateLimiter
from connector_runtime.sekoia.retry import RetryPolicy
from connector_runtime.stream.listener import StateBridge, StreamCallback, install_excepthook, pycti_config
from connector_runtime.stream.probe import explain_unreachable
from connector_runtime.termination import write_termination_message

log = logging.getLogger("connector_runtime")


class Runtime:
    """One running connector; :meth:`run` blocks until shutdown and returns the exit code."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.health = Health()
        self.shutdown_requested = threading.Event()
        self.stop = threading.Event()
        self.resync: ResyncRecord | None = None
        self._secrets = [
            settings.opencti_token.get_secret_value(),
            settings.sekoia_api_key.get_secret_value(),
        ]

    # ------------------------------------------------------------------ pieces
    def _fatal(self, reason: str) -> None:
        self.health.fatal(reason)
        self.shutdown_requested.set()

    def _build_client(self) -> SekoiaClient:
        s = self.settings
        # burst=1: requests evenly spaced, so no one-second window sees more than the budget.
        self.limiter = RateLimiter(s.requests_per_second, burst=1, idle_jitter=random.random)
        return SekoiaClient(
            s.sekoia_url,
            s.sekoia_api_key.get_secret_value(),
            s.collection_id,
            limiter=self.limiter,
            retry_policy=RetryPolicy(cap=s.max_backoff_seconds, auth_interval=s.auth_retry_seconds),
            stop=self.stop,
            timeout=s.request_timeout_seconds,
            on_auth_state=self._auth_state,
            verify=s.sekoia_verify,
        )

    def _auth_state(self, ok: bool, reason: str) -> None:
        self.health.sekoia_state(ok, reason)
        if ok:
            self.health.unblock("auth")
        else:
            forbidden = "permission" in reason
            self.health.block("auth", REASON_PERMISSION_MISSING if forbidden else REASON_KEY_REJECTED, reason)

    def _check_sekoia_until_ok(self, client: SekoiaClient) -> None:
        """Readiness needs one positive answer from Sekoia; keep asking slowly until it comes."""
        delay = 2.0
        while not self.stop.is_set():
            try:
                client.check_collection()
                self.health.sekoia_state(True)
                self.health.unblock("preflight")
                return
            except SekoiaAuthError as exc:
                why = f"Sekoia refused the API key ({exc.status})"
                self.health.sekoia_state(False, why)
                self.health.block(
                    "preflight", REASON_PERMISSION_MISSING if exc.forbidden else REASON_KEY_REJECTED, why
                )
            except SekoiaBlocked as exc:
                # A redirect, an HTML page or an unknown collection: only a change of settings helps.
                self.health.sekoia_state(False, f"{exc.reason}: {exc}")
                self.health.block("preflight", exc.reason, str(exc))
                log.error("Sekoia check failed", extra={"reason": str(exc)})
                self.stop.wait(delay)
                delay = min(delay * 2, self.settings.auth_retry_seconds)
                continue
            except (SekoiaError, Stopped) as exc:
                self.health.sekoia_state(False, f"Sekoia unreachable: {exc}")
            log.warning("Sekoia check failed", extra={"reason": self.health.readiness()[1]})
            self.stop.wait(delay)
            delay = min(delay * 2, self.settings.auth_retry_seconds)

    def _create_helper(self) -> Any:
        # pycti is imported late: it is heavy, and the health endpoint should answer first.
        from pycti import OpenCTIConnectorHelper

        # pycti lets its environment variable win over the configuration it is given, and the
        # seed's "false" default would then apply: it must see exactly what the settings decided.
        verify = self.settings.opencti_verify
        os.environ["OPENCTI_SSL_VERIFY"] = verify if isinstance(verify, str) else str(verify).lower()
        return OpenCTIConnectorHelper(pycti_config(self.settings))

    # --------------------------------------------------------------------- run
    def run(self) -> int:
        """Run until SIGTERM/SIGINT or a fatal problem; return the process exit code."""
        s = self.settings
        # Sekoia's firewall judges when requests arrive. With the sequencer converting events, an
        # I/O thread waits up to the switch interval for the GIL at every socket call; a shorter
        # interval keeps request departures close to the rate limiter's schedule.
        sys.setswitchinterval(0.0005)
        _limit_malloc_arenas()
        setup_logging(s.log_level, self._secrets)
        signal.signal(signal.SIGTERM, lambda *_: self.shutdown_requested.set())
        signal.signal(signal.SIGINT, lambda *_: self.shutdown_requested.set())
        if s.http_port:
            serve(self.health, s.http_port)
        client = self._build_client()
        threading.Thread(
            target=self._check_sekoia_until_ok, args=(client,), name="sekoia-check", daemon=True
        ).start()

        try:
            helper = self._create_helper()
        except Exception as exc:
            # pycti turns a TLS refusal into "API is not reachable": ask once more to say why.
            why = explain_unreachable(s.opencti_url, s.opencti_verify) or _one_line(exc)
            reason = f"cannot register with OpenCTI at {s.opencti_url}: {why}"
            return self._exit(1, reason)
        # Everything imported so far lives as long as the process: keep the cyclic collector from
        # rescanning it. Its full passes hold the GIL long enough to delay request departures.
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)
        # pycti replaced the logging set-up and the excepthook; take both back.
        setup_logging(s.log_level, self._secrets)
        install_excepthook(self._fatal)

        bridge = StateBridge(helper, on_position=self.health.stream_seen)
        self._begin_resync(bridge)
        policy = SharedFieldsPolicy(
            s.description_mode,
            s.validity_granularity,
            s.opencti_url,
            s.live_stream_id,
            s.connector_name,
            s.max_coarsening,
            s.coarse_validity,
        )
        engine = DeliveryEngine(
            client,
            bridge.tracker,
            policy,
            EngineSettings(
                batch_size=s.batch_size,
                linger_seconds=s.batch_linger_seconds,
                max_linger_seconds=s.batch_max_linger_seconds,
                max_in_flight=s.max_in_flight,
                queue_size=s.queue_size,
                requests_per_second=s.requests_per_second,
                idle_budget_share=s.idle_budget_share,
            ),
            on_fatal=self._fatal,
            stop=self.stop,
            on_blocked=lambda reason, message: self.health.block("delivery", reason, message),
            on_unblocked=lambda: self.health.unblock("delivery"),
            send_ready=self.limiter.ready,
        )
        self.health.liveness_checks.append(("delivery engine", engine.alive))
        reporter = None
        if s.status_resource:
            # The operator's share of the Sekoia host's budget arrives in the answers to the status
            # reports; the first report goes before any request so that a new runtime starts at its
            # share rather than at its ceiling.
            budget = BudgetFollower(s.requests_per_second, [self.limiter.set_rate, engine.set_rate])
            reporter = StatusReporter(
                s.status_resource,
                lambda: self._snapshot(bridge),
                s.status_interval_seconds,
                on_status=budget.observe,
            )
            reporter.report_once()
        engine.start()
        if reporter:
            reporter.start()
        guardrail = Guardrail.with_lookup(
            s.marking_policy, lambda stix_id: helper.api.marking_definition.read(id=stix_id)
        )
        # While a resync replays current versions as `create` events, a refused indicator may be
        # one an earlier, looser policy pushed: take it back rather than only skip it.
        guardrail.revoke_refused_creates = self._resync_running()
        helper.listen_stream(StreamCallback(bridge.tracker, engine, self.health, guardrail))
        log.info(
            "runtime started",
            extra={
                "stream": s.live_stream_id,
                "collection": s.collection_id,
                "sekoia": s.sekoia_url,
                "resume_from": bridge.tracker.committed,
                "markings": guardrail.policy.describe(),
            },
        )

        while not self.shutdown_requested.wait(s.state_save_interval_seconds):
            self._check_resync(bridge, guardrail)
            self._save(bridge)
            update_position_metrics(bridge.tracker)

        began = time.monotonic()
        log.info("shutting down: flushing batched values", extra={"pending": bridge.tracker.pending_count()})
        clean = engine.shutdown(s.shutdown_grace_seconds)
        self._save(bridge)
        if reporter:
            reporter.stop()
        log.info(
            "shutdown complete",
            extra={
                "committed": bridge.tracker.committed,
                "all_acknowledged": clean,
                "seconds": round(time.monotonic() - began, 2),
            },
        )
        fatal = self.health.fatal_reason
        return self._exit(1 if fatal else 0, fatal)

    def _snapshot(self, bridge: StateBridge) -> dict[str, Any]:
        block = self.health.blocked()
        snapshot = progress_snapshot(bridge.tracker, blocked=block.as_status() if block else None)
        if self.resync is not None:
            snapshot["resync"] = self.resync.status(bridge.tracker.committed)
        return snapshot

    # ------------------------------------------------------------------ resync
    def _begin_resync(self, bridge: StateBridge) -> None:
        """Start the requested resync unless its token was already honoured (see resync.py)."""
        s = self.settings
        self.resync = ResyncRecord.from_state(bridge.initial_state.get("resync"))
        new = plan_resync(s.resync_token, s.resync_from, bridge.initial_state, time.time())
        if new is not None:
            bridge.begin_resync(new.start_id, new.until, new.as_state())
            self.resync = new
            log.info(
                "resync requested: replaying the stream",
                extra={"token": new.token, "from": new.from_, "until": new.until},
            )
        metrics.RESYNC_IN_PROGRESS.set(1 if self._resync_running() else 0)

    def _resync_running(self) -> bool:
        return self.resync is not None and self.resync.ended_at is None

    def _check_resync(self, bridge: StateBridge, guardrail: Guardrail) -> None:
        record = self.resync
        if record is None or record.ended_at is not None:
            return
        if not resync_ended(record, bridge.tracker.committed):
            return
        self.resync = dataclasses.replace(record, ended_at=resync_iso(time.time()))
        bridge.record_resync(self.resync.as_state())
        guardrail.revoke_refused_creates = False
        metrics.RESYNC_IN_PROGRESS.set(0)
        log.info("resync completed", extra={"token": record.token, "position": bridge.tracker.committed})

    def _save(self, bridge: StateBridge) -> None:
        try:
            bridge.save_if_changed()
        except Exception as exc:
            log.warning("could not save the stream position", extra={"reason": _one_line(exc)})

    def _exit(self, code: int, reason: str | None) -> int:
        self.stop.set()
        if reason:
            log.error("runtime stopped", extra={"reason": reason})
            write_termination_message(self.settings.termination_log, reason)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        return code


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread its own malloc arena; with a dozen threads that fragments into tens
    of MB of resident memory for nothing. Same effect as MALLOC_ARENA_MAX, set from inside."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redaction.one_line(f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": "))


def run(settings: RuntimeSettings) -> None:
    """Run and leave the process with the runtime's exit code.

    ``os._exit`` because pycti leaves non-daemon threads (stream, watchdog) that would otherwise
    keep the interpreter alive after a clean shutdown.
    """
    code = Runtime(settings).run()
    os._exit(code)
