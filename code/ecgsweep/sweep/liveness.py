"""Which runners are alive, and what happens to the runs of those that are not.

A runner on this host is alive while its pid (checked against its start time, against pid
reuse) runs and the machine has not rebooted since it registered. A runner on another host
sharing the store is alive while its heartbeat is recent. The runs of a dead runner are
marked crashed (grid points re-queued), keeping everything the run had written.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Any

from . import launch
from .bookkeeping import metric_fields, requeue
from .failures import read_tail
from .store import CRASHED, RUNNING, Store
from .executor import RunMetrics


def runner_alive(rr: dict | None, now: float, stale_after_s: float = 120.0) -> bool:
    """Whether a runner (a row of the runners table) still works on the sweep."""
    if rr is None or rr.get("ended_at"):
        return False
    if rr["host"] == socket.gethostname():
        boot = launch.boot_id()
        if rr.get("boot_id") and boot and rr["boot_id"] != boot:
            return False
        return launch.pid_alive(rr["pid"], rr.get("pid_start"))
    return now - rr["heartbeat_at"] < stale_after_s


def _same_machine(rr: dict | None) -> bool:
    boot = launch.boot_id()
    return (rr is not None and rr["host"] == socket.gethostname()
            and (not rr.get("boot_id") or rr["boot_id"] == boot))


def salvage(store: Store, row: dict, rr: dict | None, *, wandb_dir: str, cwd: str,
            metric: str | None, goal: str) -> None:
    """Keep what a dead runner's run wrote (its logged rows, summary and output tail), and
    stop its program if it still runs on this machine (its guard normally has: see guard.py)."""
    metrics = RunMetrics(wandb_dir, row["run_id"], cwd)
    metrics.files_dir = Path(row["files_dir"]) if row.get("files_dir") else None
    rows = metrics.new_rows()  # everything the run logged, up to any damage
    have = store.history_length(row["run_id"])
    fields: dict[str, Any] = {}
    if len(rows) > have:
        store.add_history(row["run_id"], have, rows[have:])
        fields["epochs"] = len(rows)
    if metrics.files_dir is not None:
        fields.update(files_dir=str(metrics.files_dir), summary=metrics.summary())
        fields.update(metric_fields(rows, metrics.summary(), metric, goal))
    if row.get("log_path"):
        fields["output_tail"] = read_tail(Path(row["log_path"]))
    if _same_machine(rr) and launch.pid_alive(row.get("pid"), row.get("pid_start")):
        try:
            os.killpg(row["pid"], signal.SIGTERM)
        except OSError:
            pass
    store.update_run(row["run_id"], **fields)


def reap_dead(store: Store, me: str, now: float, *, stale_after_s: float, requeue_grid: bool,
              wandb_dir: str, cwd: str, metric: str | None, goal: str) -> list[str]:
    """Mark the running runs of dead runners crashed; returns one message per run."""
    msgs = []
    with store.transaction():
        runners = store.runners()
        dead = set()
        for row in store.runs(RUNNING):
            rr = runners.get(row["owner"])
            if row["owner"] == me or runner_alive(rr, now, stale_after_s):
                continue
            if rr is not None:
                dead.add(rr["runner_id"])
            salvage(store, row, rr, wandb_dir=wandb_dir, cwd=cwd, metric=metric, goal=goal)
            why = (f"its runner {row['owner']} died" if rr is not None
                   else f"its runner {row['owner']} is unknown")
            store.update_run(row["run_id"], state=CRASHED, ended_at=now, runner_lost=1,
                             error=f"crashed: {why} while it was running")
            if requeue_grid:
                requeue(store, row["run_id"])
            msgs.append(f"{row['run_id']} marked crashed ({why})"
                        + ("; grid point re-queued" if requeue_grid else ""))
        for rid in dead:
            store.mark_runner_lost(rid, now)
    return msgs
