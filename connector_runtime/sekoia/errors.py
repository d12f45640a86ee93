"""Exceptions of the Sekoia client. None of their messages ever contains the API key."""

from __future__ import annotations


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


class SekoiaNotFound(SekoiaError):
    """404: the collection (or indicator) does not exist."""


class SekoiaUnavailable(SekoiaError):
    """No usable answer: connection error, timeout, 429 or 5xx."""


class SekoiaRequestError(SekoiaError):
    """Sekoia refused the request itself (another 4xx)."""
