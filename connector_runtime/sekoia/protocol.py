"""Every fact and GUESS about the Sekoia.io IOC collections API, in one place.

Facts come from Sekoia's public documentation and integrations (see
shared/reference/sekoia-ioc-collections-api.md). Anything marked GUESS is the best evidence, not the
spec: change it here and nowhere else.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from .models import NewValue, SharedFields

DEFAULT_BASE_URL = "https://api.sekoia.io"
API_PREFIX = "/v2/inthreat/ioc-collections"
COLLECTION_PREFIX = "ioc-collection--"

# Type names of `default_fields.type` and of the text import's `format`.
IPV4 = "ipv4-addr.value"
IPV6 = "ipv6-addr.value"
DOMAIN = "domain-name.value"
URL = "url.value"
EMAIL = "email-addr.value"
FILE_HASHES = "file.hashes"  # MD5, SHA-1, SHA-256 and SHA-512 alike: Sekoia tells them apart by length
TYPES: frozenset[str] = frozenset({IPV4, IPV6, DOMAIN, URL, EMAIL, FILE_HASHES})

MAX_VALUES_PER_ADD = 100  # fact: the structured endpoint takes 1 to 100 values
SEARCH_PAGE_SIZE = 100  # fact: `limit` is at most 100
MAX_DESCRIPTION = 500  # fact for the text import; assumed to hold for default_fields too
DEFAULT_RATE = 5.0  # fact: Sekoia's firewall guidance is at most 5 requests per second

# GUESS: validation errors are 400 or 422 with {"message", "code"}; treat both alike.
VALIDATION_STATUSES = frozenset({400, 422})
# GUESS: structured add may answer 202 (and may one day be asynchronous, without items).
ADD_OK_STATUSES = frozenset({200, 201, 202})
# Fact: an unknown collection answers 404 with this code.
COLLECTION_NOT_FOUND_CODE = "INTHREAT2500"
COLLECTION_NOT_FOUND_MESSAGE = "ioc collection not found"
# GUESS: the path takes the `ioc-collection--<uuid>` form (what the API itself calls the collection);
# the seed connector sends the bare uuid. The client starts with the first form and switches to the
# next one when the API says the collection does not exist.
PATH_ID_FORMS: tuple[str, ...] = ("prefixed", "uuid")
# GUESS (from a recent public integration): sending `default_fields.type` makes Sekoia skip type detection.
SEND_DEFAULT_TYPE = True

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# -- configuration values -----------------------------------------------------------------------------


def normalize_base_url(url: str | None) -> str:
    """Return the API root (no trailing slash) from what a user may configure.

    Accepts a bare host (`https://api.sekoia.io`), a regional root (`https://app.<region>.sekoia.io/api`),
    or the seed connector's prefix (`.../v2/inthreat/ioc-collections`), with or without trailing slashes.
    An empty value gives the default region. Raises ValueError for something that is not an http(s) URL.
    """
    text = (url or "").strip() or DEFAULT_BASE_URL
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"Sekoia URL must be an http(s) URL such as {DEFAULT_BASE_URL}")
    path = parts.path.rstrip("/")
    # The seed's setting is the collections prefix; anything from the prefix on is not part of the root.
    index = path.lower().find(API_PREFIX)
    if index >= 0:
        path = path[:index]
    return urlunsplit((parts.scheme.lower(), parts.netloc, path.rstrip("/"), "", ""))


def normalize_collection_id(text: str) -> str:
    """Return the bare lowercase uuid of a collection given as `<uuid>` or `ioc-collection--<uuid>`.

    Raises ValueError with a one-line message otherwise.
    """
    raw = (text or "").strip().lower()
    if raw.startswith(COLLECTION_PREFIX):
        raw = raw[len(COLLECTION_PREFIX) :]
    if not _UUID_RE.match(raw):
        shown = repr((text or "").strip()[:80])  # repr keeps the message on one line
        raise ValueError(
            f"{shown} is not a Sekoia collection id: expected a UUID or 'ioc-collection--<UUID>'"
        )
    return str(uuid.UUID(raw))


def path_id(collection_uuid: str, form: str) -> str:
    """The collection id as written in a path, in the given form ("prefixed" or "uuid")."""
    return COLLECTION_PREFIX + collection_uuid if form == "prefixed" else collection_uuid


# -- paths --------------------------------------------------------------------------------------------


def collection_path(path_cid: str) -> str:
    """GET: the collection (existence and permission check)."""
    return f"{API_PREFIX}/{path_cid}"


def add_path(path_cid: str) -> str:
    """POST: structured add of 1 to 100 values."""
    return f"{API_PREFIX}/{path_cid}/indicators"


def search_path(path_cid: str) -> str:
    """GET with term/limit/offset: search the collection's indicators."""
    return f"{API_PREFIX}/{path_cid}/indicators"


