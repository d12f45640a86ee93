"""``connector-runtime``: ``run`` (default), ``check`` (preflight) and ``convert`` (dry run)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from connector_runtime import redaction
from connector_runtime.commands.convert import add_convert_parser
from connector_runtime.config import ConfigError, RuntimeSettings, load_settings
from connector_runtime.termination import write_termination_message

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the console script."""
    parser = argparse.ArgumentParser(
        prog="connector-runtime",
        description="Sync an OpenCTI live stream into a Sekoia.io IOC collection. Settings come from "
        "the seed connector's environment variables (or its config.yml) plus optional new ones.",
    )
    sub = parser.add_subparsers(dest="command")
    for name, help_text in (
        ("run", "listen to the stream and push to Sekoia (the default)"),
        ("check", "validate the settings and reach both APIs, then report"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("--config", type=Path, help="seed-style config.yml (environment variables win)")
    add_convert_parser(sub)
    return parser


def _settings(config: Path | None) -> RuntimeSettings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        line = redaction.one_line(f"configuration error: {exc}")
        print(line, file=sys.stderr)
        write_termination_message(
            Path(os.environ.get("RUNTIME_TERMINATION_LOG", "/dev/termination-log")), line
        )
        raise SystemExit(EXIT_CONFIG) from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    command = args.command or "run"
    if command == "convert":
        return int(args.func(args))
    settings = _settings(getattr(args, "config", None))
    if command == "check":
        from connector_runtime.commands.check import run_check

        return run_check(settings, sys.stdout)
    from connector_runtime.runner import run

    run(settings)
    return 0  # not reached: run() leaves the process


if __name__ == "__main__":
    sys.exit(main())
