"""The one masker every outgoing text goes through: log lines, fatal reasons, termination and
readiness messages.

A secret rarely leaks verbatim. It leaks inside an exception message that quoted it with ``repr``
(``'Bearer abc\\ndef'``), inside a JSON log line that escaped it, percent-encoded in a URL, or
base64-encoded in a basic-auth header. So each registered secret is masked in all of those forms.

The registry is process-wide on purpose: the runtime registers its credentials once, at start-up,
and every module masks through :func:`mask` without having to be handed the secrets.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
from collections.abc import Iterable
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

MASK = "***"
# Shorter strings would mask ordinary words; credentials are far longer than this anyway.
MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def variants(secret: str) -> set[str]:
    """Every form in which ``secret`` may be written out: raw, escaped, URL-encoded, base64."""
    forms = {secret}
    for text in (secret, secret.strip()):
        if not text:
            continue
        forms.add(text.encode("unicode_escape").decode("ascii"))  # repr() of a str, without quotes
        forms.add(json.dumps(text)[1:-1])  # JSON, ASCII-escaped
        forms.add(json.dumps(text, ensure_ascii=False)[1:-1])
        forms.add(repr(text.encode("utf-8", "surrogatepass"))[2:-1])  # repr() of bytes
        forms.add(quote(text, safe=""))
        forms.add(quote(text))
        forms.add(quote_plus(text))
        raw = text.encode("utf-8", "surrogatepass")
        for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            forms.add(encoded.decode("ascii"))
            forms.add(encoded.decode("ascii").rstrip("="))
        # A value that was (wrongly) split over lines or around whitespace leaks piece by piece.
        forms.update(part for part in re.split(r"[\s\x00-\x1f\x7f]+", text) if len(part) >= 8)
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def _percent_encoded(secret: str) -> str:
    """A pattern matching ``secret`` with any of its characters percent-encoded (or ``+``)."""
    parts = []
    for char in secret.strip():
        encoded = "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        alternatives = [re.escape(char), re.escape(encoded)] + (["\\+"] if char == " " else [])
        parts.append(f"(?:{'|'.join(alternatives)})")
    return "".join(parts)


def register(secrets: Iterable[str | None]) -> None:
    """Add secrets to mask from now on (empty and very short strings are ignored)."""
    global _pattern
    with _lock:
        for secret in secrets:
            if secret and len(secret.strip()) >= MIN_SECRET_LENGTH:
                _secrets.add(secret)
        forms = {form for secret in _secrets for form in variants(secret)}
        # Longest first, so a form that contains another is replaced whole.
        ordered = [re.escape(f) for f in sorted(forms, key=len, reverse=True)]
        # Percent-encoding may cover any subset of the characters: one pattern per secret.
        ordered += [_percent_encoded(secret) for secret in sorted(_secrets, key=len, reverse=True)]
        # Case-insensitive: hex digits come in either case; masking a little more costs nothing.
        _pattern = re.compile("|".join(ordered), re.IGNORECASE) if ordered else None


def clear() -> None:
    """Forget every registered secret (tests)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def mask(text: str, extra: Iterable[str | None] = ()) -> str:
    """``text`` with every registered secret (and each of ``extra``) replaced by ``***``, in any of
    the forms :func:`variants` lists."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for secret in extra:
        if secret and len(secret.strip()) >= MIN_SECRET_LENGTH:
            for form in sorted(variants(secret), key=len, reverse=True):
                text = text.replace(form, MASK)
    return text


def one_line(text: str, limit: int = 1000) -> str:
    """Masked, control characters escaped, at most ``limit`` characters: fit for a status message,
    a readiness reason or a termination message."""
    masked = mask(text)
    escaped = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in masked)
    escaped = escaped.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(escaped) > limit:
        escaped = escaped[: limit - 1] + "…"
    # Masking again: the escaping may have turned a raw secret into its escaped form.
    return mask(escaped)


class MaskingStream:
    """A text stream that masks what is written through it, for ``sys.stdout``/``sys.stderr``.

    The last line of defence for output that bypasses our formatter: pycti installs its own log
    handler while it starts, libraries print warnings, the interpreter prints tracebacks. Logging
    handlers and tracebacks write whole lines per call, which is what masking per write needs.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text`` masked; returns the length given, as callers expect."""
        self._stream.write(mask(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        """Write each line masked."""
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def protect_standard_streams() -> None:
    """Route ``sys.stdout`` and ``sys.stderr`` through the masker (idempotent)."""
    if not isinstance(sys.stdout, MaskingStream):
        sys.stdout = MaskingStream(sys.stdout)  # type: ignore[assignment,unused-ignore]
    if not isinstance(sys.stderr, MaskingStream):
        sys.stderr = MaskingStream(sys.stderr)  # type: ignore[assignment,unused-ignore]