def revoke_path(path_cid: str, indicator_id: str) -> str:
    """DELETE: revoke one indicator."""
    return f"{API_PREFIX}/{path_cid}/indicators/{indicator_id}"


def search_params(term: str, offset: int, limit: int = SEARCH_PAGE_SIZE) -> dict[str, str]:
    """Query parameters of one search page."""
    return {"term": term, "limit": str(limit), "offset": str(offset)}


# -- bodies -------------------------------------------------------------------------------------------


def build_add_body(
    values: Sequence[NewValue], shared: SharedFields, sekoia_type: str | None
) -> dict[str, Any]:
    """Body of a structured add: the values plus the fields they share."""
    indicators: list[dict[str, str]] = []
    for item in values:
        entry = {"value": item.value}
        if item.valid_from:
            entry["valid_from"] = item.valid_from
        indicators.append(entry)
    defaults: dict[str, Any] = {}
    if sekoia_type and SEND_DEFAULT_TYPE:
        defaults["type"] = sekoia_type
    if shared.valid_until:
        defaults["valid_until"] = shared.valid_until
    if shared.description:
        defaults["description"] = shared.description[:MAX_DESCRIPTION]
    if shared.kill_chain_phases:
        defaults["kill_chain_phases"] = [
            {"kill_chain_name": name, "phase_name": phase} for name, phase in shared.kill_chain_phases
        ]
    body: dict[str, Any] = {"indicators": indicators}
    if defaults:
        body["default_fields"] = defaults
    return body


# -- answers ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One indicator of a search answer."""

    id: str
    value: str
    revoked: bool


def item_value(item: Mapping[str, Any]) -> str:
    """The observable value of an indicator object: `name` carries it (GUESS: or `value`)."""
    return str(item.get("name") or item.get("value") or "")


def values_match(wanted: str, found: str) -> bool:
    """Whether an answer's value is the value we sent.

    Exact match, or a case-insensitive one for anything but URLs (Sekoia may lowercase domains,
    e-mail addresses and hashes; a URL's path is case-sensitive).
    """
    if wanted == found:
        return True
    return "://" not in wanted and wanted.strip().casefold() == found.strip().casefold()


def parse_add_answer(body: Any, sent: Iterable[str]) -> dict[str, str]:
    """Map each sent value to the indicator id the answer gives for it (values without a match are absent)."""
    items = body.get("items") if isinstance(body, Mapping) else None
    if not isinstance(items, list):
        return {}  # GUESS: an asynchronous answer has only a task id
    found = [(item_value(i), str(i["id"])) for i in items if isinstance(i, Mapping) and i.get("id")]
    exact = dict(found)
    ids: dict[str, str] = {}
    for value in sent:
        if value in exact:
            ids[value] = exact[value]
            continue
        match = next((iid for name, iid in found if values_match(value, name)), None)
        if match is not None:
            ids[value] = match
    return ids


def parse_search_page(body: Any) -> tuple[list[Hit], bool]:
    """Hits of one search page and whether more pages follow."""
    if not isinstance(body, Mapping):
        raise ValueError("search answer is not a JSON object")
    items = body.get("items") or []
    hits = [
        Hit(str(i["id"]), item_value(i), bool(i.get("revoked", False)))
        for i in items
        if isinstance(i, Mapping) and i.get("id")
    ]
    has_more = body.get("has_more")
    if has_more is None:
        # GUESS: without has_more, a full page means there may be more.
        has_more = len(items) >= SEARCH_PAGE_SIZE
    return hits, bool(has_more)


def parse_error(body: Any, status: int) -> tuple[str, str]:
    """(message, code) of an error answer; falls back to the HTTP status when the body says nothing."""
    if isinstance(body, Mapping):
        message = str(body.get("message") or body.get("detail") or body.get("error") or "")
        code = str(body.get("code") or "")
        if message or code:
            return message or code, code
    return f"HTTP {status}", ""


def is_collection_not_found(status: int, body: Any) -> bool:
    """Whether a 404 means the collection (not an indicator) is unknown."""
    if status != 404:
        return False
    message, code = parse_error(body, status)
    return code == COLLECTION_NOT_FOUND_CODE or message.strip().casefold() == COLLECTION_NOT_FOUND_MESSAGE


# -- refusals of one value -----------------------------------------------------------------------------

