"""The sweep's records in the store: creating a sweep, claiming runs, recording what they
logged and how they ended, and the sweep-level decisions that follow from those records.

Every function here takes the store and plain values; the runner's loop calls them, each
inside one transaction, so that runners sharing a store never take the same grid point.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config as sweep_config
from .engine import metric_of, propose, stop_decisions
from .failures import same_error_key
from .store import (FAILED, FINISHED, PENDING, RUNNING, STOPPED, Store, db_path,
                    require_valid_id)
from .wandb_log import finite_number


def new_id() -> str:
    """8 lowercase base-36 characters, like wandb's run and sweep IDs."""
    from wandb.sdk.lib.runid import generate_id

    return generate_id(8)


def create_or_join(root: str | Path, cfg: dict, yaml_text: str, source: str, *,
                   sweep_id: str | None = None, count: int | None = None,
                   project: str | None = None, online: bool = False,
                   syncable: bool = False) -> tuple[Store, bool]:
    """Create a sweep in the store (or join the one with ``sweep_id`` and the same YAML).

    Returns (store, created).
    """
    if sweep_id is not None:
        require_valid_id(sweep_id, "--sweep-id")
    if sweep_id is None:
        sweep_id = new_id()
        while db_path(root, sweep_id).exists():
            sweep_id = new_id()
    store = Store(db_path(root, sweep_id), create=True)
    with store.transaction():
        existing = store.get("yaml")
        if existing is not None:
            if existing != yaml_text:
                raise sweep_config.ConfigError(
                    f"sweep {sweep_id} in {root} was started with a different config; continue"
                    f" it with --resume {sweep_id}, or pick another --sweep-id")
            if count is not None:
                store.set("run_cap", count)
            return store, False
        meta = {"sweep_id": sweep_id, "yaml": yaml_text, "config": cfg, "source": source,
                "created_at": time.time(), "run_cap": count if count is not None else cfg.get("run_cap"),
                "project": project or cfg.get("project"), "entity": cfg.get("entity"),
                "online": bool(online), "syncable": bool(syncable), "state": "running"}
        for key, value in meta.items():
            store.set(key, value)
    return store, True


# ----------------------------------------------------------------------------- claiming


@dataclass
class NoMore:
    """Why a runner gets no run: the sweep is done (``failed`` False) or failed."""
    reason: str
    failed: bool = False


def claim(store: Store, engine_cfg: dict, me: str, slot: int, now: float,
          stopping: str | None) -> tuple[str, dict] | NoMore:
    """The next run for this runner: a re-queued grid point first, else a new proposal.

    ``stopping`` is set once the runner knows no new proposal should be made; re-queued
    points are still taken then.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with store.transaction():
            if store.get("state") == "failed":
                return NoMore(store.get("failure") or "the sweep failed", failed=True)
            pending = store.runs("state = ?", (PENDING,))
            if pending:
                r = pending[0]
                store.update_run(r["run_id"], state=RUNNING, owner=me, slot=slot,
                                 started_at=now, heartbeat_at=now)
                return r["run_id"], r["params"]
            if stopping:
                return NoMore(stopping)
            reached = store.get("target_reached")
            if reached:
                return NoMore(reached)
            cap = store.get("run_cap")
            if cap is not None and store.count_runs() >= cap:
                return NoMore(f"run cap of {cap} reached")
            proposal = propose(engine_cfg, store.runs(), store.histories())
            if proposal is None:
                return NoMore("grid exhausted: every point has a run")
            params, info = proposal
            run_id = new_id()
            while store.run(run_id) is not None:
                run_id = new_id()
            store.insert_run(run_id, params, state=RUNNING, owner=me, search_info=info, slot=slot)
            return run_id, params


def requeue(store: Store, run_id: str) -> None:
    """Give a grid point whose run was lost a new pending run."""
    row = store.run(run_id)
    if row is None:
        return
    store.update_run(run_id, requeued=1)
    store.insert_run(new_id(), row["params"], state=PENDING, retry_of=run_id)


# ----------------------------------------------------------------------------- metrics


def metric_fields(rows: list[dict], summary: dict | None, metric: str | None, goal: str,
                  best: float | None = None) -> dict[str, Any]:
    """The run columns the sweep's metric fills: best so far and last logged value."""
    if not metric:
        return {}
    value = metric_of(rows, summary, metric, goal)
    if best is not None:
        value = best if value is None else (max(best, value) if goal == "maximize"
                                            else min(best, value))
    fields: dict[str, Any] = {} if value is None else {"metric_best": value}
    logged = [r[metric] for r in rows if metric in r]
    if logged:
        fields["metric_last"] = finite_number(logged[-1])
    return fields


