"""Names a TLS failure in words a user can act on, instead of a wrapped ``SSLError`` repr."""

from __future__ import annotations

import re

_VERIFY_FAILED = re.compile(r"certificate verify failed:?\s*([^'\"()\]]*)", re.IGNORECASE)
_HOSTNAME = re.compile(r"hostname mismatch[^'\"()\]]*|doesn't match[^'\"()\]]*", re.IGNORECASE)


def verify_failure(exc: BaseException) -> str | None:
    """``"certificate verify failed: <why>"`` when ``exc`` (or what it wraps) is a certificate
    verification failure, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    texts = []
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts.append(str(current))
        texts.extend(str(arg) for arg in getattr(current, "args", ()))
        current = current.__cause__ or current.__context__
    for text in texts:
        match = _VERIFY_FAILED.search(text)
        if match:
            why = match.group(1).strip().rstrip(".,:; ")
            return f"certificate verify failed: {why}" if why else "certificate verify failed"
        mismatch = _HOSTNAME.search(text)
        if mismatch:
            return f"certificate verify failed: {mismatch.group(0).strip()}"
    return None


def describe(exc: BaseException) -> str:
    """A short cause for a failed request: the certificate problem when there is one, else the
    exception's type (its message may quote headers, hence credentials)."""
    return verify_failure(exc) or type(exc).__name__