# Statuses that concern the value a request carries, not the set-up: the search term or the indicator
# id is too long or malformed. GUESS: Sekoia (or the gateway before it) answers these for one value;
# 413/414 come from a gateway, often with an HTML body, so the body is not looked at for them.
VALUE_REJECTION_STATUSES = frozenset({400, 413, 414, 422})
QUOTA_CODE_MARK = "QUOTA"

# The closed label set of `sis_values_rejected_total{reason}`.
REJECTED_INVALID = "invalid_value"
REJECTED_QUOTA = "quota_exceeded"
REJECTED_TOO_LONG = "too_long"
REJECTED_OTHER = "other"
REJECTION_LABELS: tuple[str, ...] = (REJECTED_INVALID, REJECTED_QUOTA, REJECTED_TOO_LONG, REJECTED_OTHER)


def rejection_label(status: int, code: str) -> str:
    """Metric label for a refusal of one value, from a closed set (the API's own codes are open)."""
    if QUOTA_CODE_MARK in code.upper():
        return REJECTED_QUOTA
    if status in (413, 414):
        return REJECTED_TOO_LONG
    if status in VALIDATION_STATUSES:
        return REJECTED_INVALID
    return REJECTED_OTHER


def is_value_rejection(status: int, body: Any) -> bool:
    """Whether a 4xx answer to a search or revoke refuses that one value (the feed goes on).

    A 400/422 counts only with a JSON error body: an HTML page with that status is a proxy speaking,
    not Sekoia judging the value.
    """
    if status in (413, 414):
        return True
    return status in VALUE_REJECTION_STATUSES and is_error_body(body)


# -- what a 2xx must look like to count as an acknowledgement -----------------------------------------
#
# A proxy login page, a captive portal or a redirect followed to another endpoint all answer 200.
# Only a body of the shape the endpoint documents proves that Sekoia itself took the request.


def is_error_body(body: Any) -> bool:
    """Whether a body is a JSON error object `{"message"|"detail"|"error", "code"?}`."""
    return isinstance(body, Mapping) and any(k in body for k in ("message", "detail", "error", "code"))


def add_answer_problem(body: Any) -> str | None:
    """Why a 2xx body is not an add acknowledgement, None when it is.

    Fact: `{"items": [...], "total": n}`. GUESS: an asynchronous answer carries only a `task_id`.
    """
    if not isinstance(body, Mapping):
        return "the body is not a JSON object"
    if isinstance(body.get("items"), list):
        return None
    if isinstance(body.get("task_id"), str) and body["task_id"]:
        return None
    return "the JSON object has neither 'items' nor 'task_id'"


def search_answer_problem(body: Any) -> str | None:
    """Why a 2xx body is not a search page (`{"items": [...], "has_more"?: bool}`), None when it is."""
    if not isinstance(body, Mapping):
        return "the body is not a JSON object"
    if not isinstance(body.get("items"), list):
        return "the JSON object has no 'items' list"
    if "has_more" in body and not isinstance(body["has_more"], bool):
        return "'has_more' is not a boolean"
    return None


def collection_answer_problem(body: Any) -> str | None:
    """Why a 2xx body is not a collection description, None when it is.

    GUESS: the body is not documented; a JSON object naming the collection (`id`, `uuid` or `name`)
    is required, and a search page (what a followed redirect turned into) is not one.
    """
    if not isinstance(body, Mapping):
        return "the body is not a JSON object"
    if not any(isinstance(body.get(k), str) and body.get(k) for k in ("id", "uuid", "name")):
        return "the JSON object does not describe a collection (no 'id', 'uuid' or 'name')"
    return None


def revoke_answer_problem(body: Any, empty: bool) -> str | None:
    """Why a 2xx answer is not a revocation, None when it is.

    GUESS: the body is not documented; no body (204) or a JSON object (the revoked indicator) counts.
    """
    if empty or isinstance(body, Mapping):
        return None
    return "the body is neither empty nor a JSON object"


# -- redirects -------------------------------------------------------------------------------------------


def safe_url(url: str) -> str:
    """A URL fit for a message: no userinfo (credentials), no query string, no fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def suggested_base_url(request_url: str, location: str) -> str | None:
    """The Sekoia URL to configure instead, read from where a redirect points, or None.

    When the redirect keeps the API path (`http://` to `https://`, a missing `/api` prefix), the part
    before `/v2/inthreat/ioc-collections` is the API root the user meant.
    """
    target = urlsplit(urljoin(request_url, location))
    if target.scheme.lower() not in ("http", "https") or not target.netloc:
        return None
    index = target.path.lower().find(API_PREFIX)
    if index < 0:
        return None
    root = urlunsplit((target.scheme.lower(), target.netloc, target.path[:index].rstrip("/"), "", ""))
    return safe_url(root)
