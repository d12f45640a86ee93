"""`python -m testbed.soak` (what `make soak` runs): one soak, its report, exit 0 only when nothing
was lost, nothing is wrongly active and every refusal is accounted for.

The run directory (logs of every process, the JSON report) is kept and named at the end.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from testbed.demo.node import STAND_IN
from testbed.soak.report import render, write_json
from testbed.soak.scenario import Soak, SoakSettings, run_and_stop


def build_parser() -> argparse.ArgumentParser:
    """Command-line options (``make soak SOAK_ARGS=...``)."""
    defaults = SoakSettings()
    p = argparse.ArgumentParser(prog="python -m testbed.soak", description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=defaults.events, help="indicator events, at least")
    p.add_argument(
        "--stream-seconds",
        type=float,
        default=defaults.stream_seconds,
        help="spread the events over this long (the fault schedule scales with it)",
    )
    p.add_argument("--drain-seconds", type=float, default=defaults.drain_seconds)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--run-dir", type=Path, help="default: a new temporary directory")
    p.add_argument("--report", type=Path, help="also write the JSON report here")
    return p


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one soak; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.events < 1 or args.stream_seconds <= 0:
        print("error: --events and --stream-seconds must be positive", file=sys.stderr)
        return 2
    run_dir = (args.run_dir or Path(tempfile.mkdtemp(prefix="sis-soak-"))).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = SoakSettings(
        events=args.events,
        stream_seconds=args.stream_seconds,
        drain_seconds=args.drain_seconds,
        seed=args.seed,
    )
    signal.signal(signal.SIGTERM, _raise_interrupt)
    soak = Soak(run_dir, settings)
    where = "the real node" if soak.node.real else f"{STAND_IN} — because {soak.node.reason}"
    print(
        f"soak: {settings.events:,} indicator events over {settings.stream_seconds:.0f}s with "
        f"{len(settings.schedule)} faults; runtime Pods on {where}; logs in {run_dir}",
        flush=True,
    )
    try:
        result = run_and_stop(soak)
    except KeyboardInterrupt:
        print("soak: interrupted; everything it started was stopped", file=sys.stderr)
        return 130
    print(render(result))
    write_json(result, run_dir / "soak-report.json")
    if args.report:
        write_json(result, args.report)
    print(f"report: {run_dir / 'soak-report.json'}   logs: {run_dir / 'logs'}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
