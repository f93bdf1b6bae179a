"""Start one run exactly as ``wandb agent`` starts it.

This mirrors ``wandb.wandb_agent.Agent._command_run`` (wandb 0.31) and reuses wandb's own
functions for everything it can:

- the command is the YAML's ``command:`` (or the agent's default ``${env} ${interpreter}
  ${program} ${args}``), with ``${envvar:NAME}`` filled in by
  ``wandb.sdk.launch.sweeps.utils.create_sweep_command``;
- the argument formats (``${args}``, ``${args_no_hyphens}``, ``${args_json}``, ...) come
  from ``create_sweep_command_args``; a list item that is a whole ``${macro}`` is replaced
  by that macro's list, an unknown macro by nothing, any other item is kept verbatim;
- the parameters are written to ``<WANDB_DIR>/wandb/sweep-<sweep_id>/config-<run_id>.yaml``
  with ``config_util.save_config_file_from_dict`` and named in ``WANDB_SWEEP_PARAM_PATH``
  (``wandb.init`` reads it); ``${args_json_file}`` gets ``config-<run_id>.json`` beside it;
- ``${env}`` is ``/usr/bin/env``; the run gets ``WANDB_SWEEP_ID`` and ``WANDB_RUN_ID``,
  runs in the current directory, in its own process group, with stdin closed.

Two deliberate differences: ``${interpreter}`` is ``sys.executable`` (the runner's own
Python, so a virtualenv works without being activated), where the agent writes ``python``;
and a ``program:`` that is no file from the current directory is run as the program's
hooks say it is installed (``program.program_items``), where the agent would fail.

Added for the offline runner: ``WANDB_DIR`` is the sweep's folder in the store (so the
sweep's runs sit together and one ``wandb sync`` uploads them), ``WANDB_MODE=offline``
unless ``--online``, the run's record written every second (``RECORD_FLUSH``), so the runner
sees each step at once, ``CUDA_VISIBLE_DEVICES`` per worker (with ``--runs-per-gpu K`` above 1,
the variables that let K runs share a GPU: ``gpu_share_env``), and a guard process between the
runner and the program (``guard``): every process of the run is in the guard's process group
and ends with the runner, also when the runner is killed with SIGKILL.
"""

from __future__ import annotations

import copy
import glob
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

# How often wandb writes a run's record (run-<id>.wandb), where the runner reads its steps:
# every second instead of wandb's 15, so hyperband sees a step (a k-fold run's fold) at once.
RECORD_FLUSH = ("WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL", "1")

# The share of a GPU's memory a run may take when several share it: ``code/train.py`` hands
# it to PyTorch (``torch.cuda.set_per_process_memory_fraction``); any program may read it.
GPU_MEMORY_FRACTION_ENV = "SWEEP_GPU_MEMORY_FRACTION"
# What the runs sharing a GPU take of its memory in all; the rest is the CUDA contexts'.
GPU_MEMORY_SHARED = 0.9


def gpu_share_env(runs_per_gpu: int) -> dict[str, str]:
    """The variables that let ``runs_per_gpu`` runs share one GPU (none for one run):
    TensorFlow allocates as it grows instead of taking the whole GPU, JAX and PyTorch
    (``GPU_MEMORY_FRACTION_ENV``) keep to an even share of its memory."""
    if runs_per_gpu <= 1:
        return {}
    fraction = f"{GPU_MEMORY_SHARED / runs_per_gpu:.3f}"
    return {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_MEM_FRACTION": fraction,
            GPU_MEMORY_FRACTION_ENV: fraction}


@dataclass
class Prepared:
    argv: list[str]
    env: dict[str, str]
    param_path: str
    json_path: str


def param_file_paths(wandb_dir: str, sweep_id: str, run_id: str) -> tuple[str, str]:
    """(yaml, json) paths the agent uses for a run's parameters, under ``wandb_dir``."""
    base = os.path.join(wandb_dir, "wandb", f"sweep-{sweep_id}")
    return (os.path.join(base, f"config-{run_id}.yaml"),
            os.path.join(base, f"config-{run_id}.json"))


