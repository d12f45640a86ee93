"""Logs never lose a line, whatever a value holds; metric labels come from closed sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

from connector_runtime import metrics
from connector_runtime.delivery.positions import PositionTracker
from connector_runtime.health import Health
from connector_runtime.stream.listener import StreamCallback

# Logged by a real process writing to a real pipe: the failure the issue saw ("--- Logging
# error ---", line lost) only shows when the line is encoded for the stream.
SCRIPT = textwrap.dedent(
    """
    import logging
    from connector_runtime.logs import setup_logging

    setup_logging("info", ["sekoia-secret-key-5e1f"])
    log = logging.getLogger("connector_runtime.test")
    log.info("surrogate %s", "evil\\ud800.com")
    log.info("refused", extra={"value": "evil\\udcff.com", "nested": {"v": ["\\ud800"]}})
    log.info("controls %s", "a\\x00b\\x1bc\\nd\\re\\u2028f\\x85g")
    log.info("big", extra={"value": "x" * 1_100_000})
    log.info("bad format %s %s", "only one")
    log.info("secret in text sekoia-secret-key-5e1f and escaped %r", "sekoia-secret-key-5e1f")
    try:
        raise ValueError("evil\\ud800 sekoia-secret-key-5e1f")
    except ValueError:
        log.exception("with traceback")
    log.info("last line")
    """
)


def _run(encoding: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    return subprocess.run([sys.executable, "-P", "-c", SCRIPT], env=env, capture_output=True, timeout=60)


def test_every_record_gives_exactly_one_parseable_line_whatever_it_holds() -> None:
    for encoding in ("utf-8", "ascii"):
        done = _run(encoding)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert b"Logging error" not in done.stderr, done.stderr.decode(errors="replace")
        raw_lines = done.stdout.split(b"\n")
        assert raw_lines[-1] == b""
        entries = [json.loads(line.decode("utf-8")) for line in raw_lines[:-1]]
        messages = [e["message"] for e in entries]
        assert len(entries) == 8, messages
        assert messages[0].startswith("surrogate evil") and messages[0].endswith(".com")
        assert entries[1]["value"].startswith("evil") and entries[1]["nested"]["v"]
        # Control characters stay inside the line, escaped by JSON or the formatter.
        assert "".join(done.stdout.decode("utf-8").splitlines(keepends=True)) == done.stdout.decode("utf-8")
        assert len(done.stdout.decode("utf-8").splitlines()) == 8
        assert messages[2].startswith("controls a")
        big = entries[3]["value"]
        assert len(big) < 20_000 and big.endswith("[truncated 1083616 chars]")
        assert "only one" in messages[4]
        assert "sekoia-secret-key-5e1f" not in done.stdout.decode("utf-8")
        assert "***" in messages[5] and "***" in entries[6]["exception"]
        assert messages[7] == "last line"


FOREIGN_HANDLER = textwrap.dedent(
    """
    import logging, sys, warnings
    from connector_runtime.logs import setup_logging

    setup_logging("info", ["opencti-token-91ab77"])
    # What pycti does while it starts: its own handler and formatter replace ours.
    logging.basicConfig(stream=sys.stderr, force=True, format="%(levelname)s %(message)s")
    log = logging.getLogger("api")
    try:
        raise RuntimeError("header 'Bearer opencti-token-91ab77' refused")
    except RuntimeError:
        log.exception("query failed")
    print("printed opencti-token-91ab77")
    warnings.warn("warned b3BlbmN0aS10b2tlbi05MWFiNzc")
    raise SystemExit("exit opencti%2Dtoken%2D91ab77")
    """
)


def test_output_that_bypasses_our_formatter_is_masked_too() -> None:
    done = subprocess.run([sys.executable, "-P", "-c", FOREIGN_HANDLER], capture_output=True, timeout=60)
    output = (done.stdout + done.stderr).decode()
    assert "query failed" in output and "printed" in output and "warned" in output and "exit" in output
    for form in ("opencti-token-91ab77", "b3BlbmN0aS10b2tlbi05MWFiNzc", "opencti%2Dtoken%2D91ab77"):
        assert form not in output, output


def _event(name: str, data: str = "{}") -> SimpleNamespace:
    return SimpleNamespace(id="1700000000000-0", event=name, data=data)


def test_the_event_label_comes_from_a_closed_set() -> None:
    callback = StreamCallback(PositionTracker(None), engine=None, health=Health())  # type: ignore[arg-type]
    for name in ("evil\ud800.com", "x" * 500, "heartbeat-2", "create", "weird"):
        callback(_event(name))
    labels = {
        (sample.labels["event"], sample.labels["action"])
        for metric in metrics.EVENTS.collect()
        for sample in metric.samples
    }
    events = {event for event, _ in labels}
    actions = {action for _, action in labels}
    assert events <= metrics.EVENT_NAMES | {"other"}
    assert "other" in events
    assert all(
        a == "ignored:other"
        or a.removeprefix("ignored:") in metrics.IGNORE_REASONS
        or not a.startswith("ignored:")
        for a in actions
    )
    assert "ignored:other" in actions
    assert metrics.event_label("update") == "update"
    assert metrics.ignored_label("event-evil") == "ignored:other"
