"""Run the Sekoia emulator as a process: prints its base URL on one stdout line, serves until signalled.

Example: python -m testbed.emulators.sekoia --port 0 --api-key secret --collection <uuid> --rate-limit 5
A key may carry permissions: --api-key readonly:view. Keys may also come from the environment
variable SEKOIA_EMULATOR_API_KEYS (comma separated), which keeps them out of the process list.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from .options import (
    COLLECTION_ID_FORMS,
    QUOTA_SCOPES,
    RATE_SCOPES,
    READD_REVOKED_MODES,
    STRUCTURED_ADD_MODES,
    EmulatorOptions,
)
from .server import SekoiaEmulator


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sekoia-emulator", description="Sekoia.io IOC collections API emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY[:PERM,...]",
        help="accepted key, optionally with permissions view/manage/all (default all)",
    )
    p.add_argument(
        "--collection",
        action="append",
        default=[],
        metavar="ID",
        help="collection id (uuid or ioc-collection--uuid)",
    )
    p.add_argument("--rate-limit", type=int, default=None, help="requests per window per key")
    p.add_argument("--rate-window", type=float, default=1.0, help="seconds")
    p.add_argument(
        "--rate-burst", type=int, default=None, help="token-bucket capacity (default: strict sliding window)"
    )
    p.add_argument(
        "--rate-scope",
        choices=RATE_SCOPES,
        default="key",
        help="count each API key (default) or every client together (global)",
    )
    p.add_argument("--no-retry-after", action="store_true", help="answer 429 without Retry-After")
    p.add_argument("--quota", type=int, default=None)
    p.add_argument("--quota-scope", choices=QUOTA_SCOPES, default="community")
    p.add_argument("--quota-status", type=int, default=400)
    p.add_argument("--collection-id-form", choices=COLLECTION_ID_FORMS, default="both")
    p.add_argument("--structured-add-mode", choices=STRUCTURED_ADD_MODES, default="sync")
    p.add_argument("--readd-revoked", choices=READD_REVOKED_MODES, default="reactivate")
    p.add_argument("--search-excludes-revoked", action="store_true")
    p.add_argument("--validation-status", type=int, choices=(400, 422), default=400)
    p.add_argument("--async-delay", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    return p


def _keys(specs: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    env = [k for k in os.environ.get("SEKOIA_EMULATOR_API_KEYS", "").split(",") if k.strip()]
    keys: dict[str, dict[str, list[str]]] = {}
    for spec in [*env, *specs]:
        key, _, perms = spec.strip().partition(":")
        keys[key] = {"permissions": perms.split(",") if perms else ["all"]}
    return keys


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `sekoia-emulator` and `python -m testbed.emulators.sekoia`."""
    args = _parser().parse_args(argv)
    options = EmulatorOptions(
        collection_id_form=args.collection_id_form,
        structured_add_mode=args.structured_add_mode,
        readd_revoked=args.readd_revoked,
        search_includes_revoked=not args.search_excludes_revoked,
        validation_status=args.validation_status,
        retry_after=not args.no_retry_after,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        rate_burst=args.rate_burst,
        rate_scope=args.rate_scope,
        quota=args.quota,
        quota_scope=args.quota_scope,
        quota_status=args.quota_status,
        async_delay=args.async_delay,
        seed=args.seed,
    )
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    emulator = SekoiaEmulator(_keys(args.api_key), args.collection, options, host=args.host, port=args.port)
    print(emulator.start(), flush=True)
    try:
        done.wait()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