def expand_command(cfg: Mapping[str, Any], run_params: Mapping[str, Any], *,
                   args_json_file: str, interpreter: str | None = None,
                   program: list[str] | None = None) -> list[str]:
    """The argv `wandb agent` would run for these parameters ({name: {"value": v}});
    ``program``: what ``${program}`` stands for (default: the YAML's ``program:``)."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    command = cfg.get("command")
    sweep_command = sweep_utils.create_sweep_command(copy.deepcopy(command) if command else None)
    sweep_vars: dict[str, Any] = sweep_utils.create_sweep_command_args({"args": dict(run_params)})
    sweep_vars["interpreter"] = [interpreter or sys.executable]
    sweep_vars["program"] = list(program) if program else [cfg.get("program")]
    sweep_vars["args_json_file"] = [args_json_file]
    sweep_vars["env"] = ["/usr/bin/env"]
    argv: list[str] = []
    for c in sweep_command:
        c = str(c)
        if c.startswith("${") and c.endswith("}"):
            replace_list = sweep_vars.get(c[2:-1])
            argv += replace_list or []
        else:
            argv += [c]
    return [str(a) for a in argv]


def prepare(cfg: Mapping[str, Any], run_params: Mapping[str, Any], *, sweep_id: str,
            run_id: str, wandb_dir: str, base_env: Mapping[str, str] | None = None,
            online: bool = False, project: str | None = None, entity: str | None = None,
            gpu: str | None = None, interpreter: str | None = None,
            syncable: bool = False, program: list[str] | None = None,
            runs_per_gpu: int = 1) -> Prepared:
    """Write the run's parameter files and return its argv and environment.

    ``syncable``: leave WANDB_SWEEP_ID out and group the runs as ``sweep-<id>`` instead,
    because W&B's server refuses runs that name a sweep it does not know ("sweep ... not
    found" on ``wandb sync``). The parameters still reach ``wandb.config``: ``wandb.init``
    applies WANDB_SWEEP_PARAM_PATH with or without a sweep ID. ``runs_per_gpu``: how many
    runs share ``gpu`` (``gpu_share_env``).
    """
    from wandb.sdk.lib import config_util

    from .config import command_of

    wandb_dir = os.path.abspath(wandb_dir)
    param_path, json_path = param_file_paths(wandb_dir, sweep_id, run_id)
    config_util.save_config_file_from_dict(param_path, dict(run_params))
    argv = expand_command(cfg, run_params, args_json_file=json_path, interpreter=interpreter,
                          program=program)
    if "${args_json_file}" in command_of(cfg):
        from wandb.sdk.launch.sweeps import utils as sweep_utils

        with open(json_path, "w") as fp:
            fp.write(sweep_utils.create_sweep_command_args({"args": dict(run_params)})
                     ["args_json"][0])

    env = dict(os.environ if base_env is None else base_env)
    env.pop("WANDB_SERVICE", None)  # as the agent does: each run starts its own service
    if syncable:
        env.pop("WANDB_SWEEP_ID", None)
        env["WANDB_RUN_GROUP"] = f"sweep-{sweep_id}"
    else:
        env["WANDB_SWEEP_ID"] = sweep_id
    env["WANDB_RUN_ID"] = run_id
    env["WANDB_SWEEP_PARAM_PATH"] = param_path
    env["WANDB_DIR"] = wandb_dir
    env["WANDB_MODE"] = "online" if online else "offline"
    env.setdefault(*RECORD_FLUSH)  # a value the user set wins
    if project:
        env["WANDB_PROJECT"] = project
    if entity:
        env["WANDB_ENTITY"] = entity
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
        for name, value in gpu_share_env(runs_per_gpu).items():
            env.setdefault(name, value)  # a value the user set wins
    return Prepared(argv=argv, env=env, param_path=param_path, json_path=json_path)


# ----------------------------------------------------------------------------- processes

GUARD = Path(__file__).with_name("guard.py")


def start(argv: list[str], env: Mapping[str, str], *, log_path: str | Path,
          cwd: str | Path | None = None, kill_delay_s: float) -> subprocess.Popen:
    """Start the run under its guard, in a process group of its own that the guard leads,
    output to ``log_path``. The returned process is the guard: signal its group (its pid) to
    reach the whole run, and keep its ``stdin`` open while the run lives (closing it, or this
    process dying, stops the run). OSError when the program cannot be started."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    ready_r, ready_w = os.pipe()
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(GUARD), repr(float(kill_delay_s)),
                 str(ready_w), *argv],
                env=dict(env), cwd=None if cwd is None else str(cwd), stdin=subprocess.PIPE,
                stdout=log, stderr=subprocess.STDOUT, process_group=0, pass_fds=(ready_w,))
    except BaseException:
        os.close(ready_r)
        raise
    finally:
        os.close(ready_w)  # the guard holds its own copy: end of file once it wrote
    with os.fdopen(ready_r, "rb") as ready:
        error = ready.read().decode(errors="replace")
    if error:
        proc.wait()
        raise OSError(error)
    return proc


# How deep below the runs' folder a program's own ``wandb.init(dir=...)`` folder is looked for.
RUN_DIR_DEPTH = 2


def find_files_dir(wandb_dir: str | Path, run_id: str, cwd: str | Path | None = None) -> Path | None:
    """The ``files`` folder of the wandb run with this ID (offline or online), if it exists:
    in the sweep's ``wandb/`` (``WANDB_DIR``), the runs' folder's ``wandb/``, else a
    ``wandb/`` up to ``RUN_DIR_DEPTH`` folders below it (a program that passes
    ``wandb.init(dir=...)``, which wins over ``WANDB_DIR``)."""
    cwd = Path(cwd or os.getcwd())
    roots = [str(Path(wandb_dir) / "wandb"), str(cwd / "wandb")]
    roots += [str(cwd.joinpath(*["*"] * depth, "wandb")) for depth in range(1, RUN_DIR_DEPTH + 1)]
    for root in roots:
        hits = sorted(glob.glob(str(Path(root) / f"*run-*-{glob.escape(run_id)}")))
        if hits:
            return Path(hits[-1]) / "files"
    return None


def pid_start_ticks(pid: int) -> int | None:
    """Start time of a process (clock ticks since boot), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int | None, start_ticks: int | None = None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start_ticks is not None:
        now = pid_start_ticks(pid)
        if now is not None and now != start_ticks:
            return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    return True


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""
