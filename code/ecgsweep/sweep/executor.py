"""Process launch and supervision: where a run's program runs and how it is stopped.

An executor starts a prepared command (``launch.prepare``) and hands back a run handle.
The runner's loop only talks to handles: ``poll()`` (exit code or None), ``new_rows()``
(history rows the program logged since the last call), ``terminate()`` (SIGTERM, as the
agent sends, to every process of the run), ``kill()`` (SIGKILL to them) and ``outcome()``
once it exited. A local run's processes are one process group led by its guard (``guard``),
so a signal reaches a program that a shell script started without ``exec`` too.
``LocalExecutor`` runs programs on this machine; another executor (a cluster's, see
``ray_executor``) only has to offer the same calls. An executor that loses a run (its node
died) returns from ``poll()`` any exit code and from ``outcome()`` an ``Outcome`` whose
``lost`` says why: the runner records the run crashed and re-queues its grid point.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import launch
from .failures import read_tail
from .wandb_log import LogError, RunLog, run_log_path


@dataclass
class RunSpec:
    """Everything needed to start one run's program."""
    run_id: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: str
    kill_delay_s: float  # SIGTERM -> SIGKILL, also when the runner died
    gpu: str | None = None


@dataclass
class Outcome:
    """What a run left behind: its exit code, last rows, summary and output tail."""
    exit_code: int
    rows: list[dict[str, Any]]
    summary: dict[str, Any] | None
    tail: str
    files_dir: Path | None
    lost: str | None = None  # why the executor lost the run (its node died): run crashed


class RunHandle(Protocol):
    run_id: str
    pid: int | None
    host: str
    files_dir: Path | None  # the W&B run's files/ folder once known (where its model lies)
    node_id: str | None  # the cluster node running it (None: this machine)

    def poll(self) -> int | None: ...
    def new_rows(self) -> list[dict[str, Any]]: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def outcome(self, exit_code: int) -> Outcome: ...


class RunMetrics:
    """A run's live metrics, read from its W&B run record once the program has created it."""

    def __init__(self, wandb_dir: str, run_id: str, cwd: str):
        self.wandb_dir, self.run_id, self.cwd = wandb_dir, run_id, cwd
        self.files_dir: Path | None = None
        self.log: RunLog | None = None
        self.damage: str | None = None

    def _find(self) -> RunLog | None:
        if self.log is None:
            self.files_dir = self.files_dir or launch.find_files_dir(self.wandb_dir, self.run_id,
                                                                     self.cwd)
            path = run_log_path(self.files_dir.parent) if self.files_dir else None
            self.log = RunLog(path) if path else None
        return self.log

    def new_rows(self) -> list[dict[str, Any]]:
        """Rows logged since the last call. A damaged record is read up to the damage and
        then left alone (``damage`` says where): one run's file never stops the sweep."""
        log = self._find()
        if log is None or self.damage:
            return []
        before = len(log.history)
        try:
            return log.read()
        except LogError as e:
            self.damage = str(e)
            return log.history[before:]

    def summary(self) -> dict[str, Any] | None:
        log = self._find()
        return dict(log.summary) if log and log.summary else None


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a run's process group; nothing when it is already gone."""
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass


class LocalRun:
    """A program running on this machine under its guard, in the guard's process group."""

    def __init__(self, spec: RunSpec, proc: subprocess.Popen, wandb_dir: str):
        self.run_id, self.spec, self.proc = spec.run_id, spec, proc
        self.pid: int | None = proc.pid
        self.host = socket.gethostname()
        self.node_id: str | None = None
        self.metrics = RunMetrics(wandb_dir, spec.run_id, spec.cwd)

    @property
    def files_dir(self) -> Path | None:
        return self.metrics.files_dir

    def poll(self) -> int | None:
        rc = self.proc.poll()
        if rc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()  # the guard's lifeline: held open while the run lives
        return rc

    def new_rows(self) -> list[dict[str, Any]]:
        return self.metrics.new_rows()

    def terminate(self) -> None:
        signal_group(self.proc.pid, signal.SIGTERM)

    def kill(self) -> None:
        signal_group(self.proc.pid, signal.SIGKILL)

    def outcome(self, exit_code: int) -> Outcome:
        rows = self.metrics.new_rows()
        tail = read_tail(self.spec.log_path)
        if self.metrics.damage:  # said where the user looks: the run's output tail
            tail += ("\nwarning: its W&B record is read only up to the damage: "
                     f"{self.metrics.damage}")
        return Outcome(exit_code, rows, self.metrics.summary(), tail, self.metrics.files_dir)


class LocalExecutor:
    """Runs each program as a child process of the runner (the embedded default)."""

    def __init__(self, wandb_dir: str):
        self.wandb_dir = wandb_dir

    def start(self, spec: RunSpec) -> LocalRun:
        """Start the program; OSError when it cannot be started at all."""
        proc = launch.start(spec.argv, spec.env, log_path=spec.log_path, cwd=spec.cwd,
                            kill_delay_s=spec.kill_delay_s)
        return LocalRun(spec, proc, self.wandb_dir)


def gpu_for_slot(gpus: list[str], slot: int) -> str | None:
    """The GPU a worker slot's runs get: round-robin over the GPUs, so the runs spread over
    all GPUs before any GPU takes a second one (None without GPUs)."""
    return gpus[slot % len(gpus)] if gpus else None


def default_workers(gpus: list[str], runs_per_gpu: int) -> int:
    """Runs at once when ``--workers`` is not given: ``runs_per_gpu`` per GPU, else one."""
    return max(1, runs_per_gpu * len(gpus))


class Launcher:
    """Starts a claimed run: the command as ``wandb agent`` builds it, the slot's GPU
    (``gpu_for_slot``; ``runs_per_gpu`` runs share one, with ``launch.gpu_share_env``),
    output to ``<store>/logs/<run id>.log``, on the given executor."""

    def __init__(self, cfg: dict, sweep_id: str, wandb_dir: str, cwd: str, executor: Any,
                 gpus: list[str], launch_args: dict[str, Any], kill_delay_s: float,
                 runs_per_gpu: int = 1):
        self.cfg, self.sweep_id, self.wandb_dir, self.cwd = cfg, sweep_id, wandb_dir, cwd
        self.executor, self.gpus, self.launch_args = executor, gpus, launch_args
        self.kill_delay_s, self.runs_per_gpu = kill_delay_s, runs_per_gpu

    def start(self, run_id: str, params: dict, slot: int) -> tuple[RunHandle, RunSpec]:
        """OSError when the program cannot be started."""
        gpu = gpu_for_slot(self.gpus, slot)
        log_path = Path(self.wandb_dir) / "logs" / f"{run_id}.log"
        prep = launch.prepare(self.cfg, params, sweep_id=self.sweep_id, run_id=run_id,
                              wandb_dir=self.wandb_dir, gpu=gpu, runs_per_gpu=self.runs_per_gpu,
                              **self.launch_args)
        spec = RunSpec(run_id, prep.argv, prep.env, log_path, self.cwd,
                       kill_delay_s=self.kill_delay_s, gpu=gpu)
        return self.executor.start(spec), spec


def visible_gpus(env: dict[str, str] | None = None) -> list[str]:
    """GPU ids to hand out to the workers: CUDA_VISIBLE_DEVICES if set, else nvidia-smi."""
    import shutil

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
