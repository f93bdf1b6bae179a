"""Executors: sweep throughput of the Ray executor against the local one, on this machine,
over the same grid, with the same stand-in program and the same number of runs in flight.

Two lengths of run. Short runs (tests/fake_programs/curve.py, epochs of 0.1 s: no training,
it writes W&B's run record and exits) make the figure the executors' own cost per run:
process launch, metrics reading, and for Ray the actor start and the run folder shipped
back. Runs of a realistic length (a minute of epochs each) make it the overhead a user pays
on a sweep. The Ray cluster is one node on this machine that listens on loopback only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from .report import Results
from .sizes import REPO_ROOT, Sizes

SECTION = "executors"
PROGRAM = "tests/fake_programs/curve.py"
SHORT_EPOCH_S, SHORT_EPOCHS = 0.1, 3
# Ray swaps a loopback node address for the machine's outward one, and its servers then
# listen on every interface, unless this is 0 when ray is imported (as tests/conftest.py).
RAY_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _grid_yaml(points: int, epochs: int, epoch_s: float) -> str:
    """``points`` runs of the stand-in, ``epochs`` of ``epoch_s`` seconds each (a parameter,
    so it reaches a Ray node as it reaches a local run)."""
    rates = ", ".join(f"{0.1 + 0.8 * i / max(1, points - 1):.3f}" for i in range(points))
    return (f"program: {PROGRAM}\nmethod: grid\nmetric: {{name: val_macro_f1, goal: maximize}}\n"
            f"parameters:\n  learning_rate: {{values: [{rates}]}}\n"
            f"  epochs: {{value: {epochs}}}\n  epoch_s: {{value: {epoch_s}}}\n")


def _timed_sweep(folder: Path, points: int, epochs: int, epoch_s: float, workers: int,
                 executor_for=None) -> float:
    """Seconds for one sweep of ``points`` runs, ``workers`` at a time."""
    from ecgsweep.sweep import config as sc
    from ecgsweep.sweep.bookkeeping import create_or_join
    from ecgsweep.sweep.runner import Options, Runner

    text = _grid_yaml(points, epochs, epoch_s)
    store, _ = create_or_join(folder, sc.loads(text), text, "bench.yaml")
    executor = executor_for(str(store.folder.resolve())) if executor_for else None
    opts = Options(workers=workers, poll_s=0.2, cwd=str(REPO_ROOT), gpus=[], executor=executor)
    t0 = time.perf_counter()
    rc = Runner(store, opts).run()
    elapsed = time.perf_counter() - t0
    finished = [r for r in store.runs() if r["state"] == "finished"]
    if rc != 0 or len(finished) != points:
        raise RuntimeError(f"sweep ended with exit {rc} and {len(finished)}/{points} runs finished")
    return elapsed


def _ray_cluster(cpus: int):
    """A one-node Ray cluster on this machine, listening on loopback only, in a short temp
    folder of its own (``bench_executors`` has set RAY_LOOPBACK_ENV before ray's import)."""
    from ray.cluster_utils import Cluster

    ray_tmp = tempfile.mkdtemp(prefix="rb", dir="/tmp")
    os.environ.update(RAY_TMPDIR=ray_tmp)
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": cpus, "node_ip_address": "127.0.0.1", "include_dashboard": False})
    return cluster, ray_tmp


def _lengths(sizes: Sizes) -> list[tuple[str, int, int, float]]:
    """(label, runs, epochs, seconds per epoch) of each run length measured."""
    return [("short runs", sizes.executor_runs, SHORT_EPOCHS, SHORT_EPOCH_S),
            ("runs of a realistic length", sizes.executor_long_runs, sizes.executor_long_epochs,
             sizes.executor_long_epoch_s)]


def bench_executors(results: Results, sizes: Sizes, work: Path) -> None:
    workers = 2
    local_s = {}
    for label, points, epochs, epoch_s in _lengths(sizes):
        local_s[label] = _timed_sweep(work / f"executors-local-{epochs}", points, epochs,
                                      epoch_s, workers)
        results.add(SECTION, f"local executor, {label}", points / local_s[label] * 60,
                    "runs/min", f"{points} runs of the stand-in program, {epochs} epochs of "
                                f"{epoch_s:g} s, {workers} at a time")
    os.environ[RAY_LOOPBACK_ENV] = "0"  # read once, when ray is imported
    try:
        import ray
    except ImportError:
        for label, _, _, _ in _lengths(sizes):
            results.not_measured(SECTION, f"Ray executor, {label}", "runs/min",
                                 "ray is not installed (pip install -r requirements-ray.txt)")
        return
    from ecgsweep.sweep.ray_executor import RayExecutor

    cluster, ray_tmp = _ray_cluster(workers)
    ray_s = {}
    try:
        for label, points, epochs, epoch_s in _lengths(sizes):
            ray_s[label] = _timed_sweep(
                work / f"executors-ray-{epochs}", points, epochs, epoch_s, workers,
                lambda wandb_dir: RayExecutor(cluster.address, 1.0, 0.0, wandb_dir))
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    for label, points, epochs, epoch_s in _lengths(sizes):
        results.add(SECTION, f"Ray executor (one local node), {label}",
                    points / ray_s[label] * 60, "runs/min",
                    "same runs; actor start and run folder shipped back included")
    short, long = (label for label, *_ in _lengths(sizes))
    results.add(SECTION, "Ray / local throughput, short runs", local_s[short] / ray_s[short],
                "x", "below 1: the Ray executor's cost per run on one machine")
    results.add(SECTION, "Ray / local throughput, runs of a realistic length",
                local_s[long] / ray_s[long], "x",
                f"runs of {sizes.executor_long_epochs * sizes.executor_long_epoch_s:g} s: the "
                "overhead a user pays (goal: at least 0.90)")
