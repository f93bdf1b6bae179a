"""The bench's stop, and the programs it launches.

The main thread takes Ctrl-C (and SIGTERM and SIGHUP, ``cli.stop_signals_interrupt``) as
KeyboardInterrupt and sets ``requested``; a threaded section checks it between its steps and
ends there, stopping what it started. ``launched`` starts a program so that it is stopped and
waited for however the block around it ends: a stop signal that comes while the program
starts, or while it is being stopped, is held until the program is known or gone, then
raised. ``killed_on_stop`` kills a program once the bench is stopped, for a thread that
blocks reading the program's output."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from ecgsweep.sweep.guard import STOP_SIGNALS

WATCH_S = 0.2  # how often a watcher looks at the stop flag and the clock
requested = threading.Event()


class Stopped(Exception):
    """The bench was stopped: a threaded section ends here."""


def check() -> None:
    """Raise ``Stopped`` once the bench has been stopped."""
    if requested.is_set():
        raise Stopped("the bench was stopped")


class HeldSignals:
    """While held (main thread only; no other thread sees a signal's exception), a stop
    signal is noted instead of raised; ``release`` puts the handlers back and raises
    KeyboardInterrupt for a noted one."""

    def __init__(self) -> None:
        self.noted: list[int] = []
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self._note) for sig in STOP_SIGNALS
                             if signal.getsignal(sig) is not signal.SIG_IGN}

    def _note(self, signum: int, frame: object) -> None:
        self.noted.append(signum)

    def release(self) -> None:
        previous, self.previous = self.previous, {}
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if previous and self.noted:
            raise KeyboardInterrupt


def stop_and_wait(proc: subprocess.Popen, stop: Callable[[subprocess.Popen], None]) -> None:
    """``stop(proc)`` and a wait for it, with stop signals held: a second Ctrl-C does not
    leave it running."""
    held = HeldSignals()
    try:
        if proc.poll() is None:
            stop(proc)
        proc.wait()
    finally:
        held.release()


@contextmanager
def launched(argv: list[str], stop: Callable[[subprocess.Popen], None] = subprocess.Popen.kill,
             **popen_kwargs: Any) -> Iterator[subprocess.Popen]:
    """``subprocess.Popen(argv, **popen_kwargs)``, stopped (``stop``, default SIGKILL) and
    waited for once the block ends, however it ends."""
    proc = None
    held = HeldSignals()
    try:
        proc = subprocess.Popen(argv, **popen_kwargs)
        held.release()  # a stop that came while it started is raised here, with proc known
        yield proc
    finally:
        held.release()
        if proc is not None:
            stop_and_wait(proc, stop)


@contextmanager
def killed_on_stop(proc: subprocess.Popen, timeout_s: float) -> Iterator[None]:
    """Within: ``proc`` is killed once the bench is stopped or ``timeout_s`` has passed, so
    a thread blocked on its output goes on."""
    ended = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while not ended.wait(WATCH_S):
            if requested.is_set() or time.monotonic() > deadline:
                proc.kill()
                return

    watcher = threading.Thread(target=watch, name="bench-stop-watcher", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        ended.set()
        watcher.join()
