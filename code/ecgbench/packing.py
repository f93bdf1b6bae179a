"""Runs packed per GPU: the sweep throughput of ``code/sweep.py --runs-per-gpu K`` against
one run per GPU, on the same grid of real training runs (``code/train.py``, synthetic beats),
only when a backend sees a GPU.

Both sweeps run on the first GPU alone (``CUDA_VISIBLE_DEVICES``), so the figure is what
packing gives per GPU; each is timed from the runner's start to its end, process start-up
and W&B's offline run records included, as a user waits for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .report import Results
from .sizes import Sizes, run_data_command
from .sweeps import SweepTrace, run_sweep

SECTION = "packing"
# The backend that trains, the first of these that sees a GPU: PyTorch first, as it holds a
# run to its share of the GPU's memory and compiles nothing at start, so the figure is
# packing's gain rather than each run's compile time.
BACKEND_ORDER = ("torch", "jax", "tensorflow")


def packed_sweep_yaml(runs: int, data_dir: Path, models_dir: Path, backend: str,
                      fixed: dict[str, Any]) -> str:
    """A grid of ``runs`` CNN runs on ``backend`` that differ in learning rate only."""
    import yaml

    from ecgsweep.contract import OBJECTIVE_METRICS

    rates = [float(f"{10 ** (-4 + 2 * i / max(1, runs - 1)):.3g}") for i in range(runs)]
    params: dict[str, Any] = {k: {"value": v} for k, v in {
        "model": "cnn", "backend": backend, "data_dir": str(data_dir),
        "models_dir": str(models_dir), **fixed}.items()}
    params["learning_rate"] = {"values": rates}
    cfg = {"program": "code/train.py", "method": "grid",
           "metric": {"name": OBJECTIVE_METRICS["macro_f1"], "goal": "maximize"},
           "command": ["${env}", "${interpreter}", "${program}", "${args}"],
           "parameters": params}
    return yaml.safe_dump(cfg, sort_keys=False)


def write_synthetic_data(work: Path, beats: int) -> Path:
    """Kaggle-format CSVs of ``beats`` synthetic training beats, by the project's own command."""
    out = work / "packing-data"
    run_data_command(["synth", "--out", str(out), "--train", str(beats), "--test", "1000",
                      "--ptb", "200"], work)
    return out


def _timed(work: Path, yaml_text: str, runs_per_gpu: int, gpu: str, metric: str,
           runs: int) -> SweepTrace:
    trace = run_sweep(SweepTrace(f"packed{runs_per_gpu}", 0, 0.0), yaml_text, work, None,
                      metric, extra_args=("--runs-per-gpu", str(runs_per_gpu)),
                      extra_env={"CUDA_VISIBLE_DEVICES": gpu})
    if trace.duration is None or len(trace.finished) != runs:
        raise RuntimeError(f"--runs-per-gpu {runs_per_gpu}: {len(trace.finished)}/{runs} runs "
                           f"finished (exit {trace.exit_code}):\n{trace.output_tail}")
    return trace


def bench_packing(results: Results, sizes: Sizes, work: Path,
                  gpus: dict[str, tuple[str, ...]]) -> None:
    """``gpus``: the GPU names each installed backend sees. The first of ``BACKEND_ORDER``
    that sees one trains; the grid runs once with one run per GPU and once with
    ``sizes.packed_runs_per_gpu``."""
    from ecgsweep.contract import OBJECTIVE_METRICS

    k, runs = sizes.packed_runs_per_gpu, sizes.packed_sweep_runs
    names = ("one run per GPU", f"--runs-per-gpu {k}", f"--runs-per-gpu {k} / one run per GPU")
    with_gpu = [(name, gpus[name]) for name in BACKEND_ORDER if gpus.get(name)]
    if not with_gpu:
        seen_by = ", ".join(gpus) or "no backend"
        for name in names:
            results.not_measured(SECTION, f"sweep throughput, {name}",
                                 "x" if "/" in name else "runs/min",
                                 f"no GPU visible to {seen_by}")
        return
    backend, (gpu_name, *_) = with_gpu[0]
    data_dir = write_synthetic_data(work, sizes.gpu_beats)
    metric = OBJECTIVE_METRICS["macro_f1"]
    fixed = {"epochs": sizes.gpu_epochs, "seed": 42}
    what = (f"{runs} runs of code/train.py (CNN, {backend}, {sizes.gpu_beats} synthetic beats, "
            f"{sizes.gpu_epochs} epochs) on {gpu_name}; wall time of the whole sweep")
    per_min = {}
    for per_gpu in (1, k):
        yaml_text = packed_sweep_yaml(runs, data_dir, work / f"packing-models-{per_gpu}",
                                      backend, fixed)
        trace = _timed(work, yaml_text, per_gpu, "0", metric, runs)
        per_min[per_gpu] = runs / trace.duration * 60
        results.add(SECTION, f"sweep throughput, {names[0 if per_gpu == 1 else 1]}",
                    per_min[per_gpu], "runs/min", what, seconds=trace.duration)
    results.add(SECTION, f"sweep throughput, {names[2]}", per_min[k] / per_min[1], "x",
                ">1: packing runs on one GPU finishes the sweep sooner")
