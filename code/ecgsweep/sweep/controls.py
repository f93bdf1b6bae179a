"""Steering a sweep from any shell, with W&B's meanings (``wandb sweep --stop`` and so on).

- ``stop``: no new runs start; the running ones finish.
- ``cancel``: no new runs start; the running ones are stopped (SIGTERM, then SIGKILL after
  the kill delay, as hyperband stops a run) and recorded ``stopped``.
- ``pause``: no new runs start until ``resume``; the running ones go on.
- ``resume``: a paused sweep starts runs again. It un-pauses only, as W&B's does: a stopped
  or cancelled sweep stays so (a new sweep can start from its runs with ``--prior-runs``).

The control is recorded in the sweep's store (meta key ``control``: state, when, by whom);
every runner sharing the store reads it each turn, and taking a new run checks it inside the
same transaction, so no runner starts a run after the control is recorded.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from dataclasses import dataclass

from .errors import UserError
from .hints import continue_command, store_option, sweep_command
from .store import DEFAULT_STORE, RUNNING, Store

STOP, CANCEL, PAUSE, RESUME = "stop", "cancel", "pause", "resume"
ACTIONS = (STOP, CANCEL, PAUSE, RESUME)
STOPPED, CANCELLED, PAUSED, STOPPING = "stopped", "cancelled", "paused", "stopping"
ENDING = (STOPPED, CANCELLED)  # controls after which the sweep starts no run again
STATE_AFTER = {STOP: STOPPED, CANCEL: CANCELLED, PAUSE: PAUSED, RESUME: None}
META_KEY = "control"

# What each control does, as its command's help and its confirmation say it.
EFFECT = {
    STOP: "no new runs start; the running ones finish",
    CANCEL: "no new runs start; the running ones are stopped (SIGTERM, then SIGKILL after the "
            "kill delay) and recorded stopped",
    PAUSE: "no new runs start until `resume`; the running ones go on",
    RESUME: "a paused sweep starts runs again",
}
RESUME_IS_NOT_RESTART = ("not the run form's `--resume ID`, which continues a sweep in this "
                         "process after a kill")


def help_text(action: str) -> str:
    """The control command's description: what it does, and W&B's flag of the same meaning."""
    text = f"{EFFECT[action]} (W&B's `wandb sweep --{action}`)."
    if action == RESUME:
        text = ("Let a paused sweep start runs again (W&B's `wandb sweep --resume`); "
                f"{RESUME_IS_NOT_RESTART}.")
    return text[0].upper() + text[1:]


@dataclass(frozen=True)
class Control:
    state: str  # stopped, cancelled or paused
    at: float
    by: str

    def says(self) -> str:
        """``stopped by ann@node1 at 2026-12-02 10:31:07``."""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.at))
        return f"{self.state} by {self.by} at {when}"

    def as_dict(self) -> dict:
        return {"state": self.state, "at": self.at, "by": self.by}


def of_meta(meta: dict) -> Control | None:
    """The sweep's control, from its meta; None when it runs as it was started."""
    raw = meta.get(META_KEY)
    if not isinstance(raw, dict) or raw.get("state") not in (STOPPED, CANCELLED, PAUSED):
        return None
    return Control(raw["state"], float(raw.get("at") or 0.0), str(raw.get("by") or "?"))


def current(store: Store) -> Control | None:
    return of_meta({META_KEY: store.get(META_KEY)})


def who() -> str:
    """user@host of the shell that gives the control."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's user, say)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def transition(state: str | None, action: str, sweep_id: str) -> str | None:
    """The control state after ``action`` on a sweep in control state ``state`` (None: as
    started); raises UserError for a control that cannot apply (resuming a stopped sweep,
    pausing a cancelled one)."""
    if action == RESUME and state in ENDING:
        raise UserError(f"sweep {sweep_id} is {state}: `resume` lets a paused sweep start runs "
                        "again, and a stopped or cancelled sweep stays so, as on W&B; start a "
                        f"new sweep with --prior-runs {sweep_id} to build on its runs")
    if action == PAUSE and state in ENDING:
        raise UserError(f"sweep {sweep_id} is {state}: it starts no runs anyway, so there is "
                        "nothing to pause")
    if action == STOP and state == CANCELLED:
        return CANCELLED  # cancelling already stopped it, and more
    return STATE_AFTER[action]


def check_not_finished(store: Store, action: str) -> None:
    """A sweep that finished by itself (run cap, grid done, target) starts no runs: a control
    would change nothing but the state it shows, so it is refused saying so."""
    if store.get("state") != "finished":
        return
    why = store.get("finished_because")
    raise UserError(f"sweep {store.get('sweep_id')} has already finished"
                    + (f" ({why})" if why else "") + f": it starts no runs, so there is "
                    f"nothing to {action}")


def apply(store: Store, action: str, by: str, now: float) -> tuple[Control | None, bool]:
    """Record ``action`` on the store's sweep; returns (the control now, whether it changed)."""
    with store.transaction():
        before = current(store)
        if before is None:  # a control's own end (stopped, cancelled) is the transition's
            check_not_finished(store, action)
        after = transition(before.state if before else None, action, store.get("sweep_id"))
        if after == (before.state if before else None):
            return before, False
        control = Control(after, now, by) if after else None
        store.set(META_KEY, control.as_dict() if control else None)
    return control, True


def shown_state(meta: dict, rows: list[dict]) -> str:
    """The sweep's state as status shows it: a control's (``stopping`` while runs still run
    after a stop), else the runners' (running, finished, failed)."""
    control = of_meta(meta)
    if control is None:
        return meta.get("state", "running")
    if control.state == STOPPED and any(r["state"] == RUNNING for r in rows):
        return STOPPING
    return control.state


def resume_command(sweep_id: str, store_root: str) -> str:
    """The command that lets a paused sweep start runs again."""
    return f"{sweep_command('resume')} {sweep_id}{store_option(store_root)}"


def runner_line(sweep_id: str, control: Control | None, store_root: str, live: int) -> str:
    """What a runner prints once when it sees the sweep's control change."""
    if control is None:
        return f"sweep {sweep_id} resumed: runs start again"
    if control.state == PAUSED:
        return (f"sweep {sweep_id} {control.says()}: no new runs until "
                f"`{resume_command(sweep_id, store_root)}`; {live} live run(s) go on")
    if control.state == CANCELLED:
        return f"sweep {sweep_id} {control.says()}: stopping its {live} live run(s)"
    return (f"sweep {sweep_id} {control.says()}: no new runs; "
            f"{live} live run(s) finish, then this runner exits")


def confirmation(sweep_id: str, action: str, control: Control | None, changed: bool,
                 running: int, runner_alive: bool, store_root: str = DEFAULT_STORE) -> str:
    """What the control command prints: what was recorded and what follows."""
    if not changed:
        return (f"sweep {sweep_id} is not paused: nothing changed" if control is None
                else f"sweep {sweep_id} is already {control.says()}: nothing changed")
    recorded = f"sweep {sweep_id} {control.says()}" if control else f"sweep {sweep_id} resumed"
    if not runner_alive:
        follow = ("no runner is working on it; recorded for the next runner "
                  f"(`{continue_command(sweep_id, store_root)}`)")
        if control is not None and control.state in ENDING:
            follow = ("no runner is working on it; recorded: a later `--resume "
                      f"{sweep_id}` starts no run")
        return f"{recorded}: {EFFECT[action]}; {follow}"
    return (f"{recorded}: {EFFECT[action]}; {running} run(s) running; its runners act on it "
            "at their next turn")
