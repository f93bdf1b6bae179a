"""The offline sweep agent: propose runs with W&B's engine, run them, feed their metrics back.

One runner process keeps up to ``workers`` runs alive. Each turn of its loop (every
``poll_s`` seconds) it

1. reads new lines of each live run's ``ecgsweep-metrics.jsonl`` (the channel: a plain
   file in the wandb run folder, written by the program and flushed each epoch; it needs
   no pipe, survives the runner's death, and any other runner on the store can read it),
   and stores them with a heartbeat in one transaction;
2. reaps runs whose program exited: finished, stopped (on request), or failed with the
   tail of their output; three failures in a row with the same error stop the sweep;
3. asks ``sweeps.stop_runs`` (hyperband) which runs lag and flags them; a runner sends
   SIGTERM to the flagged runs it owns, then SIGKILL after ``kill_delay_s``, like the agent;
4. marks the runs of dead runners (same host: pid gone or rebooted; other host: stale
   heartbeat) as crashed, re-queuing their grid points;
5. fills free slots: first re-queued grid points, else ``sweeps.next_run`` over every run in
   the store, all inside ``BEGIN IMMEDIATE`` so concurrent workers and processes never
   take the same point.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import config as sweep_config
from ..contract import EXIT_NAN, EXIT_USAGE
from . import launch
from .engine import engine_runs, metric_of, propose, stop_decisions  # noqa: F401 (re-exported)
from .store import (CRASHED, FAILED, FINISHED, PENDING, RUNNING, STOPPED, Store, db_path,
                    require_valid_id)

OUTPUT_TAIL_LINES = 40
OUTPUT_TAIL_CHARS = 4000
SAME_FAILURES_TO_STOP = 3

EXIT_DONE = 0
EXIT_SWEEP_FAILED = 1
EXIT_INTERRUPTED = 130


def new_id() -> str:
    """8 lowercase base-36 characters, like wandb's run and sweep IDs."""
    from wandb.sdk.lib.runid import generate_id

    return generate_id(8)


@dataclass
class Options:
    workers: int = 1
    count: int | None = None  # cap on the sweep's total runs (stored; --resume may change it)
    poll_s: float = 1.0
    kill_delay_s: float | None = None  # SIGTERM -> SIGKILL; default WANDB_AGENT_KILL_DELAY or 30
    stale_after_s: float = 120.0  # a runner on another host with no heartbeat for this long is dead
    online: bool = False
    project: str | None = None
    gpus: list[str] | None = None  # None: detect
    cwd: str | None = None  # where programs run; default the current directory
    interpreter: str | None = None  # ${interpreter}; default sys.executable
    live: bool | None = None  # rich live table; default: when stdout is a terminal
    max_same_failures: int = SAME_FAILURES_TO_STOP
    syncable: bool = False  # runs grouped as sweep-<id> instead of carrying WANDB_SWEEP_ID


@dataclass
class LiveRun:
    run_id: str
    proc: subprocess.Popen
    slot: int
    gpu: str | None
    log_path: Path
    files_dir: Path | None = None
    offset: int = 0
    steps: int = 0
    stop_sent_at: float | None = None
    killed: bool = False
    stop_reason: str | None = None
    interrupted: bool = False
    epochs_total: int | None = None
    best: float | None = None


# ----------------------------------------------------------------------------- creating


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
        for _ in range(100):
            sweep_id = new_id()
            if not db_path(root, sweep_id).exists():
                break
    assert sweep_id is not None
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
        cap = count if count is not None else cfg.get("run_cap")
        store.set("sweep_id", sweep_id)
        store.set("yaml", yaml_text)
        store.set("config", cfg)
        store.set("source", source)
        store.set("created_at", time.time())
        store.set("run_cap", cap)
        store.set("project", project or cfg.get("project"))
        store.set("entity", cfg.get("entity"))
        store.set("online", bool(online))
        store.set("syncable", bool(syncable))
        store.set("state", "running")
    return store, True


