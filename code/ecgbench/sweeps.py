"""Sweeps: the inter-patient sweep users run, with and without fold-aware early stopping.

Real records: DS1 (``../shared/data/mitdb-ds1``) converted with ``code/data.py wfdb --split
inter`` into the bench's work folder. Every run is a record-grouped k-fold run in the
protocol of ``sweep_conf/inter_patient_cv_bayes.yaml`` (its fixed keys, metric and
``early_terminate``), made small: a few folds and epochs, ``max_train_beats`` training beats.
The same configurations run as a grid, in an order each seed shuffles, once without early
termination and once with the YAML's hyperband acting on each fold's row; every sweep runs
to its end. Two figures per arm: the wall time of the whole sweep (what a user waits for
the sweep's answer) and the time until a run that finished all its folds reaches the best
configuration's objective (within ``sweep_tolerance``); and the best objective each arm
reached, which early stopping must not lower.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import stopping
from .report import Results
from .sizes import REPO_ROOT, Sizes, program_env, run_data_command

SECTION = "sweep"
DS1_SOURCE = REPO_ROOT.parent / "shared" / "data" / "mitdb-ds1"
PROTOCOL_YAML = REPO_ROOT / "sweep_conf" / "inter_patient_cv_bayes.yaml"
PROTOCOL_KEYS = ("dataset", "classes", "val_split", "split_seed", "keep_epoch", "objective")
ARMS = ("none", "folds")  # without early termination; hyperband on each fold's row
ARM_NAMES = {"none": "no early stopping", "folds": "fold-aware early stopping"}


def protocol() -> dict[str, Any]:
    """The inter-patient sweep's metric, early termination and fixed protocol keys, from
    its YAML (one definition)."""
    import yaml

    cfg = yaml.safe_load(PROTOCOL_YAML.read_text())
    fixed = {k: v["value"] for k, v in cfg["parameters"].items()
             if k in PROTOCOL_KEYS and isinstance(v, dict) and "value" in v}
    return {"metric": cfg["metric"], "early_terminate": cfg["early_terminate"], "fixed": fixed}


def sweep_yaml(sizes: Sizes, data_dir: Path, models_dir: Path, seed: int,
               early_stop: bool) -> str:
    """The grid of ``sizes.sweep_space`` in the order ``seed`` shuffles, in the
    inter-patient protocol; with the protocol's hyperband when ``early_stop``."""
    import yaml

    rules = protocol()
    rng = np.random.default_rng(seed)
    params: dict[str, Any] = {k: {"value": v} for k, v in rules["fixed"].items()}
    params.update({"data_dir": {"value": str(data_dir)},
                   "models_dir": {"value": str(models_dir)}})
    params.update({k: {"value": v} for k, v in sizes.sweep_fixed.items()})
    params.update({k: {"values": [v[i] for i in rng.permutation(len(v))]}
                   for k, v in sizes.sweep_space.items()})
    cfg: dict[str, Any] = {"program": "code/train.py", "method": "grid",
                           "metric": rules["metric"],
                           "command": ["${env}", "${interpreter}", "${program}", "${args}"],
                           "parameters": params}
    if early_stop:
        cfg["early_terminate"] = rules["early_terminate"]
    return yaml.safe_dump(cfg, sort_keys=False)


@dataclass
class SweepTrace:
    """One sweep as its store saw it: when each run that trained all its folds ended, with
    its objective (the mean over its folds), and how the others ended."""
    arm: str
    seed: int
    started: float
    finished: list[tuple[float, str, float]] = field(default_factory=list)  # (s, run, value)
    stopped_at_fold: list[int] = field(default_factory=list)  # per run hyperband stopped
    runs: int = 0
    duration: float | None = None  # wall time of the whole sweep, once it ended by itself
    exit_code: int | None = None
    output_tail: str = ""

    def first_at(self, target: float) -> tuple[float, str] | None:
        hits = [(t, run) for t, run, v in self.finished if v >= target]
        return min(hits) if hits else None

    def best(self) -> float | None:
        return max((v for _, _, v in self.finished), default=None)


def read_trace(trace: SweepTrace, store: Any, metric: str) -> None:
    """Fill ``trace`` from the sweep's store (``ecgsweep.sweep.store.Store``)."""
    trace.finished, trace.stopped_at_fold = [], []
    rows = store.runs()
    trace.runs = sum(1 for r in rows if r.get("started_at") is not None)
    histories = store.histories()
    for r in rows:
        summary = r.get("summary") or {}
        if r["state"] == "finished" and summary.get("folds_completed") == summary.get("folds") \
                and isinstance(summary.get(metric), (int, float)) and r.get("ended_at"):
            trace.finished.append((r["ended_at"] - trace.started, r["run_id"],
                                   float(summary[metric])))
        elif r["state"] == "stopped" and "hyperband" in str(r.get("stop_reason") or ""):
            done = [h.get("folds_completed", 0) for h in histories.get(r["run_id"], [])]
            trace.stopped_at_fold.append(int(max(done, default=0)))
    trace.finished.sort()


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


