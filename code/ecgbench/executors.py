"""Executors: sweep throughput (runs per minute) of the Ray executor against the local one,
on this machine, over the same grid, with the same stand-in program and the same number of
runs in flight. The program (tests/fake_programs/curve.py: no training, it writes W&B's run
record and exits) keeps the runs short, so the figure is the executors' own overhead:
process launch, metrics reading, and for Ray the actor start and the run folder shipped back.
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


def _grid_yaml(points: int) -> str:
    rates = ", ".join(f"{0.1 + 0.8 * i / max(1, points - 1):.3f}" for i in range(points))
    return (f"program: {PROGRAM}\nmethod: grid\nmetric: {{name: val_macro_f1, goal: maximize}}\n"
            f"parameters:\n  learning_rate: {{values: [{rates}]}}\n  epochs: {{value: 3}}\n")


def _timed_sweep(folder: Path, points: int, workers: int, executor_for=None) -> float:
    """Seconds for one sweep of ``points`` runs, ``workers`` at a time."""
    from ecgsweep.sweep import config as sc
    from ecgsweep.sweep.bookkeeping import create_or_join
    from ecgsweep.sweep.runner import Options, Runner

    text = _grid_yaml(points)
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
    """A one-node Ray cluster on this machine, in a short temp folder of its own."""
    from ray.cluster_utils import Cluster

    ray_tmp = tempfile.mkdtemp(prefix="rb", dir="/tmp")
    os.environ.update(RAY_TMPDIR=ray_tmp)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": cpus})
    return cluster, ray_tmp


def bench_executors(results: Results, sizes: Sizes, work: Path) -> None:
    points, workers = sizes.executor_runs, 2
    os.environ.setdefault("FAKE_EPOCH_S", "0.1")
    local_s = _timed_sweep(work / "executors-local", points, workers)
    results.add(SECTION, "local executor", points / local_s * 60, "runs/min",
                f"{points} runs of the stand-in program, {workers} at a time")
    try:
        import ray
    except ImportError:
        results.not_measured(SECTION, "Ray executor", "runs/min",
                             "ray is not installed (pip install -r requirements-ray.txt)")
        return
    from ecgsweep.sweep.ray_executor import RayExecutor

    cluster, ray_tmp = _ray_cluster(workers)
    try:
        ray_s = _timed_sweep(work / "executors-ray", points, workers,
                             lambda wandb_dir: RayExecutor(cluster.address, 1.0, 0.0, wandb_dir))
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    results.add(SECTION, "Ray executor (one local node)", points / ray_s * 60, "runs/min",
                "same runs; actor start and run folder shipped back included")
    results.add(SECTION, "Ray / local throughput", local_s / ray_s, "x",
                "below 1: the Ray executor's overhead per run on one machine")
