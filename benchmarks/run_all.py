"""``make bench``: the runtime benchmark, the operator benchmark at several sizes, charts and a page.

Writes into the output folder (default docs/benchmarks/):

- runtime.json            what ``make bench-runtime`` writes (with its timeline): the uniform workload;
- runtime-realistic.json  what ``make bench-realistic`` writes: the realistic mix (bulk, live, burst);
- operator-scaling.json   one operator_bench result per size, smallest first;
- operator.json           the result at the largest size (what ``make bench-operator`` writes);
- *.png and README.md     the charts and the page showing them with the headline numbers.

Each benchmark runs as its own child process (``benchmarks/*_bench.py``), each operator size on a
fresh control plane, so that one run's memory, threads and cluster never colour the next one.
``--charts-only`` redraws the charts and the page from the JSON already in the output folder.

    make bench BENCH_ARGS="--sizes 10,20 --events 2000 --output-dir /tmp/bench"   # a quick check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script with `python -P`: neither this folder nor the repository root is on sys.path.
# Only this folder is added; the root holds `operator/`, which must never shadow the stdlib module.
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import charts  # noqa: E402
import realistic_report  # noqa: E402
import report  # noqa: E402
import results  # noqa: E402

ROOT = HERE.parent
DEFAULT_SIZES = (50, 100, 250, 500)
DEFAULT_EVENTS = 30_000


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("sizes must be positive numbers of resources")
    return sizes


def _script(name: str, *args: str) -> list[str]:
    # -P for the same reason as the Makefile's: the working directory may be the repository root.
    return [sys.executable, "-P", str(HERE / name), *args]


def _run(argv: list[str]) -> tuple[int, float]:
    """Run one benchmark script with its output on ours; (exit code, seconds)."""
    print("$ " + " ".join(argv[1:]), flush=True)
    began = time.monotonic()
    code = subprocess.run(argv, check=False).returncode
    return code, time.monotonic() - began


def run_runtime(events: int, output_dir: Path) -> tuple[int, float]:
    """The runtime replay, writing runtime.json into ``output_dir``."""
    output = output_dir / results.RUNTIME_JSON
    return _run(_script("runtime_bench.py", "--events", str(events), "--output", str(output)))


def run_realistic(events: int, output_dir: Path) -> tuple[int, float]:
    """The realistic-mix scenarios, writing runtime-realistic.json into ``output_dir``."""
    output = output_dir / realistic_report.AFTER_JSON
    return _run(_script("realistic_bench.py", "--events", str(events), "--output", str(output)))


def run_operator(sizes: list[int], timeout: float, output_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """operator_bench at each size; write operator-scaling.json and operator.json (largest size).

    Returns the scaling document and one line per size for the closing summary.
    """
    runs: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sis-bench-operator-") as tmp:
        for size in sizes:
            path = Path(tmp) / f"operator-{size}.json"
            options = ["--count", str(size), "--timeout", str(timeout), "--output", str(path)]
            code, seconds = _run(_script("operator_bench.py", *options))
            summary.append(f"operator, {size} resources: exit {code} after {seconds:.0f} s")
            result = results.read_json(path)
            if result is None:
                # Nothing measured (the control plane did not come up, the script crashed).
                error = f"operator_bench.py exited {code} without a result"
                failed.append({"resources": size, "error": error})
                continue
            result["wall_seconds_of_run"] = round(seconds, 1)
            runs.append(result)
            if code != 0:
                failed.append({"resources": size, "error": f"operator_bench.py exited {code}"})
    scaling = results.scaling_from_runs(runs, failed)
    scaling["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _write_json(output_dir / results.SCALING_JSON, scaling)
    if runs:
        largest = {k: v for k, v in scaling["runs"][-1].items() if k != "wall_seconds_of_run"}
        _write_json(output_dir / results.OPERATOR_JSON, largest)
    return scaling, summary


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def publish(output_dir: Path) -> dict[str, Path | None]:
    """Draw every chart and write the page from the JSON in ``output_dir``; chart key -> file."""
    runtime, scaling = results.load(output_dir)
    drawn = charts.draw_all(runtime, scaling, output_dir)
    for key, path in drawn.items():
        stale = output_dir / results.CHARTS[key]
        if path is None and stale.exists():
            # Left from an earlier run, it would show figures the JSON no longer holds.
            stale.unlink()
    report.write(output_dir, runtime, scaling, drawn)
    more = realistic_report.append(output_dir)
    return {**drawn, **{f"realistic_{key}": path for key, path in more.items()}}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks (unless --charts-only), then write the charts and the page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=list(DEFAULT_SIZES),
        help="operator benchmark sizes, comma-separated (default: 50,100,250,500)",
    )
    parser.add_argument(
        "--events", type=int, default=DEFAULT_EVENTS, help="runtime replay size (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds each operator size may take (default: 600)"
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=ROOT / "docs" / "benchmarks",
        help="where the JSON, charts and README.md go (default: docs/benchmarks)",
    )
    parser.add_argument(
        "--charts-only", action="store_true", help="no benchmark: redraw from the JSON in --output-dir"
    )
    parser.add_argument("--skip-runtime", action="store_true", help="keep the runtime.json already there")
    parser.add_argument("--skip-operator", action="store_true", help="keep the operator JSON already there")
    parser.add_argument(
        "--skip-realistic", action="store_true", help="keep the runtime-realistic.json already there"
    )
    parser.add_argument(
        "--realistic-events",
        type=int,
        default=34_000,
        help="realistic bulk replay size (default: %(default)s events, ~30,600 indicators)",
    )
    args = parser.parse_args(argv)
    output_dir: Path = args.output_dir.resolve()
    summary: list[str] = []
    failures = 0
    began = time.monotonic()
    if not args.charts_only:
        if not args.skip_runtime:
            code, seconds = run_runtime(args.events, output_dir)
            summary.append(f"runtime, {args.events:,} events: exit {code} after {seconds:.0f} s")
            failures += code != 0
        if not args.skip_realistic:
            code, seconds = run_realistic(args.realistic_events, output_dir)
            summary.append(
                f"realistic mix, {args.realistic_events:,} events: exit {code} after {seconds:.0f} s"
            )
            failures += code != 0
        if not args.skip_operator:
            scaling, lines = run_operator(args.sizes, args.timeout, output_dir)
            summary += lines
            failures += len(scaling["failed"])
    drawn = publish(output_dir)
    for line in summary:
        print(line)
    for key, path in drawn.items():
        print(f"{key:<20} {path if path is not None else '(no data for this chart)'}")
    print(f"page                 {output_dir / results.PAGE}")
    print(f"done in {time.monotonic() - began:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
