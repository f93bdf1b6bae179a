"""The sweep's records in the store: creating a sweep, claiming runs, recording what they
logged and how they ended, and the sweep-level decisions that follow from those records.

Every function here takes the store and plain values and decides; the store's named methods
do the reading and writing (all SQL is ``store``'s). The runner's loop calls them, each inside
one transaction, so that runners sharing a store never take the same grid point.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import controls, launch
from .engine import metric_of, propose, stop_decisions
from .errors import ConfigError
from .failures import same_error_key
from .hints import continue_command
from .ranking import better, metric_and_goal
from .store import (CRASHED, FAILED, FINISHED, PENDING, RUNNING, STOPPED, Store, db_path,
                    require_valid_id, sqlite_errors, sweep_dir)
from .wandb_log import LogError, RunLog, finite_number, run_log_path


def new_id() -> str:
    """8 lowercase base-36 characters, like wandb's run and sweep IDs."""
    from wandb.sdk.lib.runid import generate_id

    return generate_id(8)


def create_or_join(root: str | Path, cfg: dict, yaml_text: str, source: str, *,
                   sweep_id: str | None = None, count: int | None = None,
                   project: str | None = None, online: bool = False,
                   syncable: bool = False,
                   prior: list[dict] | None = None) -> tuple[Store, bool]:
    """Create a sweep in the store (or join the one with ``sweep_id`` and the same YAML);
    ``prior``: the ``prior_runs`` rows its search starts from, fixed at its creation.

    Returns (store, created).
    """
    if sweep_id is not None:
        require_valid_id(sweep_id, "--sweep-id")
    if sweep_id is None:
        sweep_id = new_id()
        while db_path(root, sweep_id).exists():
            sweep_id = new_id()
    new_folder = not sweep_dir(root, sweep_id).exists()
    store = Store(db_path(root, sweep_id), create=True)
    try:
        with sqlite_errors(store.path), store.transaction():
            existing = store.get("yaml")
            if existing is not None:
                if existing != yaml_text:
                    raise ConfigError(
                        f"sweep {sweep_id} in {root} was started with a different config; "
                        f"continue it with `{continue_command(sweep_id, root)}`, or pick "
                        "another --sweep-id")
                had = sorted(r["run_id"] for r in store.prior_runs())
                if prior is not None and sorted(r["run_id"] for r in prior) != had:
                    raise ConfigError(
                        f"sweep {sweep_id} in {root} exists with "
                        f"{len(had) or 'no'} prior run(s); they are fixed when a sweep is "
                        "created: drop --prior-runs to join it, or pick another --sweep-id")
                if count is not None:
                    store.set("run_cap", count)
                return store, False
            meta = {"sweep_id": sweep_id, "yaml": yaml_text, "config": cfg, "source": source,
                    "created_at": time.time(),
                    "run_cap": count if count is not None else cfg.get("run_cap"),
                    "project": project or cfg.get("project"), "entity": cfg.get("entity"),
                    "online": bool(online), "syncable": bool(syncable), "state": "running"}
            for key, value in meta.items():
                store.set(key, value)
            store.add_prior_runs(prior or [])
    except BaseException:
        store.close()
        if new_folder:  # a sweep whose creation failed leaves no folder behind
            shutil.rmtree(store.folder, ignore_errors=True)
        raise
    return store, True


# ----------------------------------------------------------------------------- claiming


@dataclass
class NoMore:
    """Why a runner gets no run: the sweep is done (``failed`` False) or failed, or it is
    paused (``paused``: runs start again once it is resumed)."""
    reason: str
    failed: bool = False
    paused: bool = False


def _ended_anyway(store: Store) -> str | None:
    """Why a paused sweep would start no run even once resumed (its run cap or metric
    target reached, nothing re-queued), so its runner can end; None otherwise."""
    if store.runs(PENDING):
        return None
    if store.get("target_reached"):
        return store.get("target_reached")
    cap = store.get("run_cap")
    return f"run cap of {cap} reached" if cap is not None and store.count_runs() >= cap else None


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
            control = controls.current(store)
            if control is not None:  # recorded by stop, cancel or pause from any shell
                paused = control.state == controls.PAUSED
                ended = _ended_anyway(store) if paused else None
                return NoMore(ended) if ended else NoMore(f"sweep {control.says()}", paused=paused)
            pending = store.runs(PENDING)
            if pending:
                r = pending[0]
                store.update_run(r["run_id"], state=RUNNING, owner=me, slot=slot,
                                 started_at=now, heartbeat_at=now)
                return r["run_id"], r["params"]
            if stopping:
                return NoMore(stopping)
            ended = _ended_anyway(store)
            if ended:
                return NoMore(ended)
            proposal = propose(engine_cfg, *with_prior_runs(store))
            if proposal is None:
                return NoMore("grid exhausted: every point has a run")
            params, info = proposal
            run_id = new_id()
            while store.run(run_id) is not None:
                run_id = new_id()
            store.insert_run(run_id, params, state=RUNNING, owner=me, search_info=info, slot=slot)
            return run_id, params


