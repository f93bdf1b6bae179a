"""The commands of ``code/sweep.py``: run (or resume) a sweep, check a YAML, show status,
draw the report, steer a sweep (stop, cancel, pause, resume). Each takes the program's hooks
(``program.ProgramHooks``) where what the program adds matters: its checks, its exit codes,
its lines in the summary."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from . import config as sweep_config
from . import controls, prior
from . import fix as sweep_fix
from . import table
from .bookkeeping import RUNS_FOLDER_KEY, create_or_join
from .errors import EXIT_OK, UserError
from .files import require_folder, writable_folder, write_text_whole
from .hints import another_runs_folder, continue_command, sweep_command
from .liveness import runner_alive
from .program import ANY_PROGRAM, ProgramHooks
from .progress import Progress
from .ranking import metric_and_goal
from .results import sync_command, sync_note
from .run_progress import with_progress
from .runner import Options, Runner
from .store import (DEFAULT_STORE, RUNNING, DamagedStore, Store, StoreError, list_sweeps,
                    open_store, refuse_network_store, sqlite_errors)


def default_console() -> Console:
    """The console the commands print to: the terminal's width, or wide enough for a log."""
    c = Console(highlight=False)
    if not c.is_terminal:
        c = Console(highlight=False, width=max(c.width, 160))
    return c


# ----------------------------------------------------------------------------- check


def check_files(paths: list[str], *, program: ProgramHooks = ANY_PROGRAM,
                out: Console | None = None) -> int:
    """Print one line per problem; 0 when every file can run, 2 otherwise."""
    out = out or default_console()
    bad = False
    for path in paths:
        try:
            cfg = sweep_config.load(path)
        except (sweep_config.ConfigError, FileNotFoundError) as e:
            out.print(str(e), markup=False, soft_wrap=True)
            bad = True
            continue
        problems = sweep_config.check(cfg, program=program)
        for p in problems:
            out.print(f"{path}: {p}", markup=False, soft_wrap=True)
        if sweep_config.errors(problems):
            bad = True
        else:
            out.print(f"{path}: ok ({_describe(cfg)})", markup=False, soft_wrap=True)
    return 2 if bad else 0


def fix_files(paths: list[str], *, program: ProgramHooks = ANY_PROGRAM,
              out: Console | None = None) -> int:
    """Write FILE.fixed.yaml for each FILE that has mechanical fixes, print each change and
    check the result; the exit code is check's on the fixed files (or on the unchanged ones)."""
    out = out or default_console()
    return max((_fix_file(Path(p), out, program) for p in paths), default=0)


def _fix_file(path: Path, out: Console, program: ProgramHooks) -> int:
    try:
        cfg = sweep_config.load(path)
    except (sweep_config.ConfigError, FileNotFoundError) as e:
        out.print(str(e), markup=False, soft_wrap=True)
        return 2
    fixed, changes = sweep_fix.fix(cfg, program=program)
    if not changes:
        out.print(f"{path}: nothing to fix mechanically; no file written", markup=False,
                  soft_wrap=True)
        return check_files([str(path)], program=program, out=out)
    target = sweep_fix.fixed_path(path)
    try:
        write_text_whole(target, sweep_fix.to_yaml(fixed, source=path.name))
    except OSError as e:
        print(f"error: {target}: cannot write the fixed copy ({e.strerror or e}); nothing was "
              f"written: copy {path} to a folder you can write and run check --fix there",
              file=sys.stderr)
        return 2
    for change in changes:
        out.print(f"{path}: {change}", markup=False, soft_wrap=True)
    out.print(f"{path}: {len(changes)} change(s) written to {target}; checking it:",
              markup=False, soft_wrap=True)
    return check_files([str(target)], program=program, out=out)


def fix_hint(path: str, problems: list[sweep_config.Problem]) -> str | None:
    """The line that points at ``check --fix`` when some of ``problems`` are mechanical."""
    if not any(p.message.endswith(sweep_config.FIX_HINT) for p in problems):
        return None
    return (f"{path}: `{sweep_command('check')} --fix {path}` writes "
            f"{sweep_fix.fixed_path(path)} with the mechanical fixes")


