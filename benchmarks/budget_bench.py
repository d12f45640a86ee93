"""Shared Sekoia budget: five syncs, one emulated Sekoia enforcing 5 requests/s for all of them.

Runs testbed/budget_scenario.py on a fresh local control plane and prints the figures: requests/s
per sync over time (5-second buckets), the shares the operator published, 429s, and the delay of
the live syncs' values.

    make bench-budget   (or: .venv/bin/python -P benchmarks/budget_bench.py [--bulk-events 2500])
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from testbed.budget_scenario import BULK, LIVE, PLURAL, BudgetScenario, BudgetSettings
from testbed.controlplane.cluster import LocalCluster

ROOT = Path(__file__).resolve().parents[1]
CRD = ROOT / "deploy" / "crds" / "sekoiaintelsyncs.yaml"


def run(settings: BudgetSettings, work: str | None = None) -> dict[str, Any]:
    """One run of the scenario on its own control plane (logs in `work`, else a temporary folder)."""
    with LocalCluster() as cluster, tempfile.TemporaryDirectory(prefix="sis-budget-") as scratch:
        work = work or scratch
        cluster.kubectl("apply", "--server-side", "-f", str(CRD))
        cluster.kubectl(
            "wait", "--for=condition=Established", f"crd/{PLURAL}.sync.sekoia-intel.dev", "--timeout=60s"
        )
        cluster.kubectl("create", "namespace", "budget")
        scenario = BudgetScenario(cluster, "budget", Path(work), settings)
        try:
            scenario.start()
            return scenario.run()
        finally:
            scenario.stop()


def summary(figures: dict[str, Any]) -> str:
    """The figures as a few readable lines."""
    width = figures["bucket_seconds"]
    lines = [f"requests/s per sync, {width:g}-second buckets (phases at {figures['phases_seconds']} s):"]
    for name in (BULK, *LIVE):
        lines.append(f"  {name:7} " + " ".join(f"{v:4.1f}" for v in figures["requests_per_second"][name]))
    lines.append("  total   " + " ".join(f"{v:4.1f}" for v in figures["requests_per_second_total"]))
    lines.append(f"median share with the bulk replay running: {figures['median_share_bulk_phase']}")
    lines.append(f"median share with the bulk sync suspended: {figures['median_share_suspended_phase']}")
    lines.append(
        f"429: {figures['throttled_429']} of {figures['requests_total']} requests "
        f"({figures['throttled_429_by_sync']})"
    )
    lines.append(f"values per accepted request: {figures['values_per_request']}")
    lines.append(f"live delay (s): {figures['live_delay_seconds']}")
    lines.append(f"missing values: {figures['missing']} of {figures['expected']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run, print and write the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bulk-events", type=int, default=BudgetSettings.bulk_events)
    parser.add_argument("--phase1-seconds", type=float, default=BudgetSettings.phase1_seconds)
    parser.add_argument("--logs", help="keep the operator's and runtimes' logs in this folder")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks" / "budget.json")
    args = parser.parse_args(argv)
    started = time.time()
    settings = BudgetSettings(bulk_events=args.bulk_events, phase1_seconds=args.phase1_seconds)
    if args.logs:
        Path(args.logs).mkdir(parents=True, exist_ok=True)
    figures = run(settings, args.logs)
    figures["wall_seconds"] = round(time.time() - started, 1)
    print(summary(figures))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
