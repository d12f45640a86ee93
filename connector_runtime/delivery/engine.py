"""The delivery engine: stream events in, Sekoia requests out, positions committed only on ack.

One sequencer thread takes events in stream order, converts them, and either adds values to the
pending pool or schedules revocations. Push requests are formed as late as possible, when a
request slot is free, from the pool: the coarsening ladder (``coarsening.py``, ``pending.py``)
decides which values share a request and with which shared fields. Requests run on a small pool
of threads so that latency does not cap throughput (the shared rate limiter does). Order per
value is kept by chaining: every request waits for the previous request touching one of its
values; a value pushed again while pending takes the newer fields, and a revocation withdraws its
pending push. An event is complete (and may be committed) only when every request carrying its
values has been acknowledged.

Two kinds of refusal are told apart. One value refused (a search term too long, a value Sekoia
rejects) is logged with its indicator, counted, and the event completes: the feed goes on. An answer
that concerns every request (a redirect, an HTML page, a 2xx of the wrong shape, an unknown
collection) acknowledges nothing: the request is retried with back-off, the engine reports itself
blocked (`on_blocked`, which feeds /readyz and the resource status) and nothing is committed until
Sekoia answers properly again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from connector_runtime import metrics
from connector_runtime.config import DescriptionMode
from connector_runtime.conversion import Skipped, convert_indicator, convert_pattern
from connector_runtime.delivery.coarsening import BudgetMeter, Ladder, Level, coarsened_fields
from connector_runtime.delivery.grouping import SharedFieldsPolicy
from connector_runtime.delivery.pending import Pool, choose
from connector_runtime.delivery.positions import PositionTracker, Ticket
from connector_runtime.sekoia.client import SekoiaClient
from connector_runtime.sekoia.errors import SekoiaBlocked, SekoiaValueRejected, Stopped
from connector_runtime.sekoia.logthrottle import ThrottledLog
from connector_runtime.sekoia.models import NewValue, SharedFields
from connector_runtime.stream.events import Action, StreamEvent

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Progress:
    """Counts the outstanding actions of one event; completes its ticket at zero."""

    __slots__ = ("indicator", "lock", "remaining", "sealed", "ticket", "tracker")

    def __init__(self, ticket: Ticket, tracker: PositionTracker, indicator: str | None = None) -> None:
        self.ticket = ticket
        self.tracker = tracker
        self.indicator = indicator
        self.remaining = 0
        self.sealed = False
        self.lock = threading.Lock()

    def add(self) -> None:
        with self.lock:
            self.remaining += 1

    def finish(self) -> None:
        with self.lock:
            self.remaining -= 1
            complete = self.sealed and self.remaining == 0
        if complete:
            self.tracker.complete(self.ticket)

    def seal(self) -> None:
        with self.lock:
            self.sealed = True
            complete = self.remaining == 0
        if complete:
            self.tracker.complete(self.ticket)


@dataclass
class _OpenBatch:
    shared: SharedFields
    created: float = field(default_factory=time.monotonic)
    items: dict[str, NewValue] = field(default_factory=dict)
    owners: dict[str, list[_Progress]] = field(default_factory=dict)
    after: set[Future[None]] = field(default_factory=set)
    # Field name -> values sent with a shared field coarser than their own (counted on ack).
    coarsened: dict[str, list[str]] = field(default_factory=dict)


class IdCache:
    """Sekoia indicator ids learned from push answers (bounded LRU; search is the fallback)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, value: str, indicator_id: str) -> None:
        with self._lock:
            self._ids[value] = indicator_id
            self._ids.move_to_end(value)
            while len(self._ids) > self.capacity:
                self._ids.popitem(last=False)

    def take(self, value: str) -> str | None:
        with self._lock:
            return self._ids.pop(value, None)


