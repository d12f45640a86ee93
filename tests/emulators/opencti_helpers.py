"""Helpers for the OpenCTI emulator tests: a raw SSE reader and a pycti probe subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

PROBE_SCRIPT = Path(__file__).with_name("opencti_stream_probe.py")
LOOPBACK_NO_PROXY = "127.0.0.1,localhost"


@dataclass
class SseEvent:
    """One parsed SSE event."""

    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        """The data decoded as JSON."""
        return json.loads(self.data)


class SseReader:
    """Reads an SSE response in a background thread so tests can wait with timeouts."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.events: queue.Queue[SseEvent | None] = queue.Queue()
        self.end_error: BaseException | None = None
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @classmethod
    def open(
        cls, url: str, token: str, last_event_id: str | None = "0-0", **headers: str
    ) -> tuple[requests.Response, SseReader]:
        """GET a stream URL and start reading it (the response is returned for status checks)."""
        sent = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            sent["Last-Event-ID"] = last_event_id
        sent.update({name.replace("_", "-"): value for name, value in headers.items()})
        response = requests.get(url, headers=sent, stream=True, timeout=(5, 30))
        return response, cls(response)

    def _run(self) -> None:
        buffer = ""
        try:
            if self.response.status_code != 200:
                return
            for chunk in self.response.iter_content(chunk_size=None, decode_unicode=True):
                buffer += chunk
                while "\n\n" in buffer:
                    raw, buffer = buffer.split("\n\n", 1)
                    self.events.put(_parse(raw))
        except Exception as exc:  # the connection being cut is an expected outcome in fault tests
            self.end_error = exc
        finally:
            self.ended.set()
            self.events.put(None)

    def next(self, timeout: float = 5.0) -> SseEvent | None:
        """The next event, or None at end of stream; fails the test on timeout."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no SSE event within {timeout}s") from None

    def take(
        self, count: int, timeout: float = 10.0, skip: tuple[str, ...] = ("heartbeat", "connected")
    ) -> list[SseEvent]:
        """The next `count` events whose name is not in `skip`."""
        deadline = time.monotonic() + timeout
        out: list[SseEvent] = []
        while len(out) < count:
            event = self.next(max(0.01, deadline - time.monotonic()))
            if event is None:
                raise AssertionError(f"stream ended after {len(out)} of {count} events")
            if event.event not in skip:
                out.append(event)
        return out

    def close(self) -> None:
        """Close the response (the reader thread then ends)."""
        self.response.close()


def _parse(raw: str) -> SseEvent:
    event, data, event_id = "message", [], None
    for line in raw.splitlines():
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
    return SseEvent(event, "\n".join(data), event_id)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `predicate` until it returns something truthy; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class ProbeProcess:
    """The pycti probe connector in a subprocess; collects its tagged JSON lines."""

    def __init__(self, url: str, token: str, connector_id: str, stream_id: str, **env: str) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by kill()
        full_env = dict(
            os.environ,
            OPENCTI_URL=url,
            OPENCTI_TOKEN=token,
            CONNECTOR_ID=connector_id,
            CONNECTOR_TYPE="STREAM",
            CONNECTOR_NAME="emulator-probe",
            CONNECTOR_SCOPE="indicator",
            CONNECTOR_LIVE_STREAM_ID=stream_id,
            CONNECTOR_LOG_LEVEL="error",
            NO_PROXY=LOOPBACK_NO_PROXY,
            no_proxy=LOOPBACK_NO_PROXY,
            PYTHONUNBUFFERED="1",
        )
        full_env.update(env)
        self.process = subprocess.Popen(
            [sys.executable, str(PROBE_SCRIPT)],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue  # pycti's SSE client prints reconnect errors on stdout
            if isinstance(item, dict) and "probe" in item:
                with self._lock:
                    self.lines.append(item)

    def events(self) -> list[dict[str, Any]]:
        """Events received by the connector callback so far, in order."""
        with self._lock:
            return [line for line in self.lines if line["probe"] == "event"]

    def wait_events(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Wait until at least `count` events arrived; returns all of them."""
        with contextlib.suppress(AssertionError):  # reported below with the connector's stderr
            wait_for(lambda: len(self.events()) >= count or self.process.poll() is not None, timeout, "")
        events = self.events()
        assert len(events) >= count, f"got {len(events)} of {count} events\n{self.diagnostics()}"
        return events

    def diagnostics(self) -> str:
        """Exit status and the tail of the connector's stderr, for failure messages."""
        self._stderr.seek(0)
        return f"probe exit={self.process.poll()} stderr tail:\n{self._stderr.read()[-3000:]}"

    def kill(self) -> None:
        """Kill the connector abruptly (a crash: nothing is flushed or unregistered)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        self._stderr.close()
