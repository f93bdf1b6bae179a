"""The offline sweep agent's loop: W&B's engine proposes, an executor runs, the store records.

One runner keeps up to ``workers`` runs alive. Each turn (every ``poll_s`` seconds) it
1. reads what each live run logged with ``wandb.log`` since the last turn, from the run's own
   W&B record (``wandb_log``), and stores it with a heartbeat;
2. records the runs whose program exited (finished, stopped on request, or failed);
3. asks hyperband which runs lag, sends them SIGTERM, then SIGKILL after the kill delay;
4. marks the runs of dead runners crashed (``liveness``);
5. obeys the sweep's control from any shell (``controls``: stop, cancel, pause, resume);
6. fills free slots with a re-queued grid point or the engine's next proposal.
The pieces it ties together: ``bookkeeping`` (the store's records and sweep decisions),
``engine`` (sweeps), ``executor`` (processes), ``supervision`` (stops, signals),
``liveness`` and ``events`` (messages).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from functools import partial
from dataclasses import dataclass
from typing import Any, Callable

from . import bookkeeping as books
from . import config as sweep_config
from . import controls, engine, events, liveness
from .errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from .executor import Launcher, LocalExecutor, visible_gpus
from .failures import SAME_FAILURES_TO_STOP
from .program import ANY_PROGRAM, ProgramHooks, program_items
from .ranking import metric_and_goal
from .run_progress import with_progress
from .store import CRASHED, Store
from .supervision import Interrupts, LiveRun, end_state, kill_all, kill_delay, send_stops

EXIT_DONE, EXIT_SWEEP_FAILED = EXIT_OK, EXIT_ERROR


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
    runs_per_gpu: int = 1  # runs sharing each GPU (--runs-per-gpu), round-robin over the GPUs
    cwd: str | None = None  # where programs run; default the current directory
    interpreter: str | None = None  # ${interpreter}; default sys.executable
    live: bool | None = None  # rich live table; default: when stdout is a terminal
    max_same_failures: int = SAME_FAILURES_TO_STOP
    syncable: bool = False  # runs grouped as sweep-<id> instead of carrying WANDB_SWEEP_ID
    executor: Any | None = None  # None: LocalExecutor
    program: ProgramHooks = ANY_PROGRAM  # what the program adds (its exit codes: describe_exit)


class Runner:
    def __init__(self, store: Store, opts: Options, view: Any | None = None,
                 now: Callable[[], float] = time.time):
        self.store, self.opts, self.view, self.now = store, opts, view, now
        meta = store.meta()
        self.sweep_id, self.cfg = meta["sweep_id"], meta["config"]
        self.engine_cfg = sweep_config.engine_config(self.cfg)
        self.metric, self.goal = metric_and_goal(self.engine_cfg)
        self.hyperband = engine.uses_hyperband(self.engine_cfg)
        launch_args = dict(online=bool(opts.online or meta.get("online")),
                           syncable=bool(opts.syncable or meta.get("syncable")),
                           project=opts.project or meta.get("project"),
                           entity=meta.get("entity"), interpreter=opts.interpreter)
        self.cwd, self.wandb_dir = opts.cwd or os.getcwd(), str(store.folder.resolve())
        launch_args["program"] = program_items(self.cfg, self.cwd, opts.program)
        self.gpus = opts.gpus if opts.gpus is not None else visible_gpus()
        self.kill_delay = kill_delay(opts.kill_delay_s)
        self.launcher = Launcher(self.cfg, self.sweep_id, self.wandb_dir, self.cwd,
                                 opts.executor or LocalExecutor(self.wandb_dir), self.gpus,
                                 launch_args, self.kill_delay, runs_per_gpu=opts.runs_per_gpu)
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.slots: list[str | None] = [None] * max(1, int(opts.workers))
        self.live: dict[str, LiveRun] = {}
        self.no_more: str | None = None
        self.failure: str | None = None
        self.signals, self._last_reap = Interrupts(), 0.0
        self.control: controls.Control | None = None  # the sweep's control, as last seen
        self.reap_dead = partial(liveness.reap_dead, stale_after_s=opts.stale_after_s,
                                 requeue_grid=self.cfg.get("method") == "grid", goal=self.goal,
                                 wandb_dir=self.wandb_dir, cwd=self.cwd, metric=self.metric)

    def event(self, msg: str) -> None:
        if self.view is not None:
            self.view.event(msg)

    def run(self) -> int:
        books.register_runner(self.store, self.id, workers=len(self.slots), count=self.opts.count,
                              runs_folder=self.cwd)
        if self.gpus and len(self.slots) > len(self.gpus) * self.opts.runs_per_gpu:
            self.event(events.gpus_shared(len(self.slots), self.gpus))
        self.signals.install()
        exit_reason = "done"
        try:
            while self._turn():
                time.sleep(self.opts.poll_s)
            if not (self.signals.count or self.failure or self._told_to_end()):
                self.failure = books.fail_if_every_run_failed(self.store)
        except BaseException as e:
            exit_reason = f"error: {type(e).__name__}: {e}"
            kill_all(self.live, self.now())  # no run outlives its runner's crash
            raise
        finally:
            self.signals.restore()
            books.sign_off(self.store, self.id, self.now(), "interrupted" if self.signals.count
                           else exit_reason, self.no_more, bool(self.signals.count))
            self._refresh()
        if self.signals.count:
            return EXIT_INTERRUPTED
        return EXIT_SWEEP_FAILED if self.failure else EXIT_DONE

    def _turn(self) -> bool:
        """One turn of the loop; False once nothing runs and nothing more will start."""
        self.signals.act(self.live, self.now(), self.event)
        if self._ingest() and self.hyperband:
            cannot = books.flag_stops(self.store, self.engine_cfg)
            if cannot:
                self.hyperband = False
                self.event(f"warning: early termination disabled: {cannot}")
        for lr in list(self.live.values()):
            rc = lr.handle.poll()
            if rc is not None:
                self._finalize(lr, rc)
        flagged = books.flagged_runs(self.store, self.id) if self.live else {}
        send_stops(self.live, flagged, self.now(), self.kill_delay, self.event)
        if self.now() - self._last_reap > max(5 * self.opts.poll_s, 2.0):
            self._last_reap = self.now()
            for msg in self.reap_dead(self.store, self.id, self.now()):
                self.event(msg)
        self._obey(controls.current(self.store))
        if not self.signals.count:
            self._fill_slots()
        self._refresh()
        return bool(self.live) or not (self.no_more or self.signals.count)

    def _told_to_end(self) -> bool:
        """Whether the sweep's control (stop, cancel) ended it, not its runs."""
        return self.control is not None and self.control.state in controls.ENDING

    def _obey(self, control: controls.Control | None) -> None:
        """Act on the sweep's control: a stop or cancel ends the sweep for this runner (a
        cancel also stops its live runs); a pause only keeps ``claim`` from starting runs."""
        if control != self.control:
            self.control = control
            self.event(controls.runner_line(self.sweep_id, control, str(self.store.folder.parent),
                                            len(self.live)))
        if control is None or control.state not in controls.ENDING:
            return
        self.no_more = self.no_more or f"sweep {control.says()}"
        if control.state == controls.CANCELLED:
            for run_id, lr in self.live.items():
                if lr.stop_sent_at is None:  # SIGKILL follows from send_stops after the delay
                    self.event(f"{run_id}: sweep {control.state}; sending SIGTERM")
                    lr.stop(self.now(), f"sweep {control.says()}")

    def _ingest(self) -> bool:
        """Store the rows the live runs logged since the last turn, with a heartbeat."""
        got = {run_id: lr.handle.new_rows() for run_id, lr in self.live.items()}
        with self.store.transaction():
            books.heartbeat(self.store, self.id, self.now())
            for run_id, lr in self.live.items():
                self._store_rows(lr, got[run_id], None)
        if self.view is not None and getattr(self.view, "plain", False):
            for line in events.steps(got, self.metric, {k: lr.epochs_total for k, lr in self.live.items()}):
                self.event(line)
        return any(got.values())

    def _store_rows(self, lr: LiveRun, rows: list[dict], summary: dict | None) -> None:
        lr.best, reached = books.record_rows(
            self.store, self.engine_cfg, lr.handle.run_id, self.now(), first_step=lr.steps,
            rows=rows, summary=summary, files_dir=lr.handle.files_dir, host=lr.handle.host,
            node_id=lr.handle.node_id, best=lr.best)
        lr.steps += len(rows)
        if reached:
            self.no_more = reached
            self.event(reached + "; no new runs")

    def _finalize(self, lr: LiveRun, rc: int) -> None:
        out = lr.handle.outcome(rc)
        program = self.opts.program
        finished = (lr.interrupted and rc == 0 and not out.lost
                    and program.ended_by_itself(out.files_dir))
        stopped = rc == 0 and not out.lost and program.stopped_by_request(out.summary)
        state, error = end_state(lr, rc, out.tail, out.lost, program.describe_exit,
                                 finished, stopped)
        requeue = state == CRASHED and self.cfg.get("method") == "grid"
        with self.store.transaction():
            self._store_rows(lr, out.rows, out.summary)
            steps, failure = books.record_end(
                self.store, lr.handle.run_id, state=state, exit_code=None if out.lost else rc,
                error=error,
                tail=out.tail, summary=out.summary, now=self.now(), stop_reason=lr.stop_reason,
                lost=state == CRASHED,  # lost, or stopped from outside: not counted
                requeue_grid=requeue, metric=self.metric, best=lr.best,
                max_same_failures=self.opts.max_same_failures)
        if failure:
            self.failure = self.no_more = failure
        self.slots[lr.slot] = None
        del self.live[lr.handle.run_id]
        self.event(events.ended(lr.handle.run_id, state, steps=steps, metric=self.metric,
                                best=lr.best, error=error, stop_reason=lr.stop_reason,
                                requeued=requeue, log_path=str(lr.spec.log_path), tail=out.tail))

    def _fill_slots(self) -> None:
        while not self.failure and None in self.slots:
            slot = self.slots.index(None)
            claimed = books.claim(self.store, self.engine_cfg, self.id, slot, self.now(), self.no_more)
            if isinstance(claimed, books.NoMore) and claimed.paused:
                return
            if isinstance(claimed, books.NoMore):
                self.no_more = self.no_more or claimed.reason
                self.failure = claimed.reason if claimed.failed else self.failure
                return
            self._launch(*claimed, slot)

    def _launch(self, run_id: str, params: dict, slot: int) -> None:
        try:
            handle, spec = self.launcher.start(run_id, params, slot)
        except OSError as e:
            self.failure = books.record_unstartable(self.store, run_id, f"could not start: {e}",
                                                    self.now(), self.opts.max_same_failures)
            self.no_more = self.no_more or self.failure
            return self.event(f"{run_id} could not start: {e}")
        self.live[run_id] = LiveRun.of(handle, slot, spec, params)
        self.slots[slot] = run_id
        books.record_launch(self.store, run_id, pid=handle.pid, gpu=spec.gpu,
                            log_path=str(spec.log_path), slot=slot, argv=spec.argv)
        where = f" on GPU {spec.gpu}" if spec.gpu is not None else ""
        self.event(events.started(run_id, params, sweep_config.searched_params(self.cfg), where))

    def _refresh(self) -> None:
        if self.view is not None:
            self.view.update(with_progress(self.store.runs(), self.opts.program))
