"""Sekoia IOC collection client: add, search and revoke with the retry rules the runtime relies on.

Delivery guarantee: apart from `check_collection` (one attempt, for preflight), a call returns only
once Sekoia gave a definite answer. 429, 5xx, timeouts, dropped connections and 401/403 are retried
without limit until the stop event is set (then `Stopped` is raised); values Sekoia refuses are
reported one by one as `Rejected` (add) or `SekoiaValueRejected` (search, revoke), never dropped.

An answer is an acknowledgement only when Sekoia itself gave it: redirects are never followed (a
POST turned into a GET elsewhere would look like success), and a 2xx must carry the JSON shape the
endpoint documents (see `protocol`). Anything else raises a `SekoiaBlocked` the caller keeps
retrying without committing.
"""

from __future__ import annotations

import json as _json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote

import requests

from .. import redaction
from ..metrics import API_LATENCY, API_REQUESTS, API_RETRIES, BATCH_SIZE, VALUES_REJECTED
from ..tls import describe
from . import protocol
from .errors import (
    SekoiaAuthError,
    SekoiaNotFound,
    SekoiaRedirected,
    SekoiaUnavailable,
    SekoiaUnexpectedAnswer,
    SekoiaValueRejected,
    Stopped,
)
from .logthrottle import ThrottledLog
from .models import AddOutcome, NewValue, Rejected, SharedFields
from .ratelimit import RateLimiter
from .retry import RetryPolicy

logger = logging.getLogger(__name__)

# Failures after which the request may or may not have reached Sekoia: all are safe to retry
# because adding is idempotent (Sekoia merges a value it already has) and revoking twice is harmless.
_TRANSIENT = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

PathFor = Callable[[str], str]


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any  # the decoded JSON, None when there was no body or it was not JSON
    retry_after: str | None
    method: str = "GET"
    url: str = ""  # without query string: fit for a message
    location: str | None = None
    content_type: str = ""
    empty: bool = True
    is_json: bool = False


