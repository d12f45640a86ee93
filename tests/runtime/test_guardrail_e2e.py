"""The sharing guardrail in the real runtime (pycti inside) between the OpenCTI and Sekoia
emulators: OpenCTI's own marking ids, a custom marking named by the platform's GraphQL API,
a marking raised (revoked in Sekoia) and lowered (pushed)."""

from __future__ import annotations

import json
import re

from conftest import COLLECTION, DATA_FILE, RuntimeFactory

from connector_runtime.conversion import convert_indicator
from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.sekoia.server import SekoiaEmulator
from testbed.processes import wait_until


def _indicators() -> list[dict]:
    rows = [json.loads(line) for line in DATA_FILE.read_text().splitlines() if line.strip()]
    return [row for row in rows if row["pattern_type"] == "stix" and convert_indicator(row).values][:12]


def _values(indicators: list[dict]) -> set[str]:
    return {v.value for ind in indicators for v in convert_indicator(ind).values}


def _wait_active(sekoia: SekoiaEmulator, expected: set[str]) -> None:
    wait_until(
        lambda: sekoia.active_values(COLLECTION) == expected,
        60,
        "the collection to hold exactly the allowed values",
        on_timeout=lambda: (
            f"missing {sorted(expected - sekoia.active_values(COLLECTION))[:5]} "
            f"extra {sorted(sekoia.active_values(COLLECTION) - expected)[:5]}"
        ),
    )


def test_markings_decide_what_reaches_sekoia(
    opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, start_runtime: RuntimeFactory
) -> None:
    red = opencti.markings.by_name("TLP:RED")
    green = opencti.markings.by_name("TLP:GREEN")
    partner = opencti.markings.add("statement", "Partner X only")
    indicators = _indicators()
    # As OpenCTI writes them: the data set's TLP:CLEAR, two TLP:RED, one with a custom statement.
    indicators[0] = {**indicators[0], "object_marking_refs": [red]}
    indicators[1] = {**indicators[1], "object_marking_refs": [green, red]}
    indicators[2] = {**indicators[2], "object_marking_refs": [partner]}
    opencti.add_bundle(indicators)
    runtime = start_runtime(SEKOIA_INTEL_MARKINGS_REFUSED=json.dumps(["Partner X only"]))
    runtime.wait_ready()
    allowed = indicators[3:]
    _wait_active(sekoia, _values(allowed))

    refused_values = len(_values(indicators[:3]))
    wait_until(
        lambda: runtime.metric('sis_values_skipped_total{reason="marking-not-allowed"}') == refused_values,
        10,
        "the refused values to be counted",
    )
    assert runtime.metric('sis_indicators_refused_total{marking="TLP:RED"}') == 2
    log = runtime.log()
    for ind, marking in ((indicators[0], "TLP:RED"), (indicators[2], "Partner X only")):
        line = next(line for line in log.splitlines() if ind["id"] in line and "sharing guardrail" in line)
        assert marking in line and "marking-not-allowed" in line
    # Only the custom marking needed the platform, once; the built-in ids are known.
    lookups = [c for c in opencti.graphql_calls() if c["operation"] == "MarkingDefinition"]
    assert [c["variables"]["id"] for c in lookups] == [partner]

    # Raised to TLP:RED: taken back from Sekoia. Lowered to TLP:GREEN: pushed.
    raised, lowered = indicators[3], indicators[0]
    opencti.update({**raised, "object_marking_refs": [red]})
    opencti.update({**lowered, "object_marking_refs": [green]})
    _wait_active(sekoia, _values([lowered, *indicators[4:]]))
    assert runtime.metric("sis_values_revoked_total") >= len(_values([raised]))
    assert re.search(r'"valuesSkipped"|marking-not-allowed', log)
    code, _ = runtime.terminate()
    assert code == 0, runtime.log()[-3000:]