def _open_store(db: Path) -> Any:
    from ecgsweep.sweep.store import Store, StoreError

    try:
        return Store(db, timeout_s=5) if db.is_file() else None
    except (sqlite3.Error, StoreError):
        return None  # being created; next poll


def run_sweep(trace: SweepTrace, yaml_text: str, work: Path, target: float | None,
              metric: str, poll_s: float = 0.5, timeout_s: float = 1800,
              extra_args: tuple[str, ...] = (), extra_env: dict[str, str] | None = None
              ) -> SweepTrace:
    """Run ``code/sweep.py`` on a YAML (with ``extra_args``, in ``extra_env``) and follow
    its store; stop it once a finished run reaches ``target`` (None: let it finish)."""
    folder = work / f"sweep-{trace.arm}-{trace.seed}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.yaml").write_text(yaml_text)
    sweep_id = f"bench-{trace.arm}-{trace.seed}-{os.getpid()}"
    store_root = folder / "store"
    cmd = [sys.executable, "code/sweep.py", str(folder / "sweep.yaml"), "--store",
           str(store_root), "--sweep-id", sweep_id, "--plain", "--poll", "0.25", *extra_args]
    store = None
    with open(folder / "runner.log", "w") as log:
        trace.started = time.time()
        env = program_env(folder / "wandb", **(extra_env or {}))
        with stopping.launched(cmd, stop=_stop, cwd=REPO_ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True) as proc:
            while True:
                stopping.check()
                done = proc.poll() is not None
                store = store or _open_store(store_root / sweep_id / "sweep.db")
                if store is not None:
                    read_trace(trace, store, metric)
                if done or (target is not None and trace.first_at(target)) \
                        or time.time() - trace.started > timeout_s:
                    break
                time.sleep(poll_s)
    trace.exit_code = proc.returncode
    if done:
        trace.duration = time.time() - trace.started
    if store is not None:
        read_trace(trace, store, metric)
        store.close()
    trace.output_tail = "\n".join((folder / "runner.log").read_text().splitlines()[-20:])
    return trace


def convert_ds1(work: Path, records: str | None) -> Path:
    """DS1 converted by the project's own converter into ``work``; returns its folder.
    Parsed once here, so no timed run pays for the parse cache."""
    from ecgsweep.data.classes import MITBIH_FILES
    from ecgsweep.data.kaggle_csv import load_csv

    out = work / "ds1"
    run_data_command(["wfdb", "--src", str(DS1_SOURCE), "--out", str(out), "--split", "inter",
                      *(["--records", records] if records else [])], work)
    load_csv(out / MITBIH_FILES["train"])
    return out


def sweep_problem() -> str | None:
    """Why the sweep section cannot run here, or None."""
    if not DS1_SOURCE.is_dir():
        return f"no DS1 records in {DS1_SOURCE} (the MIT-BIH DS1 .hea/.dat/.atr files)"
    if not (REPO_ROOT / "code" / "sweep.py").is_file():
        return "code/sweep.py does not exist"
    return None


FIGURES = {"whole-none": "no early stopping: time of the whole sweep",
           "whole-folds": "fold-aware early stopping: time of the whole sweep",
           "whole-ratio": "ratio of the whole sweep's time, without / with",
           "none": "no early stopping: time to the best objective",
           "folds": "fold-aware early stopping: time to the best objective",
           "ratio": "ratio of time to the best objective, without / with",
           "best-none": "best objective, no early stopping",
           "best-folds": "best objective, fold-aware early stopping"}


def bench_sweep(results: Results, sizes: Sizes, work: Path, data_root: Path) -> None:
    problem = sweep_problem()
    if problem:
        for name in FIGURES.values():
            results.not_measured(SECTION, name, "x" if "ratio" in name else "", problem)
        return
    data_dir = convert_ds1(work, sizes.sweep_records)
    metric = protocol()["metric"]["name"]
    traces: dict[str, list[SweepTrace]] = {arm: [] for arm in ARMS}
    for i, seed in enumerate(sizes.sweep_seeds):
        for arm in ARMS if i % 2 == 0 else ARMS[::-1]:  # the arms alternate which goes first
            yaml_text = sweep_yaml(sizes, data_dir, work / f"models-{arm}-{seed}", seed,
                                   early_stop=arm == "folds")
            traces[arm].append(run_sweep(SweepTrace(arm, seed, 0.0), yaml_text, work, None,
                                         metric))
    best = max((t.best() for t in traces["none"] if t.best() is not None), default=None)
    if best is None:
        last = traces["none"][-1]
        why = (f"the sweeps without early stopping finished no run (exit {last.exit_code}):\n"
               f"{last.output_tail}")
        for name in FIGURES.values():
            results.not_measured(SECTION, name, "x" if "ratio" in name else "", why)
        return
    target = sizes.sweep_target
    if target is None:
        target = round(best - sizes.sweep_tolerance, 4)
    report_sweeps(results, sizes, traces, target, metric)