# ----------------------------------------------------------------------------- engine view

# ----------------------------------------------------------------------------- failures


def classify_exit(rc: int, tail: str) -> str:
    """One line saying why a run failed, from its exit code and the end of its output."""
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    err_lines = [ln for ln in lines if ln.lower().startswith("error:")]
    last_err = err_lines[-1] if err_lines else None
    last = lines[-1] if lines else ""
    if rc in (-9, 137):
        return "killed by SIGKILL (exit %d): out of memory?" % rc
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return f"killed by {name} (exit {rc})"
    if rc == EXIT_NAN:
        return f"diverged: NaN loss, weights or outputs (exit {rc})" + (f": {last_err}" if last_err else "")
    if rc == EXIT_USAGE:
        return f"bad config or data (exit {rc}): {last_err or last}"
    if "out of memory" in tail.lower() or "resourceexhausted" in tail.lower():
        oom = [ln for ln in lines if "out of memory" in ln.lower()
               or "resourceexhausted" in ln.lower()]
        return f"out of memory (exit {rc}): {oom[-1][:300]}"
    tb = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", ln)]
    return f"crashed (exit {rc}): {(tb[-1] if tb else last_err or last)[:300]}"


def _same_error_key(error: str | None) -> str:
    return re.sub(r"\d+(\.\d+)?", "#", error or "")


def read_tail(path: Path, lines: int = OUTPUT_TAIL_LINES, chars: int = OUTPUT_TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - chars * 2))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    text = "\n".join(data.splitlines()[-lines:])
    return text[-chars:]


# ----------------------------------------------------------------------------- GPUs


def visible_gpus(env: dict[str, str] | None = None) -> list[str]:
    """GPU ids to hand out, one per worker: CUDA_VISIBLE_DEVICES if set, else nvidia-smi."""
    env = dict(os.environ if env is None else env)
    if "CUDA_VISIBLE_DEVICES" in env:
        v = env["CUDA_VISIBLE_DEVICES"].strip()
        if v in ("", "-1", "none", "NoDevFiles"):
            return []
        return [x.strip() for x in v.split(",") if x.strip()]
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, ln in enumerate(ln for ln in out.splitlines() if ln.startswith("GPU "))]


# ----------------------------------------------------------------------------- liveness


def runner_alive(rr: dict | None, now: float, stale_after_s: float = 120.0) -> bool:
    """Whether a runner (a row of the runners table) still works on the sweep.

    Same host: its pid (checked against its start time, against pid reuse) is alive and the
    machine has not rebooted since. Another host: its heartbeat is recent.
    """
    if rr is None or rr.get("ended_at"):
        return False
    if rr["host"] == socket.gethostname():
        boot = launch.boot_id()
        if rr.get("boot_id") and boot and rr["boot_id"] != boot:
            return False
        return launch.pid_alive(rr["pid"], rr.get("pid_start"))
    return now - rr["heartbeat_at"] < stale_after_s


# ----------------------------------------------------------------------------- the runner


