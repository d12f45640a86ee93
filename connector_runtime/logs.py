"""JSON logs on stdout: one line per record whatever it holds, every secret masked.

A log line is the only trace of a refused or skipped value, so no input may cost it: lone
surrogates, control characters, unformattable arguments and megabyte-long values all still give
exactly one parseable line (long values cut, with a marker saying how much was cut).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

from connector_runtime import redaction

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}
MAX_FIELD_CHARS = 16_384
# Characters json.dumps(ensure_ascii=False) leaves raw although str.splitlines() (and some log
# shippers) break lines on them.
_LINE_BREAKERS = {ord(c): f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"}


def truncate(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """``text`` cut to ``limit`` characters, with a marker saying how many were dropped."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated {len(text) - limit} chars]"


def _clean(value: Any, depth: int = 0) -> Any:
    """Mask and bound every string inside an ``extra`` value (other types are left to json)."""
    if isinstance(value, str):
        return truncate(redaction.mask(value))
    if isinstance(value, bytes):
        return truncate(redaction.mask(value.decode("utf-8", "backslashreplace")))
    if depth > 5:
        return truncate(redaction.mask(repr(value)))
    if isinstance(value, dict):
        return {str(k): _clean(v, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v, depth + 1) for v in list(value)[:200]]
    if value is None or isinstance(value, bool | int | float):
        return value
    return truncate(redaction.mask(str(value)))


def safe_line(line: str) -> str:
    """``line`` made writable as one UTF-8 line: lone surrogates become ``\\udXXX`` text and the
    Unicode line separators are escaped (json.dumps already escapes the ASCII control characters)."""
    return line.encode("utf-8", "backslashreplace").decode("utf-8").translate(_LINE_BREAKERS)


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # wrong arguments for the format: keep what there is rather than nothing
        return f"{record.msg!r} % {record.args!r}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Never raises: a record that cannot be rendered fully is rendered as far as it can be."""
        try:
            return self._format(record)
        except Exception as exc:
            fallback = {
                "time": _timestamp(record),
                "level": record.levelname,
                "logger": record.name,
                "message": truncate(redaction.mask(_message(record))),
                "log_error": type(exc).__name__,
            }
            return safe_line(redaction.mask(json.dumps(fallback, default=repr, ensure_ascii=False)))

    def _format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": truncate(redaction.mask(_message(record))),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _clean(value)
        if record.exc_info and record.levelno >= logging.ERROR:
            entry["exception"] = truncate(redaction.mask(self.formatException(record.exc_info)))
        line = json.dumps(entry, default=str, ensure_ascii=False)
        # Masked again after encoding, in case an escape sequence produced a secret's escaped form.
        return safe_line(redaction.mask(line))


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class _LineHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to stdout; a write that fails is retried as a minimal line instead of being lost."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def handleError(self, record: logging.LogRecord) -> None:
        try:
            minimal = {"level": record.levelname, "logger": record.name, "log_error": "unwritable record"}
            self.stream.write(json.dumps(minimal) + "\n")
            self.flush()
        except Exception:
            super().handleError(record)


_base_factory = logging.getLogRecordFactory()


def _masking_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Records are masked when created, so a handler someone else installs (pycti replaces the
    logging set-up while it starts) never sees a secret either."""
    record = _base_factory(*args, **kwargs)
    if record.args or (isinstance(record.msg, str) and redaction.mask(record.msg) != record.msg):
        record.msg, record.args = redaction.mask(_message(record)), ()
    return record


def setup_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Send every logger's records to stdout as masked JSON lines (replaces pycti's handler)."""
    redaction.register(secrets)
    logging.setLogRecordFactory(_masking_factory)
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        # Whatever the locale, nothing the formatter lets through may fail to encode.
        reconfigure(encoding="utf-8", errors="backslashreplace")
    redaction.protect_standard_streams()
    handler = _LineHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(handlers=[handler], level=level.upper(), force=True)
    for noisy in ("urllib3", "pika", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
