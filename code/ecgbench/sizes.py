"""How big each measurement is (full and smoke), and where the bench runs its programs."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Sizes:
    """How big each measurement is. FULL takes ~20-30 minutes on 2 shared cores, about half
    of it the inter-patient sweeps; SMOKE checks that every figure can be produced, in a few
    minutes."""

    train_beats: int
    val_beats: int
    epochs: int  # per fit; the first is left out of the throughput
    rounds: int  # each variant is fitted this many times, variants alternating
    model: dict[str, Any]  # CNN hyperparameters on top of the defaults
    csv_rows: int  # rows of the synthetic mitbih_train.csv the start-up runs parse
    startup_repeats: int  # cold and warm launches each, alternating
    infer_beats: int
    infer_repeats: int
    bootstrap_beats: int
    sweep_records: str | None  # DS1 records converted for the sweep (None: all 22)
    sweep_space: dict[str, list[Any]]  # the configurations, run in an order each seed shuffles
    sweep_fixed: dict[str, Any]  # the inter-patient protocol: record-grouped folds, ...
    sweep_seeds: tuple[int, ...]  # one order of the configurations each; figures are medians
    sweep_target: float | None  # None: the best objective of any configuration, less tolerance
    sweep_tolerance: float  # a run reaches the best objective within this much
    sweep_concurrent: bool  # launching sections beside the others (smoke only: not comparable)
    backend_epochs: int = 4  # per backend, one fit of train_beats; the first epoch left out
    gpu_beats: int = 20_000  # the GPU section's training beats (GPUs need more to be busy)
    gpu_epochs: int = 3
    gpu_batches: tuple[int, ...] = (64, 256, 1024)
    gpu_max_concurrent: int = 8  # concurrent runs tried per GPU: 1, 2, 4, ... up to this
    packed_sweep_runs: int = 8  # runs of the sweep timed with and without packing per GPU
    packed_runs_per_gpu: int = 4  # --runs-per-gpu of the packed sweep
    executor_runs: int = 12  # stand-in runs per executor (local, Ray) in the executors section
    executor_long_runs: int = 2  # runs of a realistic length per executor, all at once
    executor_long_epochs: int = 6
    executor_long_epoch_s: float = 10.0  # 6 x 10 s: a minute per run


FULL = Sizes(
    train_beats=4000, val_beats=1000, epochs=3, rounds=2, model={},
    csv_rows=87_554,  # the size of the real Kaggle mitbih_train.csv
    startup_repeats=2, infer_beats=20_000, infer_repeats=5, bootstrap_beats=20_000,
    sweep_records=None,
    sweep_space={"learning_rate": [0.00001, 0.0001, 0.001, 0.003, 0.01]},
    sweep_fixed={"model": "cnn", "folds": 3, "epochs": 2, "max_train_beats": 2000,
                 "n_conv_blocks": 2, "layer_1_size": 16, "layer_2_size": 16,
                 "layer_FC_size": 32, "rr_features": True, "class_weight": "sqrt", "seed": 42},
    sweep_seeds=(1, 2, 3), sweep_target=None, sweep_tolerance=0.01, sweep_concurrent=False,
)

SMOKE = Sizes(
    train_beats=512, val_beats=128, epochs=2, rounds=1,
    model={"n_conv_blocks": 2, "layer_1_size": 8, "layer_2_size": 8, "layer_FC_size": 16},
    csv_rows=2000, startup_repeats=1, infer_beats=2000, infer_repeats=2, bootstrap_beats=20_000,
    sweep_records="101,106,108,109,112,114", sweep_space={"learning_rate": [0.00003, 0.003]},
    sweep_fixed={"model": "cnn", "folds": 2, "epochs": 1, "max_train_beats": 300,
                 "n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 8, "seed": 42},
    sweep_seeds=(1,), sweep_target=None, sweep_tolerance=0.01, sweep_concurrent=True,
    backend_epochs=2, gpu_beats=1024, gpu_epochs=2, gpu_max_concurrent=2, packed_sweep_runs=2,
    packed_runs_per_gpu=2, executor_runs=2,
    executor_long_runs=2, executor_long_epochs=2, executor_long_epoch_s=0.5,
)


# Epoch counts whose first epoch (graph building, warm-up) is left out of the figure: at
# least one more must run.
WARMED_EPOCHS = ("epochs", "backend_epochs", "gpu_epochs")


def with_overrides(sizes: Sizes, overrides: dict[str, Any]) -> Sizes:
    """``sizes`` with some fields replaced, for a machine with less time than a full run needs;
    ValueError naming an unknown field, a value of another type than the field's, a count
    below 1 or a negative or infinite number."""
    fields = asdict(sizes)
    overrides = {name: tuple(value) if isinstance(fields.get(name), tuple)
                 and isinstance(value, list) else value for name, value in overrides.items()}
    for name, value in overrides.items():
        if name not in fields:
            raise ValueError(f"unknown size {name!r}; sizes are {', '.join(fields)}")
        current = fields[name]
        fits = (isinstance(value, (int, float)) and not isinstance(value, bool)
                if isinstance(current, float) else
                type(value) is type(current) or (current is None and value is not None))
        if not fits:
            raise ValueError(f"size {name}={value!r}: expected a value like {current!r}")
        least = 2 if name in WARMED_EPOCHS else 1
        if isinstance(current, int) and not isinstance(current, bool) and value < least:
            raise ValueError(f"size {name}={value!r}: a count, at least {least}"
                             + (" (the first epoch is left out of the figure)" if least > 1 else ""))
        if isinstance(current, float) and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"size {name}={value!r}: a finite number of 0 or more")
    return Sizes(**{**fields, **overrides})


DATA_COMMAND_TIMEOUT_S = 600  # a data conversion the bench waits for, at most


def run_data_command(args: list[str], work: Path) -> None:
    """Run ``code/data.py ARGS`` to its end; RuntimeError with the tail of its output when it
    fails. A stop of the bench ends it at once (``stopping.Stopped``), as does a run past
    ``DATA_COMMAND_TIMEOUT_S``."""
    import subprocess
    import sys

    from . import stopping

    with stopping.launched([sys.executable, "code/data.py", *args], cwd=REPO_ROOT,
                           env=program_env(work / "wandb-data"), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True) as proc:
        with stopping.killed_on_stop(proc, DATA_COMMAND_TIMEOUT_S):
            stdout, stderr = proc.communicate()
    stopping.check()
    if proc.returncode != 0:
        raise RuntimeError(f"code/data.py {args[0]} exited {proc.returncode}: "
                           f"{(stderr or stdout).strip()[-300:]}")


def program_env(wandb_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a program the bench launches: offline W&B in ``wandb_dir``, quiet TF,
    no sweep variables inherited from a caller."""
    env = dict(os.environ)
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(wandb_dir),
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    for key in ("WANDB_SWEEP_ID", "WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH", "WANDB_RESUME"):
        env.pop(key, None)
    env.update(extra)
    return env