def target_reached(engine_cfg: dict, value: float | None) -> bool:
    """Whether a run's metric reached ``metric.target`` (the server then ends the sweep)."""
    metric = engine_cfg.get("metric") or {}
    target = metric.get("target")
    if value is None or not isinstance(target, (int, float)):
        return False
    return value >= target if metric.get("goal") == "maximize" else value <= target


def note_target(store: Store, engine_cfg: dict, run_id: str, value: float | None) -> str | None:
    """Record that a run reached ``metric.target``: no runner proposes a new run after it."""
    if not target_reached(engine_cfg, value) or store.get("target_reached"):
        return None
    metric = engine_cfg["metric"]
    msg = f"metric.target reached: run {run_id} logged {metric['name']} {value:.4g} (target {metric['target']:g})"
    store.set("target_reached", msg)
    return msg


def flag_stops(store: Store, engine_cfg: dict) -> None:
    """Ask hyperband which runs lag, and flag them with the reason (ValueError: cannot)."""
    with store.transaction():
        stops = stop_decisions(engine_cfg, store.runs(), store.histories())
        for run_id, reason in stops.items():
            store.update_run(run_id, should_stop=1, stop_reason=reason)


def flagged_runs(store: Store, me: str) -> dict[str, str]:
    """This runner's running runs that are flagged to stop, with the reason."""
    rows = store.conn.execute(
        "SELECT run_id, stop_reason FROM runs WHERE owner = ? AND state = ? AND should_stop = 1",
        (me, RUNNING)).fetchall()
    return {r["run_id"]: r["stop_reason"] or "stop requested" for r in rows}


# ----------------------------------------------------------------------------- failures


def fail_sweep(store: Store, msg: str) -> None:
    store.set("state", "failed")
    store.set("failure", msg)


def repeated_failure(store: Store, n: int) -> str | None:
    """The message that stops the sweep when its last ``n`` runs failed the same way."""
    last = store.conn.execute(
        "SELECT state, error FROM runs WHERE state IN (?, ?, ?) AND ended_at IS NOT NULL "
        "ORDER BY ended_at DESC LIMIT ?", (FINISHED, STOPPED, FAILED, n)).fetchall()
    if (len(last) == n and all(r["state"] == FAILED for r in last)
            and len({same_error_key(r["error"]) for r in last}) == 1):
        return f"{n} runs in a row failed with the same error: {last[0]['error']}"
    return None


def metric_never_logged(store: Store, run_id: str, metric: str, hist: list[dict],
                        summary: dict | None) -> str | None:
    """When no run has logged the sweep's metric yet, note it on this finished run and
    return the message that stops the sweep: its search would run blind."""
    if store.conn.execute("SELECT 1 FROM runs WHERE metric_best IS NOT NULL LIMIT 1").fetchone():
        return None
    logged = sorted({k for h in hist for k in h if not k.startswith("_")}
                    | {k for k in (summary or {}) if not k.startswith("_")})
    note = (f"never logged the sweep's metric {metric!r}; it logged: "
            f"{', '.join(logged) if logged else 'nothing'}")
    store.update_run(run_id, error=note)
    return (f"run {run_id} finished but {note}. Fix metric.name in the YAML (or log "
            f"{metric!r} with wandb.log), then start a new sweep")


def mark_sweep_done(store: Store, why: str | None, interrupted: bool) -> None:
    """The sweep is finished once nothing runs or waits and no new run will be proposed."""
    if store.get("state") == "failed":
        return
    busy = store.conn.execute("SELECT COUNT(*) FROM runs WHERE state IN (?, ?)",
                              (RUNNING, PENDING)).fetchone()[0]
    if busy == 0 and why and not interrupted:
        store.set("state", "finished")
        store.set("finished_because", why)
