"""How the demo talks to the user: step headings, a live progress bar, aligned tables.

Output is plain text. On a terminal the progress bar redraws itself in place; otherwise (a log, a
pipe, CI) it prints a line only when the count changed and a few seconds passed, so logs stay short.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO


class Console:
    """Numbered steps and indented detail lines on one stream."""

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.stream = stream
        self._step = 0
        self._began = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the console was created (the demo's wall time so far)."""
        return time.monotonic() - self._began

    def step(self, title: str) -> None:
        """A new step: ``[3] title`` with the elapsed time, after a blank line."""
        self._step += 1
        self.line(f"\n[{self._step}] {title}  (t+{self.elapsed():.1f}s)")

    def line(self, text: str = "") -> None:
        """One line, flushed at once (the demo runs for a while; output must not lag)."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def detail(self, text: str) -> None:
        """An indented line under the current step (multi-line text is indented as a block)."""
        for part in text.splitlines() or [""]:
            self.line(f"    {part}")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        """An aligned table under the current step."""
        for line in format_table(headers, rows):
            self.detail(line)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Columns padded to their widest cell; the last column is not padded."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]


class ProgressBar:
    """``[#######.......]  57/107 values in the collection  <note>``."""

    def __init__(self, total: int, label: str, stream: TextIO = sys.stdout, width: int = 32) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream
        self.width = width
        self.live = stream.isatty()
        self._shown: tuple[int, str] | None = None
        self._last_print = 0.0
        self._last_len = 0

    def render(self, done: int, note: str = "") -> str:
        """The bar as text (no I/O)."""
        filled = min(self.width, self.width * done // self.total)
        bar = "#" * filled + "." * (self.width - filled)
        text = f"    [{bar}] {done:>{len(str(self.total))}}/{self.total} {self.label}"
        return f"{text}  {note}" if note else text

    def update(self, done: int, note: str = "") -> None:
        """Show the new count (a redraw on a terminal, a throttled new line elsewhere)."""
        if (done, note) == self._shown:
            return
        now = time.monotonic()
        text = self.render(done, note)
        if self.live:
            self.stream.write("\r" + text.ljust(self._last_len))
            self._last_len = len(text)
        elif done != (self._shown or (-1, ""))[0] and (now - self._last_print >= 2.0 or done >= self.total):
            self.stream.write(text + "\n")
            self._last_print = now
        else:
            return
        self._shown = (done, note)
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line on a terminal."""
        if self.live and self._shown is not None:
            self.stream.write("\n")
            self.stream.flush()
