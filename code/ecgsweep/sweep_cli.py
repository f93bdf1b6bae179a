"""Run a W&B sweep YAML fully offline, with W&B's own search and early-stopping engine.

    python code/sweep.py sweep_conf/cnn_bayes.yaml --count 30 --workers 2
    python code/sweep.py --resume SWEEP_ID            # after a crash, kill or reboot
    python code/sweep.py FILE --prior-runs SWEEP_ID   # a new sweep that starts from its runs
    python code/sweep.py FILE --runs-per-gpu 4        # 4 runs share each GPU here
    python code/sweep.py FILE --ray auto --gpus-per-run 0.5   # runs on a Ray cluster
    python code/sweep.py check sweep_conf/*.yaml      # validate without running
    python code/sweep.py check --fix my_sweep.yaml    # write my_sweep.fixed.yaml
    python code/sweep.py status [SWEEP_ID]           # the runs table, any time
    python code/sweep.py status SWEEP_ID --json      # the same for scripts
    python code/sweep.py report SWEEP_ID [--out DIR] # the sweep as pictures (HTML + PNG)
    python code/sweep.py ensemble SWEEP_ID --top K   # the top K runs' models averaged
    python code/sweep.py stop SWEEP_ID               # from any shell: no new runs, live ones finish
    python code/sweep.py cancel SWEEP_ID             # ... and the live runs are stopped too
    python code/sweep.py pause SWEEP_ID              # no new runs until `resume SWEEP_ID`

Each run is started as `wandb agent` starts it (the YAML's command: and its macros,
WANDB_SWEEP_ID, WANDB_RUN_ID, WANDB_SWEEP_PARAM_PATH) with WANDB_MODE=offline, so its
wandb run folder can be uploaded later with the `wandb sync` command printed at the end.
State lives in <store>/<SWEEP_ID>/sweep.db (SQLite); several runners may share it.
A sweep of code/train.py also gets its parameters checked and its best models promoted
and named in the summary (ecgsweep.sweep_hooks); any other program runs as W&B runs it.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ecgsweep.cli import (UserError, non_negative_float, positive_float, positive_int, prog,
                          run_main)
from ecgsweep.sweep import controls
from ecgsweep.sweep.store import DEFAULT_STORE

if TYPE_CHECKING:
    from ecgsweep.sweep.program import ProgramHooks

COMMANDS = ("check", "status", "report", "ensemble", *controls.ACTIONS)
YAML_SUFFIXES = (".yaml", ".yml")


def gpu_ids(text: str) -> list[str]:
    """argparse type: GPU ids as CUDA_VISIBLE_DEVICES names them, an index or a GPU-/MIG-
    UUID each; anything else would start every run on no GPU."""
    ids = [g.strip() for g in text.split(",") if g.strip()]
    bad = [g for g in ids if not (g.isdigit() or g.startswith(("GPU-", "MIG-")))]
    if bad:
        raise argparse.ArgumentTypeError(f"{', '.join(bad)}: not a GPU index (0, 1, ...) or "
                                         "UUID (GPU-..., MIG-...); `nvidia-smi -L` lists them")
    return ids


def add_store_option(p: argparse.ArgumentParser) -> None:
    """``--store``, as every command that finds a sweep by its id takes it."""
    p.add_argument("--store", default=DEFAULT_STORE, metavar="DIR",
                   help=f"folder holding one sub-folder per sweep (default {DEFAULT_STORE})")


def run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("sweep.py", "sweep"), description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("yaml", nargs="?", help="sweep config (sweep_conf/*.yaml)")
    p.add_argument("--count", type=positive_int, default=None,
                   help="run at most N runs in this sweep in all (W&B's run_cap; failed runs "
                        "count, runs lost with their runner, recorded crashed, do not). With "
                        "--resume, replaces the cap the sweep was started with")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="runs at once (default: --runs-per-gpu x the GPUs visible, 1 without "
                        "GPUs; with --ray, as many as the cluster has room for); GPUs are "
                        "handed out round-robin")
    p.add_argument("--runs-per-gpu", type=positive_int, default=None, metavar="K",
                   help="runs sharing each GPU on this machine (default 1), each with "
                        "TensorFlow's memory growth on and about 0.9/K of the GPU's memory for "
                        "JAX and PyTorch; Ray's --gpus-per-run 1/K")
    add_store_option(p)
    p.add_argument("--resume", metavar="SWEEP_ID",
                   help="continue a sweep in this process after a kill or reboot (also one "
                        "another runner is working on); not `resume SWEEP_ID`, which lets a "
                        "paused sweep start runs again")
    p.add_argument("--prior-runs", "-R", action="append", metavar="SWEEP[/RUN]",
                   help="a new sweep's search starts from these runs of earlier sweeps in the "
                        "store: all finished and stopped runs of SWEEP, or run RUN of it; "
                        "repeat, or separate with commas (W&B's -R/--prior_run: bayes fits "
                        "them, grid skips their points, random ignores them). They must lie "
                        "inside the new sweep's parameters")
    p.add_argument("--sweep-id", metavar="ID",
                   help="create the sweep with this ID, or join it if it exists with the same "
                        "YAML: one command for several runner processes on one machine")
    p.add_argument("--project", help="W&B project of the runs (sets WANDB_PROJECT)")
    p.add_argument("--online", action="store_true",
                   help="let runs log to the W&B server (WANDB_MODE=online); default offline")
    p.add_argument("--syncable", action="store_true",
                   help="runs carry W&B group sweep-<ID> instead of WANDB_SWEEP_ID, so that "
                        "`wandb sync` can upload them to a server that never saw this sweep")
    p.add_argument("--gpus", type=gpu_ids,
                   help="comma-separated GPU ids to hand out: indices (0,1) or UUIDs "
                        "(GPU-..., MIG-...), as CUDA_VISIBLE_DEVICES takes them (default: "
                        "CUDA_VISIBLE_DEVICES, else all that nvidia-smi lists)")
    p.add_argument("--poll", type=positive_float, default=1.0,
                   help="seconds between checks (default 1)")
    p.add_argument("--kill-delay", type=non_negative_float, default=None,
                   help="seconds from SIGTERM to SIGKILL when stopping a run (default "
                        "WANDB_AGENT_KILL_DELAY or 30, as wandb agent)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run the runs on a Ray cluster: 'auto' or HOST:PORT of its head; the "
                        "store stays here (needs pip install -r requirements-ray.txt)")
    p.add_argument("--cpus-per-run", type=non_negative_float, default=1.0, metavar="N",
                   help="with --ray: CPUs each run asks for (default 1)")
    p.add_argument("--gpus-per-run", type=non_negative_float, default=0.0, metavar="F",
                   help="with --ray: GPUs each run asks for, fractions allowed (0.25: four runs "
                        "share a GPU; default 0)")
    p.add_argument("--plain", action="store_true",
                   help="one line per event instead of the live table")
    return p


def check_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("sweep.py check", "check"),
                                description="Validate sweep YAMLs: W&B's schema plus the usual "
                                            "mistakes. Errors stop a sweep; warnings are what "
                                            "W&B runs as written, and so does the runner. Exit "
                                            "0 when all can run (warnings or not), 2 otherwise.")
    p.add_argument("yaml", nargs="+")
    p.add_argument("--fix", action="store_true",
                   help="write FILE.fixed.yaml beside each FILE with the mechanical fixes (1e-4 "
                        "read as a string, log_uniform bounds that are values, repeated values), "
                        "print each change, then check the fixed file")
    return p


def status_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("sweep.py status", "status"),
                                description="Print a sweep's runs table and leaderboard "
                                            "(no ID: list the sweeps in the store).")
    p.add_argument("sweep_id", nargs="?")
    add_store_option(p)
    p.add_argument("--json", action="store_true",
                   help="print the sweep and its runs as JSON (needs SWEEP_ID): {\"sweep\": {id, "
                        "state, method, metric, goal, ...}, \"runs\": [{id, state, params, "
                        "metric, steps, exit_code, stop_reason, host, node_id, gpu}, ...]}")
    return p


def report_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("sweep.py report", "report"),
                                description="Draw a sweep as one self-contained HTML file "
                                            "(works offline) and the same figures as PNG.")
    p.add_argument("sweep_id")
    add_store_option(p)
    p.add_argument("--out", help="folder for report.html and the PNGs "
                                 "(default <store>/<SWEEP_ID>/report)")
    return p


def ensemble_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("sweep.py ensemble", "ensemble"),
                                description="Average the saved models of a sweep's top K runs "
                                            "(no retraining) and print the best single run "
                                            "against the ensemble on validation and test.")
    p.add_argument("sweep_id")
    p.add_argument("--top", type=positive_int, required=True, metavar="K",
                   help="how many of the best runs to average")
    add_store_option(p)
    return p


def control_parser(action: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog(f"sweep.py {action}", action),
                                description=controls.help_text(action)
                                + " Recorded in the sweep's store; every runner sharing it "
                                  "acts on it at its next turn.")
    p.add_argument("sweep_id")
    add_store_option(p)
    return p


def refuse_unknown_command(word: str) -> None:
    """UserError when the first word is neither a command nor a sweep YAML.

    The run form takes a YAML path first, so only a word that names no file and does not
    end in .yaml/.yml counts as a mistyped command."""
    if word in COMMANDS or word.startswith("-") or Path(word).exists() \
            or Path(word).suffix.lower() in YAML_SUFFIXES:
        return
    close = difflib.get_close_matches(word, COMMANDS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UserError(f"unknown command {word!r}{hint} (commands: {', '.join(COMMANDS)}; or give "
                    "the path of a sweep YAML to run it)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from ecgsweep.sweep import commands
    from ecgsweep.sweep_hooks import ECG_PROGRAM

    if argv:
        refuse_unknown_command(argv[0])
    if argv and argv[0] == "check":
        args = check_parser().parse_args(argv[1:])
        check = commands.fix_files if args.fix else commands.check_files
        return check(args.yaml, program=ECG_PROGRAM)
    if argv and argv[0] == "status":
        args = status_parser().parse_args(argv[1:])
        if args.json and not args.sweep_id:
            status_parser().error("--json needs a SWEEP_ID")
        return commands.status(args.sweep_id, store_root=args.store, as_json=args.json,
                               program=ECG_PROGRAM)
    if argv and argv[0] == "report":
        args = report_parser().parse_args(argv[1:])
        return commands.report(args.sweep_id, store_root=args.store, out_dir=args.out)
    if argv and argv[0] == "ensemble":
        from ecgsweep.sweep_ensemble import ensemble_command

        args = ensemble_parser().parse_args(argv[1:])
        return ensemble_command(args.sweep_id, top=args.top, store_root=args.store)
    if argv and argv[0] in controls.ACTIONS:
        args = control_parser(argv[0]).parse_args(argv[1:])
        return commands.control(argv[0], args.sweep_id, store_root=args.store)
    return run(argv, ECG_PROGRAM)


def run(argv: list[str], program: ProgramHooks) -> int:
    """The run form: start, join or resume a sweep of ``program``."""
    parser = run_parser()
    args = parser.parse_args(argv)
    from ecgsweep.sweep import commands
    from ecgsweep.sweep.commands import RayRequest
    from ecgsweep.sweep.runner import Options

    if args.ray is None and (args.cpus_per_run != 1.0 or args.gpus_per_run != 0.0):
        parser.error("--cpus-per-run and --gpus-per-run need --ray ADDRESS")
    if args.ray is not None and args.runs_per_gpu is not None:
        parser.error("--runs-per-gpu is for runs on this machine; on a Ray cluster "
                     "--gpus-per-run 1/K packs K runs on a GPU")
    if args.resume and args.prior_runs:
        parser.error("--prior-runs is for a new sweep: its prior runs are fixed when it is "
                     "created")
    ray = (RayRequest(args.ray, args.cpus_per_run, args.gpus_per_run, args.workers)
           if args.ray is not None else None)
    runs_per_gpu = args.runs_per_gpu or 1
    gpus = args.gpus
    workers = args.workers
    if ray is None and workers is None:
        from ecgsweep.sweep.executor import default_workers, visible_gpus

        gpus = gpus if gpus is not None else visible_gpus()
        workers = default_workers(gpus, runs_per_gpu)
    opts = Options(workers=workers or 1, count=args.count, poll_s=args.poll,
                   kill_delay_s=args.kill_delay, online=args.online, project=args.project,
                   gpus=gpus, runs_per_gpu=runs_per_gpu,
                   live=False if args.plain else None, syncable=args.syncable,
                   program=program)
    return commands.run_sweep(yaml_path=args.yaml, store_root=args.store, resume=args.resume,
                              sweep_id=args.sweep_id, opts=opts, ray=ray,
                              prior_runs=args.prior_runs)