class Runner:
    def __init__(self, store: Store, opts: Options, view: Any | None = None,
                 now: Callable[[], float] = time.time):
        self.store = store
        self.opts = opts
        self.now = now
        meta = store.meta()
        self.sweep_id: str = meta["sweep_id"]
        self.cfg: dict = meta["config"]
        self.engine_cfg = sweep_config.engine_config(self.cfg)
        self.method = self.cfg.get("method")
        m = self.engine_cfg.get("metric") or {}
        self.metric: str | None = m.get("name")
        self.goal: str = m.get("goal", "minimize")
        et = self.cfg.get("early_terminate")
        self.hyperband = isinstance(et, dict) and et.get("type") == "hyperband" and bool(self.metric)
        self.online = bool(opts.online or meta.get("online"))
        self.syncable = bool(opts.syncable or meta.get("syncable"))
        self.project = opts.project or meta.get("project")
        self.entity = meta.get("entity")
        self.cwd = opts.cwd or os.getcwd()
        self.wandb_dir = str(store.folder.resolve())
        self.host = socket.gethostname()
        self.boot = launch.boot_id()
        self.id = f"{self.host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.kill_delay = (opts.kill_delay_s if opts.kill_delay_s is not None
                           else float(os.environ.get("WANDB_AGENT_KILL_DELAY", "30")))
        self.gpus = opts.gpus if opts.gpus is not None else visible_gpus()
        self.workers = max(1, int(opts.workers))
        self.slots: list[str | None] = [None] * self.workers
        self.live: dict[str, LiveRun] = {}
        self.no_more: str | None = None
        self.failure: str | None = None
        self.interrupts = 0
        self.started = 0
        self.searched = sweep_config.searched_params(self.cfg)
        self.view = view
        self._last_reap = 0.0
        self._signal_name = "signal"
        self._interrupts_handled = 0

    # --------------------------------------------------------------- output
    def event(self, msg: str) -> None:
        if self.view is not None:
            self.view.event(msg)

    def _refresh(self) -> None:
        if self.view is not None:
            self.view.update(self.store.runs())

    # --------------------------------------------------------------- main loop
    def run(self) -> int:
        with self.store.transaction():
            self.store.register_runner(self.id, host=self.host, pid=os.getpid(),
                                       pid_start=launch.pid_start_ticks(os.getpid()),
                                       boot_id=self.boot, workers=self.workers)
            if self.opts.count is not None:
                self.store.set("run_cap", self.opts.count)
            if self.store.get("state") != "failed":
                self.store.set("state", "running")
        if self.gpus and self.workers > len(self.gpus):
            self.event(f"warning: {self.workers} workers share {len(self.gpus)} GPU(s) "
                       f"({', '.join(self.gpus)}); GPUs are handed out round-robin")
        old: dict = {}
        if threading.current_thread() is threading.main_thread():
            old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            for s in old:
                signal.signal(s, self._on_signal)
        exit_reason = "done"
        try:
            self._reap_dead()
            while True:
                self._turn()
                if not self.live and (self.no_more or self.interrupts):
                    break
                time.sleep(self.opts.poll_s)
        except BaseException as e:
            exit_reason = f"error: {type(e).__name__}: {e}"
            self._kill_all()
            raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            if self.interrupts:
                exit_reason = "interrupted"
            with self.store.transaction():
                self.store.conn.execute("UPDATE runners SET ended_at = ?, exit_reason = ? "
                                        "WHERE runner_id = ?", (self.now(), exit_reason, self.id))
                self._maybe_mark_sweep_done()
            self._refresh()
        if self.interrupts:
            return EXIT_INTERRUPTED
        return EXIT_SWEEP_FAILED if self.failure else EXIT_DONE

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Only note it here; the loop acts on it between two turns (never mid-transaction).
        self.interrupts += 1
        self._signal_name = signal.Signals(signum).name

    def _handle_interrupts(self) -> None:
        if not self.interrupts or self.interrupts == self._interrupts_handled:
            return
        self._interrupts_handled = self.interrupts
        if self.interrupts == 1:
            self.event(f"{self._signal_name}: stopping the live runs (SIGTERM); send it again "
                       "to kill them")
            for lr in self.live.values():
                lr.interrupted = True
                self._terminate(lr)
        else:
            self.event(f"{self._signal_name} again: killing the live runs")
            self._kill_all()

    def _turn(self) -> None:
        self._handle_interrupts()
        new_rows = self._ingest_and_heartbeat()
        self._reap_exited()
        if new_rows and self.hyperband:
            self._early_terminate()
        self._apply_stops()
        if self.now() - self._last_reap > max(5 * self.opts.poll_s, 2.0):
            self._reap_dead()
        if not self.interrupts:
            self._fill_slots()
        self._refresh()

    # --------------------------------------------------------------- metrics channel
    def _read_metrics(self, lr: LiveRun, final: bool = False) -> list[dict]:
        if lr.files_dir is None:
            lr.files_dir = launch.find_files_dir(self.wandb_dir, lr.run_id, self.cwd)
            if lr.files_dir is None:
                return []
        path = lr.files_dir / launch.METRICS_FILE
        try:
            with open(path, "rb") as f:
                f.seek(lr.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = len(data) if final else data.rfind(b"\n") + 1
        if end <= 0:
            return []
        lr.offset += end
        rows = []
        for line in data[:end].decode("utf-8", errors="replace").splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
        return rows

    def _ingest_and_heartbeat(self) -> bool:
        now = self.now()
        got: dict[str, list[dict]] = {}
        for lr in self.live.values():
            rows = self._read_metrics(lr)
            if rows:
                got[lr.run_id] = rows
        with self.store.transaction():
            self.store.conn.execute("UPDATE runners SET heartbeat_at = ? WHERE runner_id = ?",
                                    (now, self.id))
            for lr in self.live.values():
                self._store_rows(lr, got.get(lr.run_id, []), now)
        for run_id, rows in got.items():
            lr = self.live[run_id]
            for row in rows:
                self._epoch_event(lr, row)
        return bool(got)

    def _store_rows(self, lr: LiveRun, rows: list[dict], now: float) -> None:
        fields: dict[str, Any] = {"heartbeat_at": now}
        if lr.files_dir is not None:
            fields["files_dir"] = str(lr.files_dir)
        if rows:
            self.store.add_history(lr.run_id, lr.steps, rows)
            lr.steps += len(rows)
            fields["epochs"] = lr.steps
            if self.metric:
                vals = metric_of(rows, None, self.metric, self.goal)
                if vals is not None:
                    lr.best = vals if lr.best is None else (
                        max(lr.best, vals) if self.goal == "maximize" else min(lr.best, vals))
                    fields["metric_best"] = lr.best
                last = rows[-1].get(self.metric)
                if isinstance(last, (int, float)) and not isinstance(last, bool):
                    fields["metric_last"] = float(last) if math.isfinite(last) else None
        self.store.update_run(lr.run_id, **fields)

    def _epoch_event(self, lr: LiveRun, row: dict) -> None:
        if self.view is None or not getattr(self.view, "plain", False):
            return
        epoch = row.get("epoch", "?")
        total = f"/{lr.epochs_total}" if lr.epochs_total else ""
        bits = []
        if self.metric and self.metric in row:
            bits.append(f"{self.metric}={_num(row[self.metric])}")
        for k in ("loss", "val_loss"):
            if k in row and k != self.metric:
                bits.append(f"{k}={_num(row[k])}")
        self.event(f"{lr.run_id} epoch {epoch}{total} {' '.join(bits)}")

    # --------------------------------------------------------------- ending runs
    def _reap_exited(self) -> None:
        for run_id in list(self.live):
            lr = self.live[run_id]
            rc = lr.proc.poll()
            if rc is None:
                continue
            self._finalize(lr, rc)

    def _finalize(self, lr: LiveRun, rc: int) -> None:
        rows = self._read_metrics(lr, final=True)
        summary = None
        if lr.files_dir is None:
            lr.files_dir = launch.find_files_dir(self.wandb_dir, lr.run_id, self.cwd)
        if lr.files_dir is not None:
            try:
                summary = json.loads((lr.files_dir / launch.SUMMARY_FILE).read_text())
            except (OSError, ValueError):
                summary = None
        tail = read_tail(lr.log_path)
        requeue = False
        if lr.interrupted:
            state, error = CRASHED, f"runner interrupted; run ended with exit {rc}"
            requeue = self.method == "grid"
        elif lr.stop_sent_at is not None:
            state, error = STOPPED, None
        elif rc == 0:
            state, error = FINISHED, None
        else:
            state, error = FAILED, classify_exit(rc, tail)
        now = self.now()
        with self.store.transaction():
            self._store_rows(lr, rows, now)
            hist = self.store.history(lr.run_id)
            best = metric_of(hist, summary, self.metric, self.goal) if self.metric else None
            self.store.update_run(lr.run_id, state=state, exit_code=rc, error=error,
                                  output_tail=tail if state in (FAILED, CRASHED) else tail[-1000:],
                                  summary=summary, ended_at=now, metric_best=best,
                                  stop_reason=lr.stop_reason, runner_lost=int(lr.interrupted))
            if requeue:
                self._requeue(lr.run_id)
            if state == FAILED:
                self._check_repeated_failures()
            if state == FINISHED and self.metric and best is None:
                self._check_metric_logged(lr.run_id, hist, summary)
        self.slots[lr.slot] = None
        del self.live[lr.run_id]
        shown = f" {self.metric} {_num(best)}" if best is not None and self.metric else ""
        if state == FINISHED:
            self.event(f"{lr.run_id} finished:{shown} after {len(hist)} epoch(s)")
        elif state == STOPPED:
            self.event(f"{lr.run_id} stopped after {len(hist)} epoch(s):{shown}"
                       f" ({lr.stop_reason or 'stop requested'})")
        elif state == CRASHED:
            self.event(f"{lr.run_id} {error}" + (" (grid point re-queued)" if requeue else ""))
        else:
            self.event(f"{lr.run_id} failed: {error}\n    log: {lr.log_path}\n"
                       + "\n".join("    | " + ln for ln in tail.splitlines()[-8:]))
        if self.failure and not self.no_more:
            self.no_more = self.failure

    def _check_repeated_failures(self) -> None:
        n = self.opts.max_same_failures
        last = self.store.conn.execute(
            "SELECT state, error FROM runs WHERE state IN (?, ?, ?) AND ended_at IS NOT NULL "
            "ORDER BY ended_at DESC LIMIT ?", (FINISHED, STOPPED, FAILED, n)).fetchall()
        if (len(last) == n and all(r["state"] == FAILED for r in last)
                and len({_same_error_key(r["error"]) for r in last}) == 1):
            self._fail_sweep(f"{n} runs in a row failed with the same error: {last[0]['error']}")

    def _fail_sweep(self, msg: str) -> None:
        self.store.set("state", "failed")
        self.store.set("failure", msg)
        self.failure = msg

    def _check_metric_logged(self, run_id: str, hist: list[dict], summary: dict | None) -> None:
        """Stop a sweep whose metric no finished run has logged: its search would run blind."""
        if self.store.conn.execute("SELECT 1 FROM runs WHERE metric_best IS NOT NULL "
                                   "LIMIT 1").fetchone():
            return
        logged = sorted({k for h in hist for k in h} | set(summary or {}))
        shown = ", ".join(logged) if logged else "nothing"
        note = f"never logged the sweep's metric {self.metric!r}; it logged: {shown}"
        msg = (f"run {run_id} finished but {note}. Fix metric.name in the YAML (or log "
               f"{self.metric!r} with wandb.log), then start a new sweep")
        self.store.update_run(run_id, error=note)
        self._fail_sweep(msg)

    def _requeue(self, run_id: str) -> None:
        row = self.store.run(run_id)
        if row is None:
            return
        self.store.update_run(run_id, requeued=1)
        self.store.insert_run(new_id(), row["params"], state=PENDING, retry_of=run_id)

    # --------------------------------------------------------------- stopping runs
    def _early_terminate(self) -> None:
        with self.store.transaction():
            try:
                stops = stop_decisions(self.engine_cfg, self.store.runs(), self.store.histories())
            except ValueError as e:
                self.event(f"warning: early termination disabled: {e}")
                self.hyperband = False
                return
            for run_id, reason in stops.items():
                self.store.update_run(run_id, should_stop=1, stop_reason=reason)

    def _apply_stops(self) -> None:
        if not self.live:
            return
        flagged = self.store.conn.execute(
            "SELECT run_id, stop_reason FROM runs WHERE owner = ? AND state = ? AND should_stop = 1",
            (self.id, RUNNING)).fetchall()
        now = self.now()
        for r in flagged:
            lr = self.live.get(r["run_id"])
            if lr is None:
                continue
            if lr.stop_sent_at is None:
                lr.stop_reason = r["stop_reason"] or "stop requested"
                self.event(f"{lr.run_id} lags: {lr.stop_reason}; sending SIGTERM")
                self._terminate(lr)
            elif not lr.killed and now > lr.stop_sent_at + self.kill_delay:
                self.event(f"{lr.run_id} ignored SIGTERM for {self.kill_delay:g}s: SIGKILL")
                self._kill(lr)
        for lr in self.live.values():  # interrupted runs escalate the same way
            if lr.interrupted and lr.stop_sent_at and not lr.killed \
                    and now > lr.stop_sent_at + self.kill_delay:
                self._kill(lr)

    def _terminate(self, lr: LiveRun) -> None:
        if lr.stop_sent_at is None:
            lr.stop_sent_at = self.now()
        try:
            lr.proc.terminate()  # the agent's Popen.terminate(): SIGTERM to the program
        except OSError:
            pass

    def _kill(self, lr: LiveRun) -> None:
        lr.killed = True
        try:
            os.killpg(lr.proc.pid, signal.SIGKILL)
        except OSError:
            try:
                lr.proc.kill()
            except OSError:
                pass

    def _kill_all(self) -> None:
        for lr in self.live.values():
            lr.interrupted = True
            if lr.stop_sent_at is None:
                lr.stop_sent_at = self.now()
            self._kill(lr)

    # --------------------------------------------------------------- dead runners
    def _runner_alive(self, rr: dict | None, now: float) -> bool:
        if rr is not None and rr["runner_id"] == self.id:
            return True
        return runner_alive(rr, now, self.opts.stale_after_s)

    def _reap_dead(self) -> None:
        now = self.now()
        self._last_reap = now
        msgs = []
        with self.store.transaction():
            runners = self.store.runners()
            dead_runners = set()
            for row in self.store.runs("state = ?", (RUNNING,)):
                if row["owner"] == self.id:
                    continue
                rr = runners.get(row["owner"])
                if self._runner_alive(rr, now):
                    continue
                if rr is not None:
                    dead_runners.add(rr["runner_id"])
                self._salvage(row, rr)
                requeue = self.method == "grid"
                why = (f"its runner {row['owner']} died" if rr is not None
                       else f"its runner {row['owner']} is unknown")
                self.store.update_run(row["run_id"], state=CRASHED, ended_at=now, runner_lost=1,
                                      error=f"crashed: {why} while it was running")
                if requeue:
                    self._requeue(row["run_id"])
                msgs.append(f"{row['run_id']} marked crashed ({why})"
                            + ("; grid point re-queued" if requeue else ""))
            for rid in dead_runners:
                self.store.conn.execute(
                    "UPDATE runners SET ended_at = ?, exit_reason = 'lost' WHERE runner_id = ? "
                    "AND ended_at IS NULL", (now, rid))
        for m in msgs:
            self.event(m)

    def _salvage(self, row: dict, rr: dict | None) -> None:
        """Keep what a dead runner's run wrote: its metrics lines, summary and output tail."""
        files_dir = Path(row["files_dir"]) if row.get("files_dir") else \
            launch.find_files_dir(self.wandb_dir, row["run_id"], self.cwd)
        have = self.store.conn.execute("SELECT COUNT(*) FROM history WHERE run_id = ?",
                                       (row["run_id"],)).fetchone()[0]
        fields: dict[str, Any] = {}
        if files_dir is not None:
            fields["files_dir"] = str(files_dir)
            try:
                lines = (files_dir / launch.METRICS_FILE).read_text().splitlines()
            except OSError:
                lines = []
            rows = []
            for ln in lines:
                try:
                    d = json.loads(ln)
                except ValueError:
                    continue
                if isinstance(d, dict):
                    rows.append(d)
            if len(rows) > have:
                self.store.add_history(row["run_id"], have, rows[have:])
                fields["epochs"] = len(rows)
            try:
                fields["summary"] = json.loads((files_dir / launch.SUMMARY_FILE).read_text())
            except (OSError, ValueError):
                pass
            if self.metric:
                fields["metric_best"] = metric_of(rows, fields.get("summary"), self.metric, self.goal)
        if row.get("log_path"):
            fields["output_tail"] = read_tail(Path(row["log_path"]))
        # A program its dead runner left behind on this machine is stopped, not left to
        # compete for the CPU/GPU (PR_SET_PDEATHSIG normally did this already).
        if (rr is not None and rr["host"] == self.host and (not rr.get("boot_id")
                or rr["boot_id"] == self.boot) and launch.pid_alive(row.get("pid"), row.get("pid_start"))):
            try:
                os.killpg(row["pid"], signal.SIGTERM)
            except OSError:
                pass
        self.store.update_run(row["run_id"], **fields)

    # --------------------------------------------------------------- starting runs
    def _fill_slots(self) -> None:
        while not self.failure and None in self.slots:
            slot = self.slots.index(None)
            claimed = self._claim(slot)
            if claimed is None:
                break
            run_id, params = claimed
            self._launch(run_id, params, slot)

    def _claim(self, slot: int) -> tuple[str, dict] | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with self.store.transaction():
                state = self.store.get("state")
                if state == "failed":
                    self.failure = self.failure or self.store.get("failure")
                    self.no_more = self.failure or "the sweep failed"
                    return None
                now = self.now()
                pending = self.store.runs("state = ?", (PENDING,))
                if pending:
                    r = pending[0]
                    self.store.update_run(r["run_id"], state=RUNNING, owner=self.id, slot=slot,
                                          started_at=now, heartbeat_at=now)
                    return r["run_id"], r["params"]
                if self.no_more:
                    return None
                cap = self.store.get("run_cap")
                if cap is not None and self.store.count_runs() >= cap:
                    self.no_more = f"run cap of {cap} reached"
                    return None
                proposal = propose(self.engine_cfg, self.store.runs(), self.store.histories())
                if proposal is None:
                    self.no_more = "grid exhausted: every point has a run"
                    return None
                params, info = proposal
                run_id = new_id()
                while self.store.run(run_id) is not None:
                    run_id = new_id()
                self.store.insert_run(run_id, params, state=RUNNING, owner=self.id,
                                      search_info=info, slot=slot)
                return run_id, params

    def _launch(self, run_id: str, params: dict, slot: int) -> None:
        gpu = self.gpus[slot % len(self.gpus)] if self.gpus else None
        log_path = self.store.folder / "logs" / f"{run_id}.log"
        epochs = (params.get("epochs") or {}).get("value") if isinstance(params.get("epochs"), dict) else None
        try:
            prep = launch.prepare(self.cfg, params, sweep_id=self.sweep_id, run_id=run_id,
                                  wandb_dir=self.wandb_dir, online=self.online,
                                  project=self.project, entity=self.entity, gpu=gpu,
                                  interpreter=self.opts.interpreter, syncable=self.syncable)
            proc = launch.start(prep.argv, prep.env, log_path=log_path, cwd=self.cwd)
        except OSError as e:
            with self.store.transaction():
                self.store.update_run(run_id, state=FAILED, error=f"could not start: {e}",
                                      ended_at=self.now(), exit_code=None)
                self._check_repeated_failures()
            self.event(f"{run_id} could not start: {e}")
            if self.failure:
                self.no_more = self.failure
            return
        lr = LiveRun(run_id=run_id, proc=proc, slot=slot, gpu=gpu, log_path=log_path,
                     epochs_total=epochs if isinstance(epochs, int) else None)
        self.live[run_id] = lr
        self.slots[slot] = run_id
        self.started += 1
        with self.store.transaction():
            self.store.update_run(run_id, pid=proc.pid, pid_start=launch.pid_start_ticks(proc.pid),
                                  gpu=gpu, log_path=str(log_path), slot=slot,
                                  command=json.dumps(prep.argv))
        shown = " ".join(f"{k}={_num(v.get('value'))}" for k, v in params.items()
                         if k in self.searched and isinstance(v, dict))
        where = f" on GPU {gpu}" if gpu is not None else ""
        self.event(f"{run_id} started{where}: {shown}")

    # --------------------------------------------------------------- end of sweep
    def _maybe_mark_sweep_done(self) -> None:
        if self.store.get("state") == "failed":
            return
        busy = self.store.conn.execute("SELECT COUNT(*) FROM runs WHERE state IN (?, ?)",
                                       (RUNNING, PENDING)).fetchone()[0]
        if busy == 0 and self.no_more and not self.interrupts:
            self.store.set("state", "finished")
            self.store.set("finished_because", self.no_more)


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


# ----------------------------------------------------------------------------- sync & best


def sync_command(store: Store, root_display: str | None = None) -> str:
    meta = store.meta()
    folder = store.folder / "wandb"
    try:
        shown = os.path.relpath(folder)
        if shown.startswith(".."):
            shown = str(folder)
    except ValueError:
        shown = str(folder)
    parts = ["wandb", "sync"]
    if meta.get("project"):
        parts += ["-p", str(meta["project"])]
    if meta.get("entity"):
        parts += ["-e", str(meta["entity"])]
    parts.append(shown)
    return " ".join(parts)


def sync_note(store: Store) -> str | None:
    """A warning to print under the sync command when the runs carry the local sweep ID."""
    meta = store.meta()
    if meta.get("syncable"):
        return None
    return (f"note: these runs carry sweep ID {meta['sweep_id']}, which W&B's server has never "
            "seen; if `wandb sync` answers 'sweep ... not found', start sweeps meant for upload "
            "with --syncable (runs then carry group sweep-<ID> instead)")


def _family_entry(model: str, model_path: str, record: dict | None, run_ids: set) -> dict:
    rid = (record or {}).get("run_id")
    return {"model": model, "model_path": model_path, "exists": record is not None,
            "record": record, "from_this_sweep": bool(rid) and rid in run_ids}


def best_models(rows: list[dict], cwd: str | Path | None = None) -> list[dict[str, Any]]:
    """For each model family this sweep trained: the best model of each data set its runs
    trained on (``models/<family>/<data-key>/best.keras``), else the family's current link."""
    base = Path(cwd or os.getcwd())
    families: dict[tuple[str, str], None] = {}
    for r in rows:
        p = r.get("params") or {}
        model = (p.get("model") or {}).get("value", "cnn") if isinstance(p.get("model"), dict) else "cnn"
        models_dir = (p.get("models_dir") or {}).get("value", "models") \
            if isinstance(p.get("models_dir"), dict) else "models"
        families[(str(models_dir), str(model))] = None
    run_ids = {r["run_id"] for r in rows}
    out = []
    for models_dir, model in families:
        ours = []
        for record_path in sorted((base / models_dir / model).glob("*/best.json")):
            try:
                record = json.loads(record_path.read_text())
            except (OSError, ValueError):
                continue
            if record.get("run_id") in run_ids:
                ours.append(_family_entry(model, f"{models_dir}/{model}/{record_path.parent.name}"
                                                 "/best.keras", record, run_ids))
        if not ours:
            try:
                record = json.loads((base / models_dir / model / "best.json").read_text())
            except (OSError, ValueError):
                record = None
            ours = [_family_entry(model, f"{models_dir}/{model}/best.keras", record, run_ids)]
        out.extend(ours)
    return out
