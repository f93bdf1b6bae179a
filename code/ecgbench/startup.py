"""Start-up: launch of ``code/train.py`` to the end of its first training epoch, with the
Kaggle-CSV parse cache deleted (cold) and present (warm).

The program runs unchanged, through its command line only: ``max_train_beats`` equal to the
batch size makes the first epoch one training step (plus the validation pass), so its epoch
line marks the end of the first step. Output lines are timestamped as they arrive.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import stopping
from .report import Results
from .sizes import REPO_ROOT, Sizes, program_env

FIRST_STEP_BATCH = 64
TRAIN_PROGRAM = (sys.executable, "code/train.py")


def bench_csv(data_root: Path, rows: int) -> Path:
    """A synthetic mitbih_train.csv of ``rows`` beats, written once and kept for later runs."""
    from ecgsweep.data import synth
    from ecgsweep.data.classes import MITBIH_FILES

    folder = data_root / f"mitbih-{rows}"
    csv_path = folder / MITBIH_FILES["train"]
    done = folder / ".complete"
    if not done.exists():
        synth.write_dataset(folder, n_train=rows, n_test=max(100, rows // 20), n_ptb=100, seed=0)
        done.write_text(str(rows))
    return csv_path


def drop_parse_cache(csv_path: Path) -> None:
    from ecgsweep.data import kaggle_csv

    for cached in kaggle_csv.parse_cache_files(csv_path):
        cached.unlink(missing_ok=True)


def has_parse_cache(csv_path: Path) -> bool:
    from ecgsweep.data import kaggle_csv

    return bool(kaggle_csv.parse_cache_files(csv_path))


def launch_to_first_step(args: list[str], wandb_dir: Path, timeout_s: float = 300,
                         program: tuple[str, ...] = TRAIN_PROGRAM) -> dict[str, float]:
    """Seconds from launching ``code/train.py`` (``program``) to: the run's first line (W&B
    and Keras up), the data line, the first epoch line (one step and the validation pass).
    However it ends, the run is stopped and waited for; a stopped bench kills it at once."""
    stopping.check()  # in a smoke bench this runs in a thread: a stopped bench launches no more
    marks: dict[str, float] = {}
    lines: list[str] = []
    t0 = time.time()
    with stopping.launched([*program, *args], cwd=REPO_ROOT, env=program_env(wandb_dir),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc, \
            stopping.killed_on_stop(proc, timeout_s):
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.time()
            lines.append(line.rstrip())
            for mark, prefix in (("run_ready", "run "), ("data_loaded", "data: "),
                                 ("first_step", "epoch 1/")):
                if line.startswith(prefix) and mark not in marks:
                    marks[mark] = now - t0
        proc.wait()
    stopping.check()  # a run the stop killed is no failure of its own
    if proc.returncode != 0 or len(marks) < 3:
        tail = "\n".join(lines[-15:])
        raise RuntimeError(f"code/train.py exited {proc.returncode} before a first epoch:\n{tail}")
    return marks


def bench_startup(results: Results, sizes: Sizes, work: Path, data_root: Path) -> None:
    """Cold and warm launch of code/train.py to its first epoch line; medians."""
    t0 = time.perf_counter()
    csv_path = bench_csv(data_root, sizes.csv_rows)
    made_s = time.perf_counter() - t0
    args = ["--model=cnn", "--dataset=mitbih", f"--data_dir={csv_path.parent}", "--epochs=1",
            f"--batch_size={FIRST_STEP_BATCH}", f"--max_train_beats={FIRST_STEP_BATCH}",
            "--val_fraction=0.01", f"--models_dir={work / 'startup-models'}",
            *[f"--{k}={v}" for k, v in sizes.model.items()]]
    runs: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    for _ in range(sizes.startup_repeats):
        drop_parse_cache(csv_path)
        runs["cold"].append(launch_to_first_step(args, work / "startup-wandb"))
        if not has_parse_cache(csv_path):
            raise RuntimeError(f"the cold run did not write a parse cache for {csv_path}")
        runs["warm"].append(launch_to_first_step(args, work / "startup-wandb"))

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    def phases(kind: str) -> str:
        ready, data, step = med(kind, "run_ready"), med(kind, "data_loaded"), med(kind, "first_step")
        return (f"W&B+Keras up {ready:.1f} s, data {data - ready:.1f} s, "
                f"model, first step and validation {step - data:.1f} s")

    size_mb = csv_path.stat().st_size / 1e6
    cold, warm = med("cold", "first_step"), med("warm", "first_step")
    results.add("start-up", f"cold cache: launch to first step ({sizes.csv_rows:,}-row CSV)", cold,
                "s", phases("cold") + (f"; CSV {size_mb:.0f} MB" +
                                       (f", written in {made_s:.0f} s" if made_s > 1 else "")),
                runs=runs["cold"])
    results.add("start-up", "warm cache: launch to first step", warm, "s", phases("warm"),
                runs=runs["warm"])
    results.add("start-up", "ratio cold / warm", cold / warm, "x",
                f"data loading alone: {(med('cold', 'data_loaded') - med('cold', 'run_ready')) / max(1e-3, med('warm', 'data_loaded') - med('warm', 'run_ready')):.1f}x")
