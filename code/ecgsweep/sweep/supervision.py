"""The runs one runner supervises: how each ended, and the SIGTERM -> SIGKILL escalation.

A stop (hyperband, or the user's Ctrl-C) sends SIGTERM as ``wandb agent`` does, then SIGKILL
once ``kill_delay`` seconds have passed, each to every process of the run (its process group,
see ``guard``). Signals to the runner itself are only counted here; the loop acts on them
between two turns: the first stops the runs, every further one kills them.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from typing import Any, Callable

from .executor import RunHandle, RunSpec
from .guard import handled_stop_signals
from .failures import classify_exit, stopped_from_outside
from .store import CRASHED, FAILED, FINISHED, STOPPED

# How a run's error begins when a Ctrl-C or kill on the run itself, not the sweep, ended it.
OUTSIDE_STOP = "stopped from outside the sweep"


def kill_delay(option_s: float | None) -> float:
    """Seconds between SIGTERM and SIGKILL: the option, else the agent's own variable."""
    return option_s if option_s is not None else float(os.environ.get("WANDB_AGENT_KILL_DELAY", "30"))


@dataclass
class LiveRun:
    handle: RunHandle
    slot: int
    spec: RunSpec
    steps: int = 0
    best: float | None = None
    stop_sent_at: float | None = None
    killed: bool = False
    stop_reason: str | None = None
    interrupted: bool = False
    epochs_total: int | None = None  # shown as "epoch 3/8" when the program logs `epoch`

    @classmethod
    def of(cls, handle: RunHandle, slot: int, spec: RunSpec, params: dict) -> "LiveRun":
        epochs = (params.get("epochs") or {}).get("value")
        return cls(handle, slot, spec, epochs_total=epochs if isinstance(epochs, int) else None)

    def stop(self, now: float, reason: str | None = None) -> None:
        """SIGTERM, once."""
        if self.stop_sent_at is None:
            self.stop_sent_at, self.stop_reason = now, reason or self.stop_reason
            self.handle.terminate()

    def kill(self, now: float) -> None:
        self.killed = True
        self.stop_sent_at = self.stop_sent_at or now
        self.handle.kill()


def end_state(lr: LiveRun, rc: int, tail: str, lost: str | None,
              describe_exit: Callable[[int], str | None],
              ended_by_itself: bool = False,
              stopped_by_request: bool = False) -> tuple[str, str | None]:
    """(state, error) of a run whose program exited with ``rc`` (or that the executor lost);
    ``describe_exit``: what the program means by its own exit codes; ``ended_by_itself``:
    the program says the run reached its end before any stop reached it;
    ``stopped_by_request``: the program says the run ended early on a stop signal."""
    if lost:
        return CRASHED, f"crashed: {lost}"
    if lr.interrupted:
        if rc == 0 and ended_by_itself:  # the runner's stop came after the run's own end
            return FINISHED, None
        return CRASHED, f"runner interrupted; run ended with exit {rc}"
    if lr.stop_sent_at is not None:
        return STOPPED, None
    if stopped_from_outside(rc):  # Ctrl-C or a kill by hand: lost, as to an interrupted runner
        return CRASHED, f"{OUTSIDE_STOP}: {classify_exit(rc, tail, describe_exit)}"
    if rc == 0 and stopped_by_request:  # the same stop, which the program survived
        return CRASHED, (f"{OUTSIDE_STOP}: the run stopped early on a stop signal and "
                         "kept what it had trained (exit 0)")
    return (FINISHED, None) if rc == 0 else (FAILED, classify_exit(rc, tail, describe_exit))


def send_stops(live: dict[str, LiveRun], flagged: dict[str, str], now: float,
               kill_delay: float, event: Callable[[str], None]) -> None:
    """SIGTERM to newly flagged runs; SIGKILL to those that ignored it for ``kill_delay``."""
    for run_id, lr in live.items():
        if run_id in flagged and lr.stop_sent_at is None:
            event(f"{run_id} lags: {flagged[run_id]}; sending SIGTERM")
            lr.stop(now, flagged[run_id])
        elif lr.stop_sent_at is not None and not lr.killed and now > lr.stop_sent_at + kill_delay:
            event(f"{run_id} ignored SIGTERM for {kill_delay:g}s: SIGKILL")
            lr.kill(now)


def kill_all(live: dict[str, LiveRun], now: float) -> None:
    """SIGKILL every live run, recorded as lost with its runner."""
    for lr in live.values():
        lr.interrupted = True
        lr.kill(now)


class Interrupts:
    """Counts SIGINT, SIGTERM and SIGHUP sent to the runner (``guard.handled_stop_signals``):
    the first stops the runs, the second kills."""

    def __init__(self) -> None:
        self.count = self.handled = 0
        self.name = "signal"
        self._old: dict = {}

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._note) for s in handled_stop_signals()}

    def restore(self) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)

    def _note(self, signum: int, frame: Any) -> None:
        self.count += 1
        self.name = signal.Signals(signum).name

    def act(self, live: dict[str, LiveRun], now: float, event: Callable[[str], None]) -> None:
        """Stop (first signal) or kill (second) the live runs, once per signal."""
        if self.count == self.handled:
            return
        self.handled = self.count
        if self.count == 1:
            event(f"{self.name}: stopping the live runs (SIGTERM); send it again to kill them")
        else:
            event(f"{self.name} again: killing the live runs")
        if self.count > 1:
            return kill_all(live, now)
        for lr in live.values():
            lr.interrupted = True
            lr.stop(now)