class SekoiaClient:
    """Client of one Sekoia IOC collection. Thread-safe; share the `limiter` between clients of one key."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        collection_id: str,
        *,
        limiter: RateLimiter,
        retry_policy: RetryPolicy,
        stop: threading.Event,
        timeout: float = 30,
        session: requests.Session | None = None,
        on_auth_state: Callable[[bool, str], None] | None = None,
        verify: bool | str = True,
    ) -> None:
        """Raise ValueError for an unusable URL, collection id or an empty key.

        `verify` is the TLS setting of `requests`: True, False or a CA bundle path.
        """
        if not api_key or not api_key.strip():
            raise ValueError("the Sekoia API key is empty")
        self.base_url = protocol.normalize_base_url(base_url)
        self.collection_uuid = protocol.normalize_collection_id(collection_id)
        self._key = api_key.strip()
        self._limiter = limiter
        self._policy = retry_policy
        self._stop = stop
        self._timeout = timeout
        self._session = session or requests.Session()
        self._on_auth_state = on_auth_state
        # Passed with every request: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        self._verify = verify
        self._lock = threading.Lock()
        self._form = protocol.PATH_ID_FORMS[0]
        self._auth_ok: bool | None = None
        self._auth_reason = ""
        self._throttled = ThrottledLog(logger)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The back-off policy, for callers that retry a blocked request themselves."""
        return self._policy

    # -- public operations ---------------------------------------------------------------------------
    def check_collection(self) -> dict[str, Any]:
        """One attempt to read the collection (preflight); return its description.

        Raises SekoiaAuthError (401/403, see `.status`), SekoiaNotFound, SekoiaRedirected (3xx),
        SekoiaUnexpectedAnswer (a page or body that is not Sekoia's), SekoiaUnavailable (no answer,
        429, 5xx) or Stopped.
        """
        tried: set[str] = set()
        while True:
            self._limiter.acquire(self._stop)
            form = self._form
            tried.add(form)
            try:
                answer = self._send("check_collection", "GET", protocol.collection_path, form)
            except _TRANSIENT as exc:
                raise SekoiaUnavailable(
                    f"cannot reach Sekoia at {protocol.safe_url(self.base_url)}: {describe(exc)}"
                ) from None
            if protocol.is_collection_not_found(answer.status, answer.body) and self._switch_form(tried):
                continue
            break
        status, body = answer.status, answer.body
        self._raise_if_redirect(answer, "collection check")
        if 200 <= status < 300:
            self._require_shape(answer, "collection check", protocol.collection_answer_problem(body))
            return dict(body)
        message = self._error_message(answer)
        if status == 401:
            raise SekoiaAuthError(f"Sekoia rejected the API key (401): {message}", status)
        if status == 403:
            raise SekoiaAuthError(f"the Sekoia API key lacks a permission (403): {message}", status)
        if status == 429 or status >= 500:
            raise SekoiaUnavailable(f"Sekoia is unavailable ({status}): {message}", status)
        self._raise_for(answer, "collection check")

    def add_values(self, values: Sequence[NewValue], shared: SharedFields) -> AddOutcome:
        """Add up to 100 values; return their ids and the values Sekoia refused, with its reasons.

        Values are sent grouped by type (one request per type). A 400/422 answer is narrowed down by
        splitting the batch in halves until each refused value is alone, so one bad value does not
        cost the others. Raises ValueError for more than 100 values or a type that contradicts
        `shared.type`, a SekoiaBlocked (collection gone, redirect, unexpected answer) when nothing
        can be acknowledged, Stopped when stopped.
        """
        if len(values) > protocol.MAX_VALUES_PER_ADD:
            raise ValueError(f"at most {protocol.MAX_VALUES_PER_ADD} values per add, got {len(values)}")
        groups: dict[str, list[NewValue]] = {}
        for item in values:
            if shared.type is not None and item.type != shared.type:
                raise ValueError(f"value type {item.type!r} differs from the batch type {shared.type!r}")
            groups.setdefault(item.type, []).append(item)
        outcome = AddOutcome()
        for sekoia_type, group in groups.items():
            self._add_batch(group, shared, sekoia_type, outcome)
        return outcome

    def find_ids(self, value: str, include_revoked: bool = False) -> list[str]:
        """Ids of the indicators holding exactly `value` (the term search may be fuzzy), all pages.

        Raises SekoiaValueRejected when the term itself is refused (e.g. 414), SekoiaBlocked when
        the answer acknowledges nothing."""
        ids: list[str] = []
        offset = 0
        while True:
            params = protocol.search_params(value, offset)
            answer = self._request("search", "GET", protocol.search_path, params=params)
            if not 200 <= answer.status < 300:
                self._raise_for(answer, "search", value_request=True)
            self._require_shape(answer, "search", protocol.search_answer_problem(answer.body))
            hits, has_more = protocol.parse_search_page(answer.body)
            for hit in hits:
                wanted = protocol.values_match(value, hit.value) and (include_revoked or not hit.revoked)
                if wanted and hit.id not in ids:
                    ids.append(hit.id)
            if not has_more or not hits:
                return ids
            offset += len(hits)

    def revoke(self, indicator_id: str) -> bool:
        """Revoke one indicator. True when revoked now, False when Sekoia says it does not know it
        (already gone). Raises SekoiaValueRejected or SekoiaBlocked as `find_ids` does."""
        quoted = quote(indicator_id, safe="")
        answer = self._request("revoke", "DELETE", lambda cid: protocol.revoke_path(cid, quoted))
        if 200 <= answer.status < 300:
            problem = protocol.revoke_answer_problem(answer.body, answer.empty)
            self._require_shape(answer, "revoke", problem)
            return True
        gone = answer.status == 404 and protocol.is_error_body(answer.body)
        if gone and not protocol.is_collection_not_found(answer.status, answer.body):
            return False  # Sekoia's own "indicator not found": already revoked or never there
        self._raise_for(answer, "revoke", value_request=True)

    # -- add -----------------------------------------------------------------------------------------
    def _add_batch(
        self, batch: Sequence[NewValue], shared: SharedFields, sekoia_type: str, outcome: AddOutcome
    ) -> None:
        BATCH_SIZE.observe(len(batch))
        body = protocol.build_add_body(batch, shared, sekoia_type)
        answer = self._request("add", "POST", protocol.add_path, json=body)
        if answer.status in protocol.ADD_OK_STATUSES:
            self._require_shape(answer, "add", protocol.add_answer_problem(answer.body))
            ids = protocol.parse_add_answer(answer.body, [item.value for item in batch])
            outcome.ids.update(ids)
            outcome.accepted_without_id.extend(i.value for i in batch if i.value not in ids)
            return
        if answer.status not in protocol.VALIDATION_STATUSES or not protocol.is_error_body(answer.body):
            self._raise_for(answer, "add")
        message, code = protocol.parse_error(answer.body, answer.status)
        if len(batch) == 1:
            reason = self._redact(message)
            outcome.rejected.append(Rejected(batch[0].value, reason))
            VALUES_REJECTED.labels(protocol.rejection_label(answer.status, code)).inc()
            logger.info("Sekoia refused a %s value: %s", sekoia_type, reason)
            return
        middle = len(batch) // 2
        self._add_batch(batch[:middle], shared, sekoia_type, outcome)
        self._add_batch(batch[middle:], shared, sekoia_type, outcome)

    # -- request machinery ---------------------------------------------------------------------------
    def _request(
        self,
        operation: str,
        method: str,
        path_for: PathFor,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> _Answer:
        """Send until Sekoia gives a definite answer (2xx, 3xx or a 4xx other than 401/403/429).

        A 3xx raises `SekoiaRedirected` at once: it says nothing about the key or the value."""
        attempt = 0
        tried: set[str] = set()
        # Encoded before taking a rate token, so the request leaves right after the token is granted.
        data = None if json is None else _json.dumps(json, separators=(",", ":")).encode()
        while True:
            self._limiter.acquire(self._stop)
            # Read once: another thread may switch the form meanwhile, and `tried` must name the
            # form this request really used, or two threads could flip it back and forth for ever.
            form = self._form
            tried.add(form)
            try:
                answer = self._send(operation, method, path_for, form, data=data, params=params)
            except _TRANSIENT as exc:
                cause = "timeout" if isinstance(exc, requests.Timeout) else "connection"
                self._retry_after_wait(operation, cause, self._policy.backoff(attempt), type(exc).__name__)
                attempt += 1
                continue
            status = answer.status
            if status == 429:
                delay = self._policy.rate_limited(answer.retry_after, attempt)
                # Every thread sharing the limiter waits, not only this one.
                self._limiter.pause_until(time.monotonic() + delay)
                self._limiter.throttled()
                self._note_retry(operation, "rate_limited", delay, "429 Too Many Requests")
                attempt += 1
                continue
            if status >= 500:
                self._retry_after_wait(
                    operation, "server_error", self._policy.backoff(attempt), f"HTTP {status}"
                )
                attempt += 1
                continue
            self._raise_if_redirect(answer, operation)
            if status in (401, 403):
                reason = self._auth_reason_of(answer)
                self._set_auth(False, reason)
                self._retry_after_wait(operation, "auth", self._policy.auth_failed(), reason)
                continue
            self._set_auth(True, "")
            self._limiter.succeeded()
            if protocol.is_collection_not_found(status, answer.body) and self._switch_form(tried):
                continue
            return answer

    def _send(
        self,
        operation: str,
        method: str,
        path_for: PathFor,
        form: str,
        *,
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> _Answer:
        """One HTTP exchange with the collection id in `form`, with metrics. Transport errors propagate."""
        url = self.base_url + path_for(protocol.path_id(self.collection_uuid, form))
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        started = time.monotonic()
        try:
            # Never follow a redirect: requests would resend a POST as a GET to wherever it points
            # (and drop nothing of the key), then hand back that other answer as if it were ours.
            response = self._session.request(
                method,
                url,
                data=data,
                params=params,
                headers=headers,
                timeout=self._timeout,
                verify=self._verify,
                allow_redirects=False,
            )
            body: Any = None
            is_json = False
            if response.content:
                try:
                    body = response.json()
                    is_json = True
                except ValueError:
                    body = None  # a non-JSON body (proxy page, truncated answer) acknowledges nothing
        except _TRANSIENT:
            API_REQUESTS.labels(operation, "error").inc()
            raise
        finally:
            API_LATENCY.labels(operation).observe(time.monotonic() - started)
        API_REQUESTS.labels(operation, str(response.status_code)).inc()
        return _Answer(
            response.status_code,
            body,
            response.headers.get("Retry-After"),
            method=method,
            url=protocol.safe_url(url),
            location=response.headers.get("Location"),
            content_type=response.headers.get("Content-Type", "").split(";", 1)[0].strip(),
            empty=not response.content,
            is_json=is_json,
        )

    def _retry_after_wait(self, operation: str, cause: str, delay: float, detail: str) -> None:
        self._note_retry(operation, cause, delay, detail)
        if self._stop.wait(delay):
            raise Stopped(f"stopped while retrying Sekoia {operation}")

    def _note_retry(self, operation: str, cause: str, delay: float, detail: str) -> None:
        API_RETRIES.labels(cause).inc()
        self._throttled.warning(
            f"{operation}:{cause}",
            "Sekoia %s failed (%s); retrying in %.1f s",
            operation,
            self._redact(detail),
            delay,
        )

    def _switch_form(self, tried: set[str]) -> bool:
        """After 'collection not found', try the other collection id form in the path (see protocol)."""
        with self._lock:
            for form in protocol.PATH_ID_FORMS:
                if form not in tried:
                    logger.info(
                        "Sekoia does not know the collection as %s id; trying the %s form", self._form, form
                    )
                    self._form = form
                    return True
        return False

    # -- auth state ----------------------------------------------------------------------------------
    def _auth_reason_of(self, answer: _Answer) -> str:
        what = "API key rejected" if answer.status == 401 else "API key lacks a permission"
        return f"{what} ({answer.status}): {self._error_message(answer)}"

    def _set_auth(self, ok: bool, reason: str) -> None:
        """Report auth changes (not every retry) to `on_auth_state`."""
        with self._lock:
            if self._auth_ok is ok and self._auth_reason == reason:
                return
            was_unknown_ok = self._auth_ok is None and ok
            self._auth_ok, self._auth_reason = ok, reason
        if not ok:
            logger.warning("Sekoia authentication failed: %s", reason)
        elif not was_unknown_ok:
            logger.warning("Sekoia accepts the API key again")
        if was_unknown_ok or self._on_auth_state is None:
            return  # the first success is not news: only a recovery is
        try:
            self._on_auth_state(ok, reason)
        except Exception:
            logger.exception("on_auth_state callback failed")

    # -- errors --------------------------------------------------------------------------------------
    def _error_message(self, answer: _Answer) -> str:
        message, code = protocol.parse_error(answer.body, answer.status)
        text = f"{message} [{code}]" if code and code != message else message
        return self._redact(text)

    def _redact(self, text: str) -> str:
        # The server could echo the header back; never let the key reach a log line or an exception.
        return redaction.mask(text, extra=[self._key])

    def _raise_for(self, answer: _Answer, operation: str, *, value_request: bool = False) -> NoReturn:
        """Raise the error an answer that is not an acknowledgement deserves.

        `value_request`: the request carries one value (search term, indicator id), so a refusal of
        that value only rejects the value. Everything else concerns every request and blocks.
        """
        status = answer.status
        message = self._error_message(answer)
        if protocol.is_collection_not_found(status, answer.body):
            raise SekoiaNotFound(
                f"Sekoia {operation}: IOC collection {self.collection_uuid} not found at "
                f"{protocol.safe_url(self.base_url)} (404): {message}",
                404,
            )
        if value_request and protocol.is_value_rejection(status, answer.body):
            code = protocol.parse_error(answer.body, status)[1]
            label = protocol.rejection_label(status, code)
            VALUES_REJECTED.labels(label).inc()
            raise SekoiaValueRejected(f"Sekoia refused {operation} ({status}): {message}", status, label)
        hint = ""
        if status in (404, 405):
            hint = "; is the Sekoia URL the API root (e.g. https://api.sekoia.io or https://app.<region>.sekoia.io/api)?"
        raise SekoiaUnexpectedAnswer(
            f"Sekoia {operation}: {answer.method} {answer.url} answered {status} "
            f"{self._describe_body(answer)}: {message}{hint}",
            status,
        )

    def _raise_if_redirect(self, answer: _Answer, operation: str) -> None:
        if not 300 <= answer.status < 400:
            return
        location = answer.location or ""
        shown = protocol.safe_url(location) if location else "nowhere (no Location header)"
        suggestion = protocol.suggested_base_url(answer.url, location) if location else None
        advice = (
            f"set the Sekoia URL to {suggestion}"
            if suggestion
            else "set the Sekoia URL to the API root itself"
        )
        raise SekoiaRedirected(
            f"Sekoia {operation}: {answer.method} {answer.url} answered {answer.status} redirecting to "
            f"{shown}; redirects are never followed: {advice}",
            answer.status,
            shown,
            suggestion,
        )

    def _require_shape(self, answer: _Answer, operation: str, problem: str | None) -> None:
        """A 2xx counts only when its body has the endpoint's shape."""
        if problem is None:
            return
        raise SekoiaUnexpectedAnswer(
            f"Sekoia {operation}: {answer.method} {answer.url} answered {answer.status} "
            f"{self._describe_body(answer)}, not Sekoia's JSON ({problem}); a proxy or login page "
            "in front of the API, or the wrong URL?",
            answer.status,
        )

    @staticmethod
    def _describe_body(answer: _Answer) -> str:
        if answer.empty:
            return "with no body"
        if not answer.is_json:
            return f"with a {answer.content_type or 'non-JSON'} body"
        return "with a JSON body"
