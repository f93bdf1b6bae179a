"""Progress of long work (a report, an evaluation, a conversion, an epoch) on a terminal.

Work that ends within ``delay_s`` shows nothing. Longer work shows, when stderr is a
terminal, a rich bar naming the step under way, which goes away when the work is done.
Off a terminal (a log file, a pipe, CI) nothing is shown: a log keeps only the lines the
work prints itself (one per epoch, the report's path, the warnings).
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

DELAY_S = 2.0  # work shorter than this shows no progress


class Progress:
    """``with Progress("report", total=6) as p: p.step("figures"); ...``: ``step`` says a
    step begins (the one before is done); ``advance`` counts units of one step's work."""

    def __init__(self, what: str, total: int, *, stream: TextIO | None = None,
                 delay_s: float = DELAY_S):
        self.what, self.total = what, max(1, int(total))
        self.stream = stream if stream is not None else sys.stderr
        self.delay_s = delay_s
        self.done, self.text = 0, ""
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._bar: Any = None
        self._task: Any = None
        self._closed = False

    def on_terminal(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def __enter__(self) -> "Progress":
        if self.on_terminal():
            self._timer = threading.Timer(self.delay_s, self._show_bar)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._closed = True
            if self._bar is not None:
                self._bar.stop()
                self._bar = None

    def step(self, text: str) -> None:
        """The next step, ``text``, begins."""
        with self._lock:
            if self.text:
                self.done = min(self.total, self.done + 1)
            self.text = text
            self._update()

    def advance(self, n: int = 1) -> None:
        """``n`` more units of the work done (for work counted in units, not named steps)."""
        with self._lock:
            self.done = min(self.total, self.done + n)
            self._update()

    def label(self) -> str:
        return f"{self.what}: {self.text}" if self.text else self.what

    def _update(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, description=self.label())

    def _show_bar(self) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, TextColumn,
                                   TimeElapsedColumn)
        from rich.progress import Progress as RichProgress

        with self._lock:
            if self._closed or self._bar is not None:
                return
            # What the work prints meanwhile goes above the bar; stdout only when it is this
            # terminal too (a redirected stdout stays the file it was sent to).
            self._bar = RichProgress(TextColumn("{task.description}", markup=False),
                                     BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                     console=Console(file=self.stream), transient=True,
                                     redirect_stdout=sys.stdout.isatty(),
                                     redirect_stderr=self.stream is sys.stderr)
            self._task = self._bar.add_task(self.label(), total=self.total,
                                            completed=self.done)
            self._bar.start()