@dataclass(frozen=True)
class EngineSettings:
    """Tuning of the engine (from the runtime settings)."""

    batch_size: int = 100
    # A value waits this long for company before a partial request may take it...
    linger_seconds: float = 1.0
    # ...and at most this long, whatever the backlog (see ``pending.choose``).
    max_linger_seconds: float = 30.0
    # Values pending at most (each costs ~1 KB with its event); past it, the stream waits for a
    # request slot, which takes the fullest group.
    max_open_values: int = 2_500
    max_in_flight: int = 4
    queue_size: int = 5000
    # The request budget (as the client's limiter enforces it), and below which share of it used
    # recently the budget counts as idle: partial requests then go at full fidelity.
    requests_per_second: float = 5.0
    idle_budget_share: float = 0.5


def report_skipped(logger: logging.Logger, indicator_id: str | None, skipped: Iterable[Skipped]) -> None:
    """Count and log what of an indicator will not reach Sekoia, with each reason (one line per
    indicator, the shape the soak and users grep for)."""
    entries = [{"comparison": s.comparison[:200], "reason": s.reason} for s in skipped]
    for entry in entries:
        metrics.VALUES_SKIPPED.labels(entry["reason"]).inc()
    if entries:
        logger.info("comparisons skipped", extra={"indicator": indicator_id, "skipped": entries})


