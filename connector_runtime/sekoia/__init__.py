"""Sekoia.io IOC collection client of the connector runtime (protocol facts live in `protocol`)."""

from .client import SekoiaClient
from .errors import (
    SekoiaAuthError,
    SekoiaBlocked,
    SekoiaError,
    SekoiaNotFound,
    SekoiaRedirected,
    SekoiaRequestError,
    SekoiaUnavailable,
    SekoiaUnexpectedAnswer,
    SekoiaValueRejected,
    Stopped,
)
from .models import AddOutcome, NewValue, Rejected, SharedFields
from .protocol import normalize_base_url, normalize_collection_id
from .ratelimit import RateLimiter
from .retry import RetryPolicy

__all__ = [
    "AddOutcome",
    "NewValue",
    "RateLimiter",
    "Rejected",
    "RetryPolicy",
    "SekoiaAuthError",
    "SekoiaBlocked",
    "SekoiaClient",
    "SekoiaError",
    "SekoiaNotFound",
    "SekoiaRedirected",
    "SekoiaRequestError",
    "SekoiaUnavailable",
    "SekoiaUnexpectedAnswer",
    "SekoiaValueRejected",
    "SharedFields",
    "Stopped",
    "normalize_base_url",
    "normalize_collection_id",
]
