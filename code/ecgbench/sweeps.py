"""Sweeps: wall time of ``code/sweep.py`` to a target val_macro_f1, bayes + hyperband
against grid search over the same discrete space, followed through the sweep's store."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .report import Results
from .sizes import REPO_ROOT, Sizes, program_env
from .startup import bench_csv, has_parse_cache


def sweep_yaml(method: str, sizes: Sizes, data_dir: Path, models_dir: Path) -> str:
    import yaml

    params: dict[str, Any] = {"model": {"value": "cnn"}, "dataset": {"value": "mitbih"},
                              "data_dir": {"value": str(data_dir)},
                              "models_dir": {"value": str(models_dir)}}
    params.update({k: {"value": v} for k, v in sizes.sweep_fixed.items()})
    params.update({k: {"values": list(v)} for k, v in sizes.sweep_space.items()})
    cfg: dict[str, Any] = {
        "program": "code/train.py", "method": method,
        "metric": {"name": "val_macro_f1", "goal": "maximize"},
        "command": ["${env}", "${interpreter}", "${program}", "${args}"],
        "parameters": params,
    }
    if method != "grid":
        epochs = int(sizes.sweep_fixed.get("epochs", 1))
        cfg["early_terminate"] = {"type": "hyperband", "min_iter": 1 if epochs < 4 else 2, "eta": 2}
    return yaml.safe_dump(cfg, sort_keys=False)


@dataclass
class SweepTrace:
    method: str
    started: float
    arrivals: list[tuple[float, str, float]] = field(default_factory=list)  # (s, run, value)
    runs: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    output_tail: str = ""
    stopped_at_target: bool = False

    def first_at(self, target: float) -> tuple[float, str] | None:
        hits = [(t, run) for t, run, v in self.arrivals if v >= target]
        return min(hits) if hits else None

    def best(self) -> float | None:
        values = [v for _, _, v in self.arrivals]
        return max(values) if values else None


class StoreReader:
    """Follows a sweep's store through its public reader (``ecgsweep.sweep.store.Store``)
    while the runner writes it; opened once the runner has created it."""

    def __init__(self, db: Path):
        self.db = db
        self.store: Any = None
        self.seen: set[tuple[str, int]] = set()

    def _open(self) -> bool:
        from ecgsweep.sweep.store import Store, StoreError

        if self.store is None and self.db.is_file():
            try:
                self.store = Store(self.db, timeout_s=5)
            except (sqlite3.Error, StoreError):
                return False  # being created; next poll
        return self.store is not None

    def new_rows(self) -> list[tuple[str, dict]]:
        """(run id, metrics row) for every history row not returned before."""
        if not self._open():
            return []
        try:
            histories = self.store.histories()
        except sqlite3.Error:
            return []
        fresh = []
        for run_id, rows in histories.items():
            for step, row in enumerate(rows):
                if (run_id, step) not in self.seen:
                    self.seen.add((run_id, step))
                    fresh.append((run_id, row))
        return fresh

    def runs(self) -> list[dict[str, Any]]:
        keep = ("run_id", "seq", "params", "state", "stop_reason", "exit_code", "epochs",
                "metric_best", "started_at", "ended_at")
        if not self._open():
            return []
        return [{k: r.get(k) for k in keep} for r in self.store.runs()]

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _stop(proc: subprocess.Popen, grace_s: float = 3.0) -> None:
    """Stop a sweep runner the way a user does: Ctrl-C, then Ctrl-C again to kill its runs."""
    for _ in range(2):
        if proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_sweep(method: str, yaml_text: str, work: Path, target: float | None,
              max_runs: int | None, poll_s: float = 0.25, timeout_s: float = 900,
              label: str | None = None) -> SweepTrace:
    """Run ``code/sweep.py`` on a YAML; note when each epoch's val_macro_f1 arrives in its
    store; stop it once ``target`` is reached (None: let it finish)."""
    label = label or method
    folder = work / f"sweep-{label}"
    folder.mkdir(parents=True, exist_ok=True)
    yaml_path = folder / "sweep.yaml"
    yaml_path.write_text(yaml_text)
    sweep_id = f"bench-{label}-{os.getpid()}"
    store = folder / "store"
    cmd = [sys.executable, "code/sweep.py", str(yaml_path), "--store", str(store), "--sweep-id",
           sweep_id, "--plain", "--poll", str(poll_s)]
    if max_runs:
        cmd += ["--count", str(max_runs)]
    db = store / sweep_id / "sweep.db"
    log = open(folder / "runner.log", "w")
    trace = SweepTrace(method, time.time())
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=program_env(folder / "wandb"), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    reader = StoreReader(db)
    try:
        while True:
            done = proc.poll() is not None
            for run_id, row in reader.new_rows():
                value = row.get("val_macro_f1")
                if isinstance(value, (int, float)):
                    trace.arrivals.append((time.time() - trace.started, run_id, float(value)))
            if target is not None and trace.first_at(target):
                trace.stopped_at_target = True
                break
            if done:
                break
            if time.time() - trace.started > timeout_s:
                break
            time.sleep(poll_s)
    finally:
        _stop(proc)
        log.close()
    trace.exit_code = proc.returncode
    trace.runs = reader.runs()
    reader.close()
    trace.output_tail = "\n".join((folder / "runner.log").read_text().splitlines()[-20:])
    return trace


def sweep_runner_problem() -> str | None:
    """Why code/sweep.py cannot be used now, or None."""
    if not (REPO_ROOT / "code" / "sweep.py").is_file():
        return "code/sweep.py does not exist"
    try:
        proc = subprocess.run([sys.executable, "code/sweep.py", "--help"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "code/sweep.py --help did not answer within 120 s"
    if proc.returncode != 0:
        return f"code/sweep.py --help exited {proc.returncode}: {proc.stderr.strip()[-200:]}"
    if "--store" not in proc.stdout or "--count" not in proc.stdout:
        return "code/sweep.py has no --store/--count options"
    return None


def bench_sweep(results: Results, sizes: Sizes, work: Path, data_root: Path) -> None:
    names = {"grid": "grid search: time to target", "bayes": "bayes + hyperband: time to target"}
    problem = sweep_runner_problem()
    if problem:
        for method in ("grid", "bayes"):
            results.not_measured("sweep", names[method], "s", problem)
        results.not_measured("sweep", "ratio grid / bayes+hyperband", "x", problem)
        return
    csv_path = bench_csv(data_root / "sweep", sizes.sweep_csv_rows)
    if not has_parse_cache(csv_path):
        from ecgsweep.data.kaggle_csv import load_csv

        load_csv(csv_path)  # every run would otherwise parse it once
    grid_size = int(np.prod([len(v) for v in sizes.sweep_space.values()]))
    yamls = {m: sweep_yaml(m, sizes, csv_path.parent, work / f"sweep-{m}" / "models")
             for m in ("grid", "bayes")}
    target = sizes.sweep_target
    if sizes.sweep_concurrent:  # smoke: both at once, fixed target
        out: dict[str, SweepTrace] = {}
        threads = [threading.Thread(target=lambda m=m: out.__setitem__(
            m, run_sweep(m, yamls[m], work, target, grid_size if m == "grid" else sizes.sweep_max_runs)))
            for m in ("grid", "bayes")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        grid, bayes_traces = out["grid"], [out["bayes"]]
        how = f"fixed target {target} (smoke: both sweeps at once)"
    else:
        # The full grid first: it fixes the target as a share of the best value it finds.
        grid = run_sweep("grid", yamls["grid"], work, target, grid_size)
        if target is None:
            best = grid.best()
            if best is None:
                why = f"the grid sweep logged no val_macro_f1 (exit {grid.exit_code}):\n{grid.output_tail}"
                for method in ("grid", "bayes"):
                    results.not_measured("sweep", names[method], "s", why)
                results.not_measured("sweep", "ratio grid / bayes+hyperband", "x", why)
                return
            target = round(sizes.sweep_target_share * best, 4)
            how = (f"target {sizes.sweep_target_share:.0%} of the best val_macro_f1 of the full "
                   f"grid ({best:.4f})")
        else:
            how = f"fixed target {target}"
        bayes_traces = [run_sweep("bayes", yamls["bayes"], work, target, sizes.sweep_max_runs,
                                  label=f"bayes{i + 1}") for i in range(sizes.sweep_bayes_repeats)]
    space = ", ".join(f"{k} {v}" for k, v in sizes.sweep_space.items())
    fixed = ", ".join(f"{k}={v}" for k, v in sizes.sweep_fixed.items())
    grid_s = _report_grid(results, names["grid"], grid, target, grid_size, sizes, how)
    bayes_s = _report_bayes(results, names["bayes"], bayes_traces, target, sizes)
    if grid_s is not None and bayes_s is not None:
        results.add("sweep", "ratio grid / bayes+hyperband", grid_s / bayes_s, "x",
                    f"space: {space} ({grid_size} points); fixed: {fixed}; >1: bayes is faster")
    else:
        missed = [m for m, v in (("grid", grid_s), ("bayes+hyperband", bayes_s)) if v is None]
        results.not_measured("sweep", "ratio grid / bayes+hyperband", "x",
                             f"{' and '.join(missed)} did not reach the target")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _started(trace: SweepTrace, space: dict[str, list[Any]]) -> tuple[list[dict], int, int]:
    """Runs that started, how many distinct points of the space they ran, how many hyperband stopped."""
    started = [r for r in trace.runs if r.get("started_at") is not None]
    points = {json.dumps({k: (json.loads(r["params"]) if isinstance(r["params"], str)
                              else r["params"]).get(k) for k in space}, sort_keys=True)
              for r in started}
    stopped = sum(1 for r in started if r.get("state") == "stopped"
                  and "hyperband" in str(r.get("stop_reason") or ""))
    return started, len(points), stopped


def _report_grid(results: Results, name: str, grid: SweepTrace, target: float, grid_size: int,
                 sizes: Sizes, how: str) -> float | None:
    started, points, _ = _started(grid, sizes.sweep_space)
    detail = dict(target=target, runs=grid.runs, arrivals=grid.arrivals, exit_code=grid.exit_code)
    hit = grid.first_at(target)
    if hit is None:
        best = grid.best()
        results.not_measured("sweep", name, "s",
                             f"target {target:.4f} not reached in {_plural(len(started), 'run')} "
                             f"(best {'-' if best is None else f'{best:.4f}'})").detail.update(detail)
        return None
    order = [r["run_id"] for r in started]
    nth = order.index(hit[1]) + 1 if hit[1] in order else "?"
    results.add("sweep", name, hit[0], "s", f"{how}; reached by grid point {nth} of {grid_size}",
                **detail)
    return hit[0]


def _report_bayes(results: Results, name: str, traces: list[SweepTrace], target: float,
                  sizes: Sizes) -> float | None:
    times: list[float] = []
    parts = []
    for trace in traces:
        started, points, stopped = _started(trace, sizes.sweep_space)
        hit = trace.first_at(target)
        times.append(hit[0] if hit else float("inf"))
        order = [r["run_id"] for r in started]
        parts.append((f"{hit[0]:.0f} s (run {order.index(hit[1]) + 1 if hit[1] in order else '?'})"
                      if hit else f"not in {_plural(len(started), 'run')}")
                     + f", {_plural(points, 'point')}, {stopped} stopped by hyperband")
    detail = dict(target=target, repeats=[dict(runs=t.runs, arrivals=t.arrivals,
                                               exit_code=t.exit_code) for t in traces])
    median = statistics.median(times)
    what = (f"median of {len(traces)} sweeps (random start): " if len(traces) > 1 else "") \
        + "; ".join(parts) + f"; cap {_plural(sizes.sweep_max_runs, 'run')} each"
    if median == float("inf"):
        results.not_measured("sweep", name, "s", f"target {target:.4f} not reached: {what}"
                             ).detail.update(detail)
        return None
    results.add("sweep", name, median, "s", what, **detail)
    return median
