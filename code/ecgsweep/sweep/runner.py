"""The offline sweep agent's loop: W&B's engine proposes, an executor runs, the store records.

One runner keeps up to ``workers`` runs alive. Each turn (every ``poll_s`` seconds) it
1. reads what each live run logged with ``wandb.log`` since the last turn, from the run's own
   W&B record (``wandb_log``), and stores it with a heartbeat;
2. records the runs whose program exited (finished, stopped on request, or failed);
3. asks hyperband which runs lag, sends them SIGTERM, then SIGKILL after the kill delay;
4. marks the runs of dead runners crashed (``liveness``);
5. fills free slots with a re-queued grid point or the engine's next proposal (``bookkeeping``).
The pieces it ties together: ``bookkeeping`` (store), ``engine`` (sweeps), ``executor``
(processes), ``wandb_log`` (metrics), ``liveness`` and ``events`` (messages).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from . import bookkeeping as books
from . import config as sweep_config
from . import events, launch, liveness
from .executor import LocalExecutor, RunHandle, RunSpec, visible_gpus
from .failures import SAME_FAILURES_TO_STOP, classify_exit
from .store import CRASHED, FAILED, FINISHED, STOPPED, Store

EXIT_DONE, EXIT_SWEEP_FAILED, EXIT_INTERRUPTED = 0, 1, 130


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
    executor: Any | None = None  # None: LocalExecutor


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


class Runner:
    def __init__(self, store: Store, opts: Options, view: Any | None = None,
                 now: Callable[[], float] = time.time):
        self.store, self.opts, self.view, self.now = store, opts, view, now
        meta = store.meta()
        self.sweep_id, self.cfg = meta["sweep_id"], meta["config"]
        self.engine_cfg = sweep_config.engine_config(self.cfg)
        metric = self.engine_cfg.get("metric") or {}
        self.metric, self.goal = metric.get("name"), metric.get("goal", "minimize")
        et = self.cfg.get("early_terminate")
        self.hyperband = isinstance(et, dict) and et.get("type") == "hyperband" and bool(self.metric)
        self.launch_args = dict(online=bool(opts.online or meta.get("online")),
                                syncable=bool(opts.syncable or meta.get("syncable")),
                                project=opts.project or meta.get("project"),
                                entity=meta.get("entity"), interpreter=opts.interpreter)
        self.cwd = opts.cwd or os.getcwd()
        self.wandb_dir = str(store.folder.resolve())
        self.executor = opts.executor or LocalExecutor(self.wandb_dir)
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.kill_delay = (opts.kill_delay_s if opts.kill_delay_s is not None
                           else float(os.environ.get("WANDB_AGENT_KILL_DELAY", "30")))
        self.gpus = opts.gpus if opts.gpus is not None else visible_gpus()
        self.slots: list[str | None] = [None] * max(1, int(opts.workers))
        self.live: dict[str, LiveRun] = {}
        self.no_more: str | None = None
        self.failure: str | None = None
        self.interrupts = self._interrupts_handled = 0
        self._signal_name, self._last_reap = "signal", 0.0

    def event(self, msg: str) -> None:
        if self.view is not None:
            self.view.event(msg)

    def run(self) -> int:
        with self.store.transaction():
            self.store.register_runner(self.id, host=socket.gethostname(), pid=os.getpid(),
                                       pid_start=launch.pid_start_ticks(os.getpid()),
                                       boot_id=launch.boot_id(), workers=len(self.slots))
            if self.opts.count is not None:
                self.store.set("run_cap", self.opts.count)
            if self.store.get("state") != "failed":
                self.store.set("state", "running")
        if self.gpus and len(self.slots) > len(self.gpus):
            self.event(f"warning: {len(self.slots)} workers share {len(self.gpus)} GPU(s) "
                       f"({', '.join(self.gpus)}); GPUs are handed out round-robin")
        old = {}
        if threading.current_thread() is threading.main_thread():
            old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        exit_reason = "done"
        try:
            while self._turn():
                time.sleep(self.opts.poll_s)
        except BaseException as e:
            exit_reason = f"error: {type(e).__name__}: {e}"
            self._kill_all()
            raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            self._sign_off("interrupted" if self.interrupts else exit_reason)
        if self.interrupts:
            return EXIT_INTERRUPTED
        return EXIT_SWEEP_FAILED if self.failure else EXIT_DONE

    def _sign_off(self, exit_reason: str) -> None:
        with self.store.transaction():
            self.store.conn.execute("UPDATE runners SET ended_at = ?, exit_reason = ? "
                                    "WHERE runner_id = ?", (self.now(), exit_reason, self.id))
            books.mark_sweep_done(self.store, self.no_more, bool(self.interrupts))
        self._refresh()

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Only note it here; the loop acts on it between two turns (never mid-transaction).
        self.interrupts += 1
        self._signal_name = signal.Signals(signum).name

    def _turn(self) -> bool:
        """One turn of the loop; False once nothing runs and nothing more will start."""
        self._handle_interrupts()
        if self._ingest() and self.hyperband:
            self._flag_laggards()
        for run_id, lr in list(self.live.items()):
            rc = lr.handle.poll()
            if rc is not None:
                self._finalize(lr, rc)
        self._send_stops()
        if self.now() - self._last_reap > max(5 * self.opts.poll_s, 2.0):
            self._last_reap = self.now()
            for msg in liveness.reap_dead(
                    self.store, self.id, self.now(), stale_after_s=self.opts.stale_after_s,
                    requeue_grid=self.cfg.get("method") == "grid", wandb_dir=self.wandb_dir,
                    cwd=self.cwd, metric=self.metric, goal=self.goal):
                self.event(msg)
        if not self.interrupts:
            self._fill_slots()
        self._refresh()
        return bool(self.live) or not (self.no_more or self.interrupts)

    def _handle_interrupts(self) -> None:
        if self.interrupts == self._interrupts_handled:
            return
        self._interrupts_handled = self.interrupts
        if self.interrupts > 1:
            self.event(f"{self._signal_name} again: killing the live runs")
            return self._kill_all()
        self.event(f"{self._signal_name}: stopping the live runs (SIGTERM); send it again to kill them")
        for lr in self.live.values():
            lr.interrupted = True
            lr.stop_sent_at = lr.stop_sent_at or self.now()
            lr.handle.terminate()

    # --------------------------------------------------------------- metrics in
    def _ingest(self) -> bool:
        got = {run_id: lr.handle.new_rows() for run_id, lr in self.live.items()}
        with self.store.transaction():
            self.store.conn.execute("UPDATE runners SET heartbeat_at = ? WHERE runner_id = ?",
                                    (self.now(), self.id))
            for run_id, lr in self.live.items():
                self._store_rows(lr, got[run_id], None)
        for run_id, rows in got.items():
            if self.view is not None and getattr(self.view, "plain", False):
                for row in rows:
                    self.event(events.step(run_id, row, self.metric, self.live[run_id].epochs_total))
        return any(got.values())

    def _store_rows(self, lr: LiveRun, rows: list[dict], summary: dict | None) -> None:
        fields: dict[str, Any] = {"heartbeat_at": self.now()}
        files_dir = getattr(lr.handle, "files_dir", None)
        if files_dir is not None:
            fields["files_dir"] = str(files_dir)
        if getattr(lr.handle, "host", None):
            fields["host"] = lr.handle.host
        if rows:
            self.store.add_history(lr.handle.run_id, lr.steps, rows)
            lr.steps += len(rows)
            fields["epochs"] = lr.steps
        fields.update(books.metric_fields(rows, summary, self.metric, self.goal, lr.best))
        lr.best = fields.get("metric_best", lr.best)
        self.store.update_run(lr.handle.run_id, **fields)
        reached = books.note_target(self.store, self.engine_cfg, lr.handle.run_id, lr.best)
        if reached:
            self.event(reached + "; no new runs")

    # --------------------------------------------------------------- runs ending
    def _finalize(self, lr: LiveRun, rc: int) -> None:
        out = lr.handle.outcome(rc)
        if out.lost:
            state, error = CRASHED, f"crashed: {out.lost}"
        elif lr.interrupted:
            state, error = CRASHED, f"runner interrupted; run ended with exit {rc}"
        elif lr.stop_sent_at is not None:
            state, error = STOPPED, None
        else:
            state, error = (FINISHED, None) if rc == 0 else (FAILED, classify_exit(rc, out.tail))
        requeue = state == CRASHED and self.cfg.get("method") == "grid"
        run_id = lr.handle.run_id
        with self.store.transaction():
            self._store_rows(lr, out.rows, out.summary)
            hist = self.store.history(run_id)
            self.store.update_run(run_id, state=state, exit_code=None if out.lost else rc, error=error,
                                  output_tail=out.tail if state in (FAILED, CRASHED) else out.tail[-1000:],
                                  summary=out.summary, ended_at=self.now(),
                                  stop_reason=lr.stop_reason,
                                  runner_lost=int(lr.interrupted or bool(out.lost)))
            if requeue:
                books.requeue(self.store, run_id)
            failure = (books.repeated_failure(self.store, self.opts.max_same_failures)
                       if state == FAILED else None)
            if state == FINISHED and self.metric and lr.best is None:
                failure = books.metric_never_logged(self.store, run_id, self.metric, hist, out.summary)
            if failure:
                books.fail_sweep(self.store, failure)
                self.failure = self.no_more = failure
        self.slots[lr.slot] = None
        del self.live[run_id]
        self.event(events.ended(run_id, state, steps=len(hist), metric=self.metric, best=lr.best,
                                error=error, stop_reason=lr.stop_reason, requeued=requeue,
                                log_path=str(lr.spec.log_path), tail=out.tail))

    # --------------------------------------------------------------- stopping runs
    def _flag_laggards(self) -> None:
        try:
            books.flag_stops(self.store, self.engine_cfg)
        except ValueError as e:
            self.event(f"warning: early termination disabled: {e}")
            self.hyperband = False

    def _send_stops(self) -> None:
        flagged = books.flagged_runs(self.store, self.id) if self.live else {}
        for run_id, lr in self.live.items():
            if run_id in flagged and lr.stop_sent_at is None:
                lr.stop_reason = flagged[run_id]
                self.event(f"{run_id} lags: {lr.stop_reason}; sending SIGTERM")
                lr.stop_sent_at = self.now()
                lr.handle.terminate()
            elif lr.stop_sent_at is not None and not lr.killed \
                    and self.now() > lr.stop_sent_at + self.kill_delay:
                self.event(f"{run_id} ignored SIGTERM for {self.kill_delay:g}s: SIGKILL")
                lr.killed = True
                lr.handle.kill()

    def _kill_all(self) -> None:
        for lr in self.live.values():
            lr.interrupted, lr.killed = True, True
            lr.stop_sent_at = lr.stop_sent_at or self.now()
            lr.handle.kill()

    # --------------------------------------------------------------- starting runs
    def _fill_slots(self) -> None:
        while not self.failure and None in self.slots:
            slot = self.slots.index(None)
            claimed = books.claim(self.store, self.engine_cfg, self.id, slot, self.now(), self.no_more)
            if isinstance(claimed, books.NoMore):
                self.no_more = self.no_more or claimed.reason
                self.failure = claimed.reason if claimed.failed else self.failure
                return
            self._launch(*claimed, slot)

    def _launch(self, run_id: str, params: dict, slot: int) -> None:
        gpu = self.gpus[slot % len(self.gpus)] if self.gpus else None
        log_path = self.store.folder / "logs" / f"{run_id}.log"
        try:
            prep = launch.prepare(self.cfg, params, sweep_id=self.sweep_id, run_id=run_id,
                                  wandb_dir=self.wandb_dir, gpu=gpu, **self.launch_args)
            spec = RunSpec(run_id, prep.argv, prep.env, log_path, self.cwd, gpu)
            handle = self.executor.start(spec)
        except OSError as e:
            with self.store.transaction():
                self.store.update_run(run_id, state=FAILED, error=f"could not start: {e}",
                                      ended_at=self.now(), exit_code=None)
                failure = books.repeated_failure(self.store, self.opts.max_same_failures)
                if failure:
                    books.fail_sweep(self.store, failure)
                    self.failure = self.no_more = failure
            return self.event(f"{run_id} could not start: {e}")
        epochs = params.get("epochs", {}).get("value") if isinstance(params.get("epochs"), dict) else None
        self.live[run_id] = LiveRun(handle, slot, spec,
                                    epochs_total=epochs if isinstance(epochs, int) else None)
        self.slots[slot] = run_id
        with self.store.transaction():
            self.store.update_run(run_id, pid=handle.pid, gpu=gpu, log_path=str(log_path), slot=slot,
                                  pid_start=launch.pid_start_ticks(handle.pid) if handle.pid else None,
                                  command=json.dumps(prep.argv))
        where = f" on GPU {gpu}" if gpu is not None else ""
        self.event(events.started(run_id, params, sweep_config.searched_params(self.cfg), where))

    def _refresh(self) -> None:
        if self.view is not None:
            self.view.update(self.store.runs())