def _describe(cfg: dict) -> str:
    bits = [f"method {cfg.get('method')}"]
    n = sweep_config.grid_size(cfg)
    if n is not None:
        bits.append(f"{n} grid points")
    searched = sweep_config.searched_params(cfg)
    bits.append(f"{len(searched)} searched parameter{'s' if len(searched) != 1 else ''}")
    metric, goal = metric_and_goal(cfg)
    if metric:
        bits.append(f"metric {metric} ({goal})")
    et = cfg.get("early_terminate") or {}
    if et.get("type"):
        bits.append(f"early_terminate {et['type']}")
    return ", ".join(bits)


# ----------------------------------------------------------------------------- run


@dataclass
class RayRequest:
    """``--ray ADDRESS`` and the resources each run asks for; ``workers`` None: as many runs
    at once as the cluster has room for."""
    address: str
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    workers: int | None = None


def run_sweep(*, yaml_path: str | None, store_root: str = DEFAULT_STORE, resume: str | None = None,
              sweep_id: str | None = None, opts: Options | None = None,
              console: Console | None = None, ray: RayRequest | None = None,
              prior_runs: list[str] | None = None) -> int:
    """Start, join or resume a sweep and run it here; ``prior_runs``: ``SWEEP`` or
    ``SWEEP/RUN`` references whose runs a new sweep's search starts from."""
    opts = opts or Options()
    console = console or default_console()
    refuse_network_store(store_root)
    if ray is not None:
        from . import ray_executor

        # an unreachable cluster, or one where no node can hold a run, fails before any
        # sweep is made
        ray_executor.require_room(ray.address, ray.cpus_per_run, ray.gpus_per_run)
    if resume:
        store, created = _resume(store_root, resume, yaml_path, console), False
    else:
        store, created = _create(store_root, yaml_path, sweep_id, opts, console, prior_runs)
    if not created and _ended_by_control(store, console):
        return EXIT_OK
    meta = store.meta()
    if resume:  # a new or joined sweep's YAML was checked in _create, its program included
        _check_runs_folder(meta, store, opts)
        _check_program_found(meta, opts)
    if ray is not None:
        _use_ray(opts, ray, store, console)
    cfg = meta["config"]
    sid = meta["sweep_id"]
    verb = "created" if created else "resuming" if resume else "joining"
    live = opts.live if opts.live is not None else console.is_terminal
    cap = opts.count if opts.count is not None else meta.get("run_cap")
    limit = f"at most {cap} run{'s' if cap != 1 else ''}" if cap else (
        "until the grid is exhausted" if cfg.get("method") == "grid"
        else "until stopped (no --count)")
    console.print(f"sweep {sid} {verb}: {_describe(cfg)}; {limit}; "
                  f"{opts.workers} worker{'s' if opts.workers != 1 else ''}", markup=False, soft_wrap=True)
    console.print(f"store: {store.path}   runs' output: {store.folder / 'logs'}", markup=False, soft_wrap=True)
    if not created:
        rows = store.runs()
        if rows:
            console.print(f"so far: {table.counts_line(rows)}", markup=False, soft_wrap=True)
    prior_rows = store.prior_runs()
    if prior_rows:
        console.print(prior.what_the_search_does(cfg.get("method"), prior_rows), markup=False,
                      soft_wrap=True)
    searched = sweep_config.searched_params(cfg)
    metric = metric_and_goal(cfg)[0]
    header = f"sweep {sid} · {cfg.get('method')} · {meta.get('source')}"
    with table.View(console, live=live, metric=metric, searched=searched, header=header) as view:
        runner = Runner(store, opts, view=view)
        rc = runner.run()
    final_report(store, console, cwd=opts.cwd, show_table=not live, runner=runner,
                 program=opts.program)
    console.print(f"report: {draw_report(store)}", markup=False, soft_wrap=True)
    return rc


def _resume(store_root: str, resume: str, yaml_path: str | None, console: Console) -> Store:
    store = open_store(store_root, resume, "--resume")
    with sqlite_errors(store.path):
        if yaml_path and sweep_config.read_text(yaml_path) != store.get("yaml"):
            raise UserError(f"{yaml_path} differs from the config sweep {resume} was started "
                            f"with (kept in {store.path}); --resume continues with that one: "
                            "drop the YAML argument, or start a new sweep without --resume")
        if store.get("state") == "failed":
            console.print(f"the sweep had stopped: {store.get('failure')}; resuming",
                          markup=False, soft_wrap=True)
            with store.transaction():
                store.set("state", "running")
    return store


