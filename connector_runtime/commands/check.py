"""``connector-runtime check``: validate the configuration and reach both APIs, then report."""

from __future__ import annotations

import threading
from typing import TextIO

from connector_runtime.config import RuntimeSettings
from connector_runtime.sekoia.client import SekoiaClient
from connector_runtime.sekoia.errors import SekoiaAuthError, SekoiaBlocked, SekoiaError, SekoiaNotFound
from connector_runtime.sekoia.ratelimit import RateLimiter
from connector_runtime.sekoia.retry import RetryPolicy
from connector_runtime.stream.probe import ProbeResult, probe_opencti


def probe_sekoia(settings: RuntimeSettings) -> ProbeResult:
    """One request: the key is accepted and the collection exists."""
    client = SekoiaClient(
        settings.sekoia_url,
        settings.sekoia_api_key.get_secret_value(),
        settings.collection_id,
        limiter=RateLimiter(settings.requests_per_second),
        retry_policy=RetryPolicy(),
        stop=threading.Event(),
        timeout=min(settings.request_timeout_seconds, 15.0),
        verify=settings.sekoia_verify,
    )
    name = "Sekoia IOC collection"
    try:
        client.check_collection()
    except SekoiaAuthError as exc:
        what = "lacks the IOC collection permissions" if exc.forbidden else "is invalid or expired"
        return ProbeResult(name, False, f"API key {what} (HTTP {exc.status})")
    except SekoiaNotFound:
        return ProbeResult(
            name, False, f"collection {settings.collection_id} not found at {settings.sekoia_url}"
        )
    except SekoiaBlocked as exc:  # a redirect or a page that is not Sekoia's: the message says what to change
        return ProbeResult(name, False, f"{exc.reason}: {exc}")
    except SekoiaError as exc:
        return ProbeResult(name, False, f"unreachable: {exc}")
    return ProbeResult(name, True, f"collection {settings.collection_id} reachable with this key")


def run_check(settings: RuntimeSettings, out: TextIO) -> int:
    """Print one line per check; 0 when all pass, 1 otherwise."""
    results = [ProbeResult("configuration", True, "all settings valid")]
    results += probe_opencti(
        settings.opencti_url,
        settings.opencti_token.get_secret_value(),
        settings.live_stream_id,
        settings.opencti_verify,
    )
    results.append(probe_sekoia(settings))
    for result in results:
        out.write(f"{'ok  ' if result.ok else 'FAIL'} {result.name}: {result.detail}\n")
    failed = [r for r in results if not r.ok]
    out.write("preflight passed\n" if not failed else f"preflight failed: {len(failed)} check(s)\n")
    return 0 if not failed else 1
