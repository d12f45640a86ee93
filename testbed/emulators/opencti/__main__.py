"""Process mode: `python -m testbed.emulators.opencti --port 0 --token T --stream-id live`.

Prints the base URL on one stdout line once listening, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType

from .emulator import OpenCTIEmulator


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="opencti-emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--token",
        default=os.environ.get("OPENCTI_EMULATOR_TOKEN"),
        help="API token clients must send (default: $OPENCTI_EMULATOR_TOKEN)",
    )
    parser.add_argument(
        "--stream-id", action="append", default=[], help="live stream id to serve (repeatable; default: live)"
    )
    parser.add_argument("--heartbeat-interval", type=float, default=5.0)
    parser.add_argument("--retry-ms", type=int, default=None, help="SSE retry field sent on connect")
    parser.add_argument("--load", action="append", default=[], help="JSON-lines STIX file to emit as creates")
    parser.add_argument("--tls-cert", help="PEM certificate: serve HTTPS only (with --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument(
        "--recovery",
        action="store_true",
        help="serve ?recover=<date> like the platform (current objects first, then live from the date)",
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until terminated."""
    args = build_parser().parse_args(argv)
    if not args.token:
        print("opencti-emulator: --token or OPENCTI_EMULATOR_TOKEN is required", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    emulator = OpenCTIEmulator(
        token=args.token,
        streams=args.stream_id or ["live"],
        heartbeat_interval=args.heartbeat_interval,
        host=args.host,
        port=args.port,
        retry_ms=args.retry_ms,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        recovery=args.recovery,
    )
    for path in args.load:
        emulator.load_jsonl(path)
    done = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    base_url = emulator.start()
    print(base_url, flush=True)
    try:
        done.wait()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