def with_prior_runs(store: Store) -> tuple[list[dict], dict[str, list[dict]]]:
    """The runs the search sees, and their histories: the sweep's own and its prior runs
    (``prior``), as W&B's engine sees the runs attached with ``--prior_run``."""
    rows, histories = store.runs(), store.histories()
    for prior in store.prior_runs():
        rows.append({**prior, "should_stop": 0, "exit_code": 0})
        histories[prior["run_id"]] = prior["history"]
    return rows, histories


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
    if best is not None and (value is None or better(best, value, goal)):
        value = best
    fields: dict[str, Any] = {} if value is None else {"metric_best": value}
    logged = [r[metric] for r in rows if metric in r]
    if logged:
        fields["metric_last"] = finite_number(logged[-1])
    return fields


def target_reached(engine_cfg: dict, value: float | None) -> bool:
    """Whether a run's metric reached ``metric.target`` (the server then ends the sweep)."""
    target = (engine_cfg.get("metric") or {}).get("target")
    if value is None or not isinstance(target, (int, float)):
        return False
    return value >= target if metric_and_goal(engine_cfg)[1] == "maximize" else value <= target


def note_target(store: Store, engine_cfg: dict, run_id: str, value: float | None) -> str | None:
    """Record that a run reached ``metric.target``: no runner proposes a new run after it."""
    if not target_reached(engine_cfg, value) or store.get("target_reached"):
        return None
    msg = (f"metric.target reached: run {run_id} logged {metric_and_goal(engine_cfg)[0]} "
           f"{value:.4g} (target {engine_cfg['metric']['target']:g})")
    store.set("target_reached", msg)
    return msg


def flag_stops(store: Store, engine_cfg: dict) -> str | None:
    """Ask hyperband which runs lag, and flag them with the reason; returns why it cannot
    decide (the engine refused the config), else None."""
    with store.transaction():
        try:
            stops = stop_decisions(engine_cfg, store.runs(), store.histories())
        except ValueError as e:
            return str(e)
        for run_id, reason in stops.items():
            store.update_run(run_id, should_stop=1, stop_reason=reason)
    return None


def flagged_runs(store: Store, me: str) -> dict[str, str]:
    """This runner's running runs that are flagged to stop, with the reason."""
    return {run_id: reason or "stop requested"
            for run_id, reason in store.flagged_runs(me).items()}


# ----------------------------------------------------------------------------- failures


def fail_sweep(store: Store, msg: str) -> None:
    store.set("state", "failed")
    store.set("failure", msg)


def every_run_failed(store: Store) -> str | None:
    """The message that fails a sweep at its end when it ran runs and none finished: every
    one failed, so it has no result, and a command reading its best model after it would
    read an older one."""
    ended = [r for r in store.runs() if r["state"] in (FINISHED, STOPPED, FAILED)]
    if not ended or any(r["state"] != FAILED for r in ended):
        return None
    last = max(ended, key=lambda r: r.get("ended_at") or 0.0)
    return (f"no run finished: the {len(ended)} that ended all failed; the last with: "
            f"{last['error']}")


def fail_if_every_run_failed(store: Store) -> str | None:
    """At a runner's end, with nothing left running: ``every_run_failed``'s message, the
    sweep then marked failed with it; None otherwise."""
    with store.transaction():
        if store.get("state") == "failed" or store.count_busy():
            return None
        failure = every_run_failed(store)
        if failure:
            fail_sweep(store, failure)
    return failure


def repeated_failure(store: Store, n: int) -> str | None:
    """The message that stops the sweep when its last ``n`` runs failed the same way."""
    last = store.last_ended(n)
    if (len(last) == n and all(r["state"] == FAILED for r in last)
            and len({same_error_key(r["error"]) for r in last}) == 1):
        return f"{n} runs in a row failed with the same error: {last[0]['error']}"
    return None


def metric_never_logged(store: Store, run_id: str, metric: str, hist: list[dict],
                        summary: dict | None) -> str | None:
    """When no run has logged the sweep's metric yet, note it on this finished run and
    return the message that stops the sweep: its search would run blind."""
    if store.any_metric_logged():
        return None
    damage = record_damage((store.run(run_id) or {}).get("files_dir"))
    if damage:  # the metric may well be in the file, past the damage
        store.update_run(run_id, error=f"its W&B record is damaged: {damage}")
        return (f"run {run_id} finished but its W&B record is damaged, so the sweep's metric "
                f"{metric!r} could not be read from it: {damage}. Check that file and its disk "
                f"(full? written by a killed process?), then continue with "
                f"`{continue_command(store.get('sweep_id'), store.folder.parent)}`")
    logged = sorted({k for h in hist for k in h if not k.startswith("_")}
                    | {k for k in (summary or {}) if not k.startswith("_")})
    note = (f"never logged the sweep's metric {metric!r}; it logged: "
            f"{', '.join(logged) if logged else 'nothing'}")
    store.update_run(run_id, error=note)
    return (f"run {run_id} finished but {note}. Fix metric.name in the YAML (or log "
            f"{metric!r} with wandb.log), then start a new sweep")


