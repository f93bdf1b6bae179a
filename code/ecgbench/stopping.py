"""The bench's stop, as the sections running in threads see it: the main thread takes
Ctrl-C (and SIGTERM and SIGHUP, ``cli.stop_signals_interrupt``) and sets ``requested``;
a threaded section checks it between its steps and ends there, stopping what it started."""

from __future__ import annotations

import threading

requested = threading.Event()


class Stopped(Exception):
    """The bench was stopped: a threaded section ends here."""


def check() -> None:
    """Raise ``Stopped`` once the bench has been stopped."""
    if requested.is_set():
        raise Stopped("the bench was stopped")