def _describe(trace: SweepTrace, target: float) -> str:
    hit = trace.first_at(target)
    order = [run for _, run, _ in trace.finished]
    where = (f"{hit[0]:.0f} s (finished run {order.index(hit[1]) + 1}, {trace.runs} started)"
             if hit else f"not reached in {trace.runs} runs")
    stops = ""
    if trace.arm == "folds":
        folds = ", ".join(str(f) for f in sorted(trace.stopped_at_fold)) or "-"
        stops = f", {len(trace.stopped_at_fold)} stopped by hyperband (after fold {folds})"
    return f"seed {trace.seed}: {where}{stops}"


def report_whole_sweeps(results: Results, traces: dict[str, list[SweepTrace]],
                        grid: str) -> None:
    """Each arm's median wall time of the whole sweep and their ratio."""
    medians: dict[str, float] = {}
    for arm in ARMS:
        times = [t.duration for t in traces[arm]]
        if any(t is None for t in times):
            results.not_measured(SECTION, FIGURES[f"whole-{arm}"], "s",
                                 "a sweep did not end by itself within the time limit")
            continue
        medians[arm] = statistics.median(times)
        what = (f"median of {len(times)} seeds (orders): "
                + "; ".join(f"seed {t.seed}: {t.duration:.0f} s, {t.runs} runs, "
                            f"{len(t.stopped_at_fold)} stopped by hyperband"
                            for t in traces[arm]))
        results.add(SECTION, FIGURES[f"whole-{arm}"], medians[arm], "s", what, times=times)
    if len(medians) == len(ARMS):
        results.add(SECTION, FIGURES["whole-ratio"], medians["none"] / medians["folds"], "x",
                    grid)
    else:
        results.not_measured(SECTION, FIGURES["whole-ratio"], "x", "an arm did not end")


def report_sweeps(results: Results, sizes: Sizes, traces: dict[str, list[SweepTrace]],
                  target: float, metric: str) -> None:
    """The two arms' median time of the whole sweep and to ``target``, their ratios and the
    best objective each reached; a median that some sweeps missed is not measured."""
    space = ", ".join(f"{k} {v}" for k, v in sizes.sweep_space.items())
    fixed = ", ".join(f"{k}={v}" for k, v in sizes.sweep_fixed.items())
    grid = (f"grid of {space} in shuffled orders; fixed: {fixed}; DS1 records "
            f"{sizes.sweep_records or 'all 22'}; >1: early stopping is faster (goal: 2)")
    report_whole_sweeps(results, traces, grid)
    medians: dict[str, float | None] = {}
    for arm in ARMS:
        times = [(t.first_at(target) or (float("inf"),))[0] for t in traces[arm]]
        what = (f"{metric} >= {target:.4f} (the best configuration's, less "
                f"{sizes.sweep_tolerance}); median of {len(times)} seed"
                f"{'' if len(times) == 1 else 's'} (orders): "
                + "; ".join(_describe(t, target) for t in traces[arm]))
        median = statistics.median(times)
        medians[arm] = median if np.isfinite(median) else None
        if medians[arm] is None:
            results.not_measured(SECTION, FIGURES[arm], "s", f"target not reached: {what}")
        else:
            results.add(SECTION, FIGURES[arm], median, "s", what,
                        times=times, finished=[t.finished for t in traces[arm]])
    if medians["none"] is not None and medians["folds"] is not None:
        results.add(SECTION, FIGURES["ratio"], medians["none"] / medians["folds"], "x", grid)
    else:
        results.not_measured(SECTION, FIGURES["ratio"], "x", "an arm did not reach the target")
    for arm in ARMS:
        best = max((t.best() for t in traces[arm] if t.best() is not None), default=None)
        name = FIGURES[f"best-{arm}"]
        if best is None:
            results.not_measured(SECTION, name, "", "no run finished all its folds")
        else:
            results.add(SECTION, name, best, metric.removeprefix("kept_"),
                        "the highest mean over the folds of any run that trained them all")