def record_damage(files_dir: str | None) -> str | None:
    """Where the W&B record of the run with this files folder is damaged (None: it reads to
    its end, or there is none)."""
    path = run_log_path(Path(files_dir).parent) if files_dir else None
    if path is None:
        return None
    try:
        RunLog(path).read()
    except LogError as e:
        return str(e)
    except OSError:  # gone or unreadable since the run ended: no damage to name
        pass
    return None


def mark_sweep_done(store: Store, why: str | None, interrupted: bool) -> None:
    """The sweep is finished once nothing runs or waits and no new run will be proposed."""
    if store.get("state") == "failed":
        return
    if store.count_busy() == 0 and why and not interrupted:
        store.set("state", "finished")
        store.set("finished_because", why)


# ----------------------------------------------------------------------------- runners


# The store's key for the folder the last runner ran the runs in: their relative paths
# (the models they promote) are read from there by a status run from another folder.
RUNS_FOLDER_KEY = "runs_folder"


def register_runner(store: Store, runner_id: str, *, workers: int, count: int | None,
                    runs_folder: str) -> None:
    """Record a runner joining the sweep, the folder its runs run in, and a new run cap
    when it brings one."""
    with store.transaction():
        store.register_runner(runner_id, host=socket.gethostname(), pid=os.getpid(),
                              pid_start=launch.pid_start_ticks(os.getpid()),
                              boot_id=launch.boot_id(), workers=workers)
        store.set(RUNS_FOLDER_KEY, str(Path(runs_folder).resolve()))
        if count is not None:
            store.set("run_cap", count)
        if store.get("state") != "failed":
            store.set("state", "running")


def heartbeat(store: Store, runner_id: str, now: float) -> None:
    store.runner_heartbeat(runner_id, now)


def sign_off(store: Store, runner_id: str, now: float, exit_reason: str, no_more: str | None,
             interrupted: bool) -> None:
    with store.transaction():
        store.end_runner(runner_id, now, exit_reason)
        mark_sweep_done(store, no_more, interrupted)


def record_launch(store: Store, run_id: str, *, pid: int | None, gpu: str | None,
                  log_path: str, slot: int, argv: list[str]) -> None:
    with store.transaction():
        store.update_run(run_id, pid=pid, gpu=gpu, log_path=log_path, slot=slot,
                         pid_start=launch.pid_start_ticks(pid) if pid else None,
                         command=json.dumps(argv))


def record_unstartable(store: Store, run_id: str, error: str, now: float,
                       max_same_failures: int) -> str | None:
    """A run whose program could not start; returns the sweep's failure if it now fails."""
    with store.transaction():
        store.update_run(run_id, state=FAILED, error=error, ended_at=now, exit_code=None)
        failure = repeated_failure(store, max_same_failures)
        if failure:
            fail_sweep(store, failure)
    return failure


def record_end(store: Store, run_id: str, *, state: str, exit_code: int | None, error: str | None,
               tail: str, summary: dict | None, now: float, stop_reason: str | None,
               lost: bool, requeue_grid: bool, metric: str | None, best: float | None,
               max_same_failures: int) -> tuple[int, str | None]:
    """Record how a run ended; returns (its number of logged steps, the sweep's failure if
    this ending fails the sweep)."""
    hist = store.history(run_id)
    store.update_run(run_id, state=state, exit_code=exit_code, error=error,
                     output_tail=tail if state in (FAILED, CRASHED) else tail[-1000:],
                     summary=summary, ended_at=now, stop_reason=stop_reason, runner_lost=int(lost))
    if requeue_grid:
        requeue(store, run_id)
    failure = repeated_failure(store, max_same_failures) if state == FAILED else None
    if state == FINISHED and metric and best is None:
        failure = metric_never_logged(store, run_id, metric, hist, summary)
    if failure:
        fail_sweep(store, failure)
    return len(hist), failure


def record_rows(store: Store, engine_cfg: dict, run_id: str, now: float, *, first_step: int,
                rows: list[dict], summary: dict | None, files_dir: Path | None,
                host: str | None, node_id: str | None,
                best: float | None) -> tuple[float | None, str | None]:
    """Store a live run's new rows and heartbeat; returns (its best metric value so far,
    the ``metric.target`` message when this run has just reached it)."""
    fields: dict[str, Any] = {"heartbeat_at": now}
    if files_dir is not None:
        fields["files_dir"] = str(files_dir)
    if host:
        fields["host"] = host
    if node_id:
        fields["node_id"] = node_id
    if rows:
        store.add_history(run_id, first_step, rows)
        fields["epochs"] = first_step + len(rows)
    fields.update(metric_fields(rows, summary, *metric_and_goal(engine_cfg), best))
    store.update_run(run_id, **fields)
    best = fields.get("metric_best", best)
    return best, note_target(store, engine_cfg, run_id, best)