def _check_runs_folder(meta: dict, store: Store, opts: Options) -> None:
    """A sweep resumed from another folder than the one its runs ran in is refused: its runs
    would read their relative paths (data, models) from here, and mix data sets."""
    ran_in = meta.get(RUNS_FOLDER_KEY)
    if another_runs_folder(ran_in, opts.cwd or os.getcwd()):
        raise UserError(f"sweep {meta['sweep_id']}'s runs ran in {ran_in}, and their data and "
                        "models are found from there; continue it from that folder: "
                        f"{continue_command(meta['sweep_id'], store.folder.parent, ran_in)}")


def _check_program_found(meta: dict, opts: Options) -> None:
    """A sweep resumed from another folder than its program's: refused before any run, which
    would fail to start and count against the run cap."""
    missing = sweep_config.program_not_found(meta["config"], opts.cwd, opts.program)
    if missing:
        raise UserError(f"sweep {meta['sweep_id']}: {missing}")


def _ended_by_control(store: Store, console: Console) -> bool:
    """Whether the sweep was stopped or cancelled and no run of it is left running, so that
    a runner has nothing to do (one with runs left running by a dead runner still records
    their end); says so."""
    with sqlite_errors(store.path):
        control = controls.current(store)
        if control is None or control.state not in controls.ENDING or store.runs(RUNNING):
            return False
        sid = store.get("sweep_id")
    console.print(f"sweep {sid} was {control.says()}: it starts no run again, as on W&B (`resume` "
                  f"un-pauses a paused sweep only); to build on its runs, start a new sweep with "
                  f"--prior-runs {sid}", markup=False, soft_wrap=True)
    return True


def _create(store_root: str, yaml_path: str | None, sweep_id: str | None, opts: Options,
            console: Console, prior_runs: list[str] | None = None) -> tuple[Store, bool]:
    if not yaml_path:
        raise UserError(f"give a sweep YAML ({sweep_command()} sweep_conf/cnn_bayes.yaml) "
                        "or --resume SWEEP_ID")
    require_folder(store_root, "--store")
    text = sweep_config.read_text(yaml_path)
    cfg = sweep_config.loads(text, source=yaml_path)
    problems = sweep_config.check(cfg, program=opts.program, cwd=opts.cwd)
    if sweep_config.errors(problems):
        raise sweep_config.SweepConfigError(yaml_path, problems)
    # warnings do not stop the sweep: it runs as written, as W&B runs it
    hint = fix_hint(yaml_path, problems)
    for line in [f"{yaml_path}: {p}" for p in problems] + ([hint] if hint else []):
        console.print(line, markup=False, soft_wrap=True)
    prior_rows = None
    if prior_runs:  # read and checked before anything is made
        engine_cfg = sweep_config.engine_config(cfg)
        prior_rows = prior.read(store_root, prior.parse_refs(prior_runs), engine_cfg)
        prior.refuse_outside(engine_cfg, prior_rows)
    return create_or_join(store_root, cfg, text, str(yaml_path),
                          sweep_id=sweep_id, count=opts.count, project=opts.project,
                          online=opts.online, syncable=opts.syncable, prior=prior_rows)


def _use_ray(opts: Options, ray: RayRequest, store: Store, console: Console) -> None:
    """Run this sweep's runs on the Ray cluster: Ray hands out the GPUs, not the runner."""
    from .ray_executor import RayExecutor

    executor = RayExecutor(ray.address, ray.cpus_per_run, ray.gpus_per_run,
                           wandb_dir=str(store.folder.resolve()), program=opts.program)
    opts.executor, opts.gpus = executor, []
    opts.workers = ray.workers or executor.slots()
    console.print(f"runs on the Ray cluster at {ray.address}: {ray.cpus_per_run:g} CPU and "
                  f"{ray.gpus_per_run:g} GPU per run", markup=False, soft_wrap=True)


def draw_report(store: Store, out_dir: str | Path | None = None) -> Path:
    """Draw the sweep's report (HTML + PNGs) into ``out_dir`` or <sweep folder>/report."""
    from . import report, report_data

    if out_dir and Path(out_dir).suffix.lower() in (".html", ".htm") \
            and not Path(out_dir).is_dir():
        raise UserError(f"--out {out_dir}: give a folder; the report writes "
                        f"{report.HTML_NAME} and its PNGs into it")
    out = (writable_folder(out_dir, "--out") if out_dir
           else writable_folder(report.default_dir(store.folder), "report folder (see --out)"))
    with sqlite_errors(store.path):
        sweep = report_data.read_sweep(store)
    try:
        with Progress("report", report.STEPS) as progress:
            return report.write_sweep_report(sweep, out, progress.step)
    except OSError as e:  # e.g. the disk filled up while drawing
        raise UserError(f"could not write the report to {out} ({e.strerror or e}): free space "
                        "there, or give --out another folder") from e