class DeliveryEngine:
    """Owns the sequencer thread and the request pool; see the module docstring."""

    def __init__(
        self,
        client: SekoiaClient,
        tracker: PositionTracker,
        policy: SharedFieldsPolicy,
        settings: EngineSettings,
        on_fatal: Callable[[str], None],
        stop: threading.Event,
        on_blocked: Callable[[str, str], None] | None = None,
        on_unblocked: Callable[[], None] | None = None,
        send_ready: Callable[[], bool] | None = None,
    ) -> None:
        """`on_blocked(reason, message)` is called while Sekoia's answers acknowledge nothing (every
        retry), `on_unblocked()` once no request is blocked any more. `send_ready()` says whether
        the rate limiter would let a request go now; without it only the request slots limit."""
        self.send_ready = send_ready
        self.client = client
        self.on_blocked = on_blocked
        self.on_unblocked = on_unblocked
        self._blocked_requests = 0
        self._blocked_lock = threading.Lock()
        self._errors = ThrottledLog(log, interval=30.0)
        self.tracker = tracker
        self.policy = policy
        self.settings = settings
        self.on_fatal = on_fatal
        self.ids = IdCache()
        self._events: queue.Queue[tuple[StreamEvent, Ticket] | None] = queue.Queue(settings.queue_size)
        self._pool = ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="sekoia")
        # Bounds queued + running requests so that a Sekoia outage pushes back on the stream.
        self._slots = threading.BoundedSemaphore(settings.max_in_flight * 4)
        self.ladder = Ladder(
            policy.coarse_validity,
            Level.of(policy.max_coarsening),
            None if policy.description_mode is DescriptionMode.NONE else policy.stream_description,
        )
        self._pending = Pool(self.ladder, settings.batch_size)
        self._meter = BudgetMeter(settings.requests_per_second)
        self._last_op: dict[str, Future[None]] = {}
        self._inflight: set[Future[None]] = set()
        self._inflight_lock = threading.Lock()
        self._accepting = True
        self._flush_requested = threading.Event()
        self._slot_freed = threading.Event()
        # Shared with the Sekoia client: setting it interrupts retries and rate-limit waits.
        self._stopped = stop
        self._thread = threading.Thread(target=self._run, name="sequencer", daemon=True)

    # ------------------------------------------------------------------ intake
    def start(self) -> None:
        """Start the sequencer thread."""
        self._thread.start()

    def alive(self) -> bool:
        """True while the sequencer thread runs."""
        return self._thread.is_alive()

    def set_rate(self, requests_per_second: float) -> None:
        """The request budget changed (the client's limiter follows the same share)."""
        self._meter.set_rate(requests_per_second)

    def submit(self, event: StreamEvent, ticket: Ticket, keepalive: Callable[[], None] | None = None) -> bool:
        """Queue an event for delivery (stream order). Blocks while the queue is full, calling
        ``keepalive`` every few seconds (pycti kills a process whose callback looks stuck).
        Returns False when the engine no longer accepts events (shutting down)."""
        while self._accepting:
            try:
                self._events.put((event, ticket), timeout=2.0)
                return True
            except queue.Full:
                if keepalive:
                    keepalive()
        return False

    def backlog(self) -> int:
        """Events queued but not yet taken by the sequencer."""
        return self._events.qsize()

    # ----------------------------------------------------------------- shutdown
    def shutdown(self, grace_seconds: float) -> bool:
        """Stop intake, flush open batches and wait for requests until the grace period ends,
        then interrupt what still runs. Returns True when everything was acknowledged."""
        deadline = time.monotonic() + grace_seconds
        self._accepting = False
        self._events.put(None)  # wakes the sequencer; it flushes and exits
        self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._inflight_lock:
            pending = set(self._inflight)
        _, not_done = wait_futures(pending, timeout=max(0.0, deadline - time.monotonic()))
        self._stopped.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        return not not_done and not self._thread.is_alive()

    # ---------------------------------------------------------------- sequencer
    def _run(self) -> None:
        try:
            while True:
                timeout = self._next_deadline()
                try:
                    item = self._events.get(timeout=timeout)
                except queue.Empty:
                    item = ()  # type: ignore[assignment]
                if item is None:
                    self._flush_all()
                    return
                if item:
                    self._handle(*item)
                self._flush_due()
        except Stopped:
            return
        except Exception as exc:  # a bug must stop the runtime, never skip events silently
            log.exception("delivery engine failed")
            self.on_fatal(f"delivery engine failed: {type(exc).__name__}: {exc}")

    def _next_deadline(self) -> float | None:
        # Re-check often: whether partial requests may go depends on how busy the request slots are.
        return 0.05 if len(self._pending) else None

    def _handle(self, event: StreamEvent, ticket: Ticket) -> None:
        progress = _Progress(ticket, self.tracker, event.indicator_id)
        indicator = event.indicator or {}
        conversion = convert_indicator(indicator)
        report_skipped(log, event.indicator_id, conversion.skipped)
        if event.action is Action.PUSH:
            valid_from = indicator.get("valid_from")
            for value in conversion.values:
                shared = self.policy.for_value(indicator, value.type)
                item = NewValue(value.value, value.type, valid_from if isinstance(valid_from, str) else None)
                self._add_push(item, shared, progress)
            if event.previous_pattern:
                current = {v.value for v in conversion.values}
                dropped = [
                    v for v in convert_pattern(event.previous_pattern).values if v.value not in current
                ]
                for value in dropped:
                    self._schedule_revoke(value.value, progress)
        elif event.action is Action.REVOKE:
            revoked = [v.value for v in conversion.values]
            # A refused update may also have changed the pattern: its old values go too.
            if event.previous_pattern:
                revoked += [v.value for v in convert_pattern(event.previous_pattern).values]
            for stale in dict.fromkeys(revoked):
                self._schedule_revoke(stale, progress)
        metrics.EVENTS.labels(event.name, event.action.value).inc()
        progress.seal()

    # ------------------------------------------------------------------ batching
    def _add_push(self, item: NewValue, shared: SharedFields, progress: _Progress) -> None:
        previous = self._last_op.get(item.value)
        after = {previous} if previous is not None and not previous.done() else set()
        progress.add()
        self._pending.add(item, shared, progress, after, time.monotonic())

    def _flush_due(self) -> None:
        """Form and send requests while a slot is free (see ``pending.choose``). Past
        ``max_open_values`` pending, the stream waits for a slot, which then takes the fullest
        group (at the finest level that fills a request, else the largest at the top level)."""
        if not len(self._pending):
            return
        s = self.settings
        top = self.ladder.top
        while len(self._pending) > s.max_open_values:
            if self._busy():
                self._slot_freed.wait(0.05)
                self._slot_freed.clear()
                if self._stopped.is_set():
                    raise Stopped()
                continue
            full = self._pending.full_group()
            if full is not None:
                self._send(*full)
                continue
            key = self._pending.largest(top)
            if key is None:
                break
            self._send(top, key)
        while len(self._pending) and not self._busy() and self._rate_allows():
            now = time.monotonic()
            choice = choose(
                self._pending,
                now,
                s.linger_seconds,
                s.max_linger_seconds,
                self._meter.share(now),
                s.idle_budget_share,
            )
            if choice is None:
                return
            self._send(*choice)

    def _rate_allows(self) -> bool:
        # A request formed while the limiter holds others back would leave later with the values
        # it has now; waiting here lets the values that arrive meanwhile go in the same request.
        return self.send_ready is None or self.send_ready()

    def _busy(self) -> bool:
        with self._inflight_lock:
            return len(self._inflight) >= self.settings.max_in_flight

    def _flush_all(self) -> None:
        top = self.ladder.top
        while (oldest := self._pending.oldest()) is not None:
            self._send(top, oldest.keys[top])

    def _send(self, level: Level, key: Hashable) -> None:
        entries = self._pending.take(level, key, self.settings.batch_size)
        if not entries:
            return
        batch = _OpenBatch(self.ladder.request_fields([e.fields for e in entries], level))
        for entry in entries:
            value = entry.item.value
            batch.items[value] = entry.item
            batch.owners[value] = entry.owners
            batch.after.update(entry.after)
            for name in coarsened_fields(entry.fields, batch.shared):
                batch.coarsened.setdefault(name, []).append(value)
        metrics.PUSH_REQUESTS_BY_LEVEL.labels(level.name.lower()).inc()
        self._meter.note(time.monotonic())
        future = self._submit(self._push_batch, batch)
        for value in batch.items:
            self._last_op[value] = future
        self._prune_last_ops()

    def _prune_last_ops(self) -> None:
        # Only the sequencer thread touches _last_op, so pruning here cannot race a new entry.
        if len(self._last_op) > 4 * self.settings.max_open_values:
            self._last_op = {v: f for v, f in self._last_op.items() if not f.done()}

    def _schedule_revoke(self, value: str, progress: _Progress) -> None:
        # A pending push of the value is superseded: its events complete with the revocation.
        pending = self._pending.remove(value)
        owners = [progress, *(pending.owners if pending else ())]
        previous = self._last_op.get(value)
        progress.add()
        self._meter.note(time.monotonic())
        future = self._submit(self._revoke_value, value, previous, owners)
        self._last_op[value] = future
        self._prune_last_ops()

    def _submit(self, fn: Callable[..., None], *args: object) -> Future[None]:
        while not self._slots.acquire(timeout=1.0):
            if self._stopped.is_set():
                raise Stopped()
        try:
            if self._stopped.is_set():
                raise Stopped()
            future = self._pool.submit(self._guarded, fn, *args)
        except (Stopped, RuntimeError):
            # The grace period ended while this slot was being taken and the pool is shut down
            # (RuntimeError is how the pool says so): what was not sent stays uncommitted and comes
            # back on the next run. This is the end of a shutdown, not an engine failure.
            self._slots.release()
            raise Stopped() from None
        with self._inflight_lock:
            self._inflight.add(future)
        future.add_done_callback(self._release)
        return future

    def _release(self, future: Future[None]) -> None:
        with self._inflight_lock:
            self._inflight.discard(future)
        self._slots.release()
        self._slot_freed.set()

    def _guarded(self, fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except Stopped:
            raise
        except Exception as exc:
            log.exception("a Sekoia request failed unexpectedly")
            self.on_fatal(f"request failed unexpectedly: {type(exc).__name__}: {exc}")
            raise

    # ------------------------------------------------------------------ requests
    def _wait_for(self, futures: Iterable[Future[None] | None]) -> None:
        """Wait for earlier requests on the same values; a failed one means this must not run."""
        for future in futures:
            if future is None:
                continue
            while not self._stopped.is_set():
                try:
                    future.result(timeout=1.0)
                    break
                except TimeoutError:
                    continue
                except Exception:
                    raise Stopped() from None
            else:
                raise Stopped()

    def _until_acknowledged(self, call: Callable[[], T]) -> T:
        """Run a client call until Sekoia answers it properly; while its answers acknowledge nothing
        (`SekoiaBlocked`), report the engine blocked and retry with back-off. Never gives up: only
        a change of configuration (or of what sits in front of Sekoia) or a stop ends it."""
        attempt = 0
        entered = False
        try:
            while True:
                try:
                    return call()
                except SekoiaBlocked as exc:
                    if not entered:
                        entered = True
                        with self._blocked_lock:
                            self._blocked_requests += 1
                    delay = self.client.retry_policy.backoff(attempt)
                    attempt += 1
                    self._errors.error(
                        exc.reason,
                        "Sekoia acknowledged nothing, the stream position does not move (%s): %s; "
                        "retrying in %.1f s",
                        exc.reason,
                        exc,
                        delay,
                    )
                    if self.on_blocked is not None:
                        self.on_blocked(exc.reason, str(exc))
                    if self._stopped.wait(delay):
                        raise Stopped() from None
        finally:
            if entered:
                with self._blocked_lock:
                    self._blocked_requests -= 1
                    clear = self._blocked_requests == 0
                if clear and not self._stopped.is_set():
                    log.warning("Sekoia acknowledges requests again")
                    if self.on_unblocked is not None:
                        self.on_unblocked()

    def _push_batch(self, batch: _OpenBatch) -> None:
        self._wait_for(batch.after)
        started = time.monotonic()
        values = list(batch.items.values())
        outcome = self._until_acknowledged(lambda: self.client.add_values(values, batch.shared))
        metrics.API_LATENCY.labels("push_batch_total").observe(time.monotonic() - started)
        rejected = {r.value for r in outcome.rejected}
        for rejection in outcome.rejected:
            owners = batch.owners.get(rejection.value, [])
            log.warning(
                "value rejected by Sekoia",
                extra={
                    "indicators": sorted({p.indicator for p in owners if p.indicator}),
                    "value": rejection.value[:300],
                    "reason": rejection.reason[:300],
                },
            )
        accepted = 0
        for value in batch.items:
            if value in rejected:
                continue
            accepted += 1
            indicator_id = outcome.ids.get(value)
            if indicator_id:
                self.ids.remember(value, indicator_id)
        metrics.VALUES_PUSHED.labels(batch.shared.type or "unknown").inc(accepted)
        _count_coarsened(batch, rejected)
        for owners in batch.owners.values():
            for progress in owners:
                progress.finish()

    def _revoke_value(self, value: str, previous: Future[None] | None, owners: list[_Progress]) -> None:
        self._wait_for([previous])
        known = self.ids.take(value)
        ids: list[str] = []
        try:
            ids = [known] if known else self._until_acknowledged(partial(self.client.find_ids, value))
        except SekoiaValueRejected as exc:
            self._revocation_rejected(owners, value, exc)
        for sekoia_id in ids:
            try:
                if self._until_acknowledged(partial(self.client.revoke, sekoia_id)):
                    metrics.VALUES_REVOKED.inc()
            except SekoiaValueRejected as exc:
                self._revocation_rejected(owners, value, exc)
        for progress in owners:
            progress.finish()

    @staticmethod
    def _revocation_rejected(owners: list[_Progress], value: str, exc: SekoiaValueRejected) -> None:
        # Counted by the client. This one value stays as it is in Sekoia; the feed goes on. The
        # revoking event comes first among the owners.
        log.warning(
            "revocation rejected by Sekoia",
            extra={
                "indicator": owners[0].indicator if owners else None,
                "value": value[:300],
                "reason": str(exc)[:300],
            },
        )


def _count_coarsened(batch: _OpenBatch, rejected: set[str]) -> None:
    """Count the accepted values that went with a shared field coarser than their own."""
    for name, values in batch.coarsened.items():
        accepted = sum(1 for value in values if value not in rejected)
        if accepted:
            metrics.VALUES_COARSENED.labels(name).inc(accepted)
