"""`python -m testbed.demo` (what `make demo` runs): the end-to-end demo, then a clean teardown.

- Standard input not a terminal (CI, `make demo < /dev/null`): run once, exit 0 on success, or 1 with
  one line saying what failed (the logs are kept and their directory is named).
- On a terminal: after the scenario, everything stays up until Enter (or Ctrl-C).
- ``--keep`` (``make demo KEEP=1``): everything stays up until Ctrl-C, whatever stdin is.

Ctrl-C or SIGTERM at any moment stops every process the demo started, by process id.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from testbed.demo.dataset import DATA_FILE, load_dataset
from testbed.demo.display import Console
from testbed.demo.scenario import Scenario
from testbed.demo.stack import Stack

EXIT_FAILED, EXIT_INTERRUPTED = 1, 130


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m testbed.demo", description=__doc__.splitlines()[0])
    p.add_argument("--keep", action="store_true", help="leave everything running until Ctrl-C")
    p.add_argument(
        "--run-dir", type=Path, help="keep logs and kubeconfigs here (default: a temporary directory)"
    )
    p.add_argument("--report", type=Path, help="write the outcome as JSON to this file")
    p.add_argument(
        "--data", type=Path, default=DATA_FILE, help="JSON-lines STIX indicators to load into OpenCTI"
    )
    return p


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM/SIGHUP take the same path as Ctrl-C: unwind to the teardown.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _wait_for_user(console: Console, stack: Stack, keep: bool) -> None:
    """Hold everything up: until Ctrl-C with ``keep``, else until Enter (interactive runs only)."""
    if keep:
        console.line("\nEverything keeps running. Press Ctrl-C to stop it all.")
        reported: set[str] = set()
        while True:
            time.sleep(1)
            for name in set(stack.dead()) - reported:
                console.line(f"warning: {name} exited (log: {stack.log_dir})")
                reported.add(name)
    console.line("\nEverything keeps running for exploration. Press Enter to stop it all.")
    with contextlib.suppress(EOFError):
        input()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    args = build_parser().parse_args(argv)
    console = Console()
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="sis-demo-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(run_dir.resolve())
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupt)
    code = EXIT_FAILED
    succeeded = False
    try:
        console.line(
            "Sekoia Intel Sync demo: OpenCTI live stream -> operator-managed runtime -> Sekoia collection"
        )
        console.line(f"run directory: {stack.run_dir}")
        scenario = Scenario(stack, console, load_dataset(args.data))
        outcome = scenario.run()
        outcome.timings["wall"] = round(console.elapsed(), 1)
        if args.report:
            outcome.write(args.report)
        console.line(
            f"\nOK: {len(outcome.active)} values active, {len(outcome.deleted_values)} deleted ones revoked, "
            f"resource Ready with progress reported by the runtime "
            f"({'on the real node' if outcome.node == 'real' else 'run by the kubelet stand-in'}). "
            f"Demo took {console.elapsed():.1f}s."
        )
        code, succeeded = 0, True
        if args.keep or sys.stdin.isatty():
            console.line("\nExplore it (everything is still running):")
            for note in scenario.exploration_notes():
                console.detail(note)
            _wait_for_user(console, stack, args.keep)
    except KeyboardInterrupt:
        # Ctrl-C is how a kept demo ends: a success stays a success.
        code = 0 if succeeded else EXIT_INTERRUPTED
        console.line("\ninterrupted")
    except Exception as exc:
        code = EXIT_FAILED
        # One line on the console; the whole story (timeouts carry logs and status) in a file.
        (stack.run_dir / "failure.txt").write_text(f"{type(exc).__name__}: {exc}\n")
        console.line(f"\nmake demo FAILED: {_first_line(exc)}")
        console.line(f"details: {stack.run_dir / 'failure.txt'}")
    finally:
        # A second Ctrl-C must not cut the teardown short and leave processes behind.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        console.line("stopping every process the demo started...")
        stack.stop()
        if code == 0 and args.run_dir is None:
            shutil.rmtree(run_dir, ignore_errors=True)
        elif code != 0:
            console.line(f"logs kept in {stack.run_dir}/logs and {stack.run_dir}/cluster/logs")
        console.line("all stopped.")
    return code


if __name__ == "__main__":
    sys.exit(main())