def report(sweep_id: str, *, store_root: str = DEFAULT_STORE, out_dir: str | None = None,
           console: Console | None = None) -> int:
    console = console or default_console()
    page = draw_report(open_store(store_root, sweep_id, read_only=True), out_dir)
    console.print(f"report: {page} (PNGs beside it)", markup=False, soft_wrap=True)
    return 0


def final_report(store: Store, console: Console, *, cwd: str | None = None,
                 show_table: bool = True, runner: Runner | None = None,
                 program: ProgramHooks = ANY_PROGRAM) -> None:
    meta = store.meta()
    cfg = meta["config"]
    rows = with_progress(store.runs(), program)
    searched = sweep_config.searched_params(cfg)
    metric, goal = metric_and_goal(sweep_config.engine_config(cfg))
    sid = meta["sweep_id"]
    console.print()
    if show_table and rows:
        console.print(table.runs_table(rows, metric=metric, searched=searched,
                                       title=f"sweep {sid}", width=console.width))
    state = controls.shown_state(meta, rows) if runner else state_now(meta, rows, store.runners())
    why = meta.get("failure") if state == "failed" else meta.get("finished_because")
    control = controls.of_meta(meta)
    if control is not None:
        why = control.says() + (f"; let it start runs again with: "
                                f"{controls.resume_command(sid, str(store.folder.parent))}"
                                if control.state == controls.PAUSED else "")
    ran_in = meta.get(RUNS_FOLDER_KEY)
    if state == IDLE:
        why = ("no runner is working on it; continue with: "
               f"{continue_command(sid, store.folder.parent, ran_in)}")
    if runner is not None and runner.signals.count:
        state, why = "interrupted", ("continue with: "
                                     f"{continue_command(sid, store.folder.parent, ran_in)}")
    console.print(f"sweep {sid} {state}: {table.counts_line(rows)}" + (f" — {why}" if why else ""),
                  markup=False, soft_wrap=True)
    prior_rows = store.prior_runs()
    if prior_rows:
        console.print(prior.what_the_search_does(cfg.get("method"), prior_rows, name_runs=True),
                      markup=False, soft_wrap=True)
    if metric:
        lb = table.leaderboard(rows, metric=metric, goal=goal, searched=searched,
                               width=console.width)
        if lb is not None:
            console.print(lb)
    for line in program.closing_lines(rows, cwd):
        console.print(line, markup=False, soft_wrap=True)
    console.print(f"upload later: {sync_command(store)}", markup=False, soft_wrap=True)
    note = sync_note(store)
    if note:
        console.print(note, markup=False, soft_wrap=True)


# ----------------------------------------------------------------------------- status

# A sweep that is running by its record while no live runner works on it (its runner was
# killed, or its machine went down): it goes on only when one continues it.
IDLE = "idle"


def state_now(meta: dict, rows: list[dict], runners: dict[str, dict]) -> str:
    """The sweep's state as every status view shows it: ``controls.shown_state``, except
    ``idle`` for a running sweep with no live runner."""
    state = controls.shown_state(meta, rows)
    if state == RUNNING and not any(runner_alive(r, time.time()) for r in runners.values()):
        return IDLE
    return state


def status_document(meta: dict, rows: list[dict], runners: dict[str, dict],
                    steps: dict[str, int], prior_rows: list[dict] | None = None) -> dict:
    """The sweep and its runs as plain data for ``status --json``; ``metric`` is what ranks a
    run; ``state`` is a control's (paused, stopping, stopped, cancelled) or the runners'."""
    metric, goal = metric_and_goal(sweep_config.engine_config(meta["config"]))
    control = controls.of_meta(meta)
    sweep = {"id": meta["sweep_id"], "state": state_now(meta, rows, runners),
             "control": control.as_dict() if control else None,
             "prior_runs": [{"id": r["run_id"], "metric": r.get("metric_best")}
                            for r in prior_rows or []],
             "method": meta["config"].get("method"), "metric": metric,
             "goal": goal if metric else None,
             "run_cap": meta.get("run_cap"), "source": meta.get("source"),
             "created_at": meta.get("created_at"),
             "finished_because": meta.get("finished_because"), "failure": meta.get("failure")}
    runs = [{"id": r["run_id"], "state": r["state"],
             "params": {k: (v.get("value") if isinstance(v, dict) else v)
                        for k, v in r["params"].items()},
             "metric": r.get("metric_best"), "steps": steps.get(r["run_id"], 0),
             "exit_code": r.get("exit_code"), "stop_reason": r.get("stop_reason"),
             "host": r.get("host") or (runners.get(r.get("owner") or "") or {}).get("host"),
             "node_id": r.get("node_id"), "gpu": r.get("gpu")}
            for r in rows]
    return {"sweep": sweep, "runs": runs}


