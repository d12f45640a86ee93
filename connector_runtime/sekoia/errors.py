"""Exceptions of the Sekoia client. None of their messages ever contains the API key."""

from __future__ import annotations

# Reasons of `SekoiaBlocked`: also the `status.progress.blocked.reason` the operator turns into Stalled.
REASON_REDIRECTS = "SekoiaURLRedirects"
REASON_UNEXPECTED_ANSWER = "SekoiaUnexpectedAnswer"
REASON_COLLECTION_NOT_FOUND = "SekoiaCollectionNotFound"
REASON_KEY_REJECTED = "SekoiaAPIKeyRejected"
REASON_PERMISSION_MISSING = "SekoiaPermissionMissing"


class Stopped(Exception):
    """The stop event was set while waiting (rate limit, back-off or retry)."""


class SekoiaError(Exception):
    """A Sekoia API call failed for a reason retrying will not fix."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SekoiaAuthError(SekoiaError):
    """401 (key missing, invalid or expired) or 403 (key lacks a permission); `status` says which."""

    @property
    def forbidden(self) -> bool:
        """True for 403: the key is valid but lacks a permission."""
        return self.status == 403


class SekoiaBlocked(SekoiaError):
    """An answer that concerns every request, not one value: a redirect, an HTML page, a 2xx of the
    wrong shape, an unknown collection. Nothing was acknowledged, and the same request will keep
    failing until the configuration (or what sits in front of Sekoia) changes. `reason` is a
    condition reason a user can act on."""

    reason = REASON_UNEXPECTED_ANSWER

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message, status)


class SekoiaNotFound(SekoiaBlocked):
    """404: the collection does not exist."""

    reason = REASON_COLLECTION_NOT_FOUND


class SekoiaRedirected(SekoiaBlocked):
    """A 3xx: redirects are never followed (a POST would silently become a GET elsewhere)."""

    reason = REASON_REDIRECTS

    def __init__(self, message: str, status: int, location: str, suggestion: str | None) -> None:
        super().__init__(message, status)
        self.location = location
        self.suggestion = suggestion


class SekoiaUnexpectedAnswer(SekoiaBlocked):
    """A 2xx whose body is not the endpoint's JSON shape, or an error answer that is not Sekoia's."""


class SekoiaUnavailable(SekoiaError):
    """No usable answer: connection error, timeout, 429 or 5xx."""


class SekoiaRequestError(SekoiaError):
    """Sekoia refused the request itself (another 4xx)."""


class SekoiaValueRejected(SekoiaRequestError):
    """A search or revoke refused because of the one value it carries (414 term too long, 400 on a
    term): that value is rejected, the feed goes on. `label` is the metric label (closed set)."""

    def __init__(self, message: str, status: int, label: str) -> None:
        super().__init__(message, status)
        self.label = label