def status(sweep_id: str | None, *, store_root: str = DEFAULT_STORE,
           console: Console | None = None, as_json: bool = False,
           program: ProgramHooks = ANY_PROGRAM) -> int:
    console = console or default_console()
    if not sweep_id:
        require_folder(store_root, "--store")
        ids = list_sweeps(store_root)
        if not ids:
            console.print(f"no sweeps in {store_root}", markup=False, soft_wrap=True)
        for sid in ids:
            console.print(_listing_line(store_root, sid), markup=False, soft_wrap=True)
        return 0
    store = open_store(store_root, sweep_id, "status", read_only=True)
    with sqlite_errors(store.path):
        _status_of(store, sweep_id, console, as_json, program)
    return 0


def _listing_line(store_root: str, sweep_id: str) -> str:
    """The sweep's line in the store's list; one whose store cannot be read says why, so
    that it does not hide the others."""
    try:
        meta, rows, runners = _read_summary(store_root, sweep_id)
    except (StoreError, sweep_config.ConfigError, FileNotFoundError) as e:
        return f"{sweep_id}  {'damaged' if isinstance(e, DamagedStore) else 'unreadable':<11} {e}"
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(meta.get("created_at", 0)))
    state = state_now(meta, rows, runners)
    return (f"{sweep_id}  {state:<11} {created}  {meta.get('source', '')}  "
            f"{table.counts_line(rows)}")


def _read_summary(store_root: str, sweep_id: str) -> tuple[dict, list[dict], dict[str, dict]]:
    """The sweep's meta, runs and runners, read without writing; StoreError when they
    cannot be."""
    store = open_store(store_root, sweep_id, read_only=True)
    try:
        with sqlite_errors(store.path):
            return store.meta(), store.runs(), store.runners()
    finally:
        store.close()


def _status_of(store: Store, sweep_id: str, console: Console, as_json: bool,
               program: ProgramHooks) -> None:
    """Print one sweep's status: as JSON, or its runners, runs table and summary."""
    if as_json:
        steps = {k: len(v) for k, v in store.histories().items()}
        doc = status_document(store.meta(), store.runs(), store.runners(), steps,
                              store.prior_runs())
        print(json.dumps(doc, indent=2, default=str))
        return
    meta = store.meta()
    runners = store.runners()
    now = time.time()
    alive = [r for r in runners.values() if runner_alive(r, now)]
    console.print(f"sweep {sweep_id}: {meta.get('source')} · {meta['config'].get('method')} · "
                  f"store {store.path}", markup=False, soft_wrap=True)
    if alive:
        console.print("runners: " + ", ".join(
            f"{r['runner_id']} (heartbeat {now - r['heartbeat_at']:.0f}s ago)" for r in alive),
            markup=False, soft_wrap=True)
    final_report(store, console, cwd=meta.get(RUNS_FOLDER_KEY), show_table=True, program=program)


# ----------------------------------------------------------------------------- controls


def control(action: str, sweep_id: str, *, store_root: str = DEFAULT_STORE,
            console: Console | None = None) -> int:
    """Record ``stop``, ``cancel``, ``pause`` or ``resume`` on a sweep; its runners act on it
    at their next turn. Needs write access to the store."""
    console = console or default_console()
    store = open_store(store_root, sweep_id, action)
    with sqlite_errors(store.path):
        now = time.time()
        recorded, changed = controls.apply(store, action, controls.who(), now)
        running = len(store.runs(RUNNING))
        alive = any(runner_alive(r, now) for r in store.runners().values())
    console.print(controls.confirmation(sweep_id, action, recorded, changed, running, alive,
                                          store_root),
                  markup=False, soft_wrap=True)
    return EXIT_OK
