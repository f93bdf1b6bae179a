"""`make bench`: how fast the project trains, starts, predicts and sweeps, on this machine.

Every comparison is made in one run, on the same data and model, and reported as a ratio:
machines (and neighbours on a shared one) differ too much for absolute figures to carry.

- training: beats/s of our path (``training.fit``: tf.data, our callbacks) against the
  plain ``model.fit`` on NumPy arrays (batch 32, validation_data, no callbacks of ours)
  that most published MIT-BIH notebooks use. Per-epoch wall time, validation included,
  first epoch left out (graph tracing); variants alternate, median over epochs and rounds.
- start-up: launch of ``code/train.py`` to the end of its first training step, with the
  Kaggle-CSV parse cache deleted (cold) and present (warm). A probe runs the unchanged
  program and prints a timestamp from a Keras callback after the first step.
- inference: beats/s of the prediction path of ``code/eval.py`` (``evaluation.predict_proba``
  on a model loaded from its .keras file); the bootstrap of the report, timed on 20k beats.
- sweep: wall time of ``code/sweep.py`` to a target val_macro_f1 with bayes + hyperband
  against grid search over the same discrete space (target: 95% of the best value the
  full grid finds; bayes starts at random, so its figure is the median of 3 sweeps).

Results: a rich table and ``bench/results.json``, with the machine (CPU, cores, TF).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
FIRST_STEP_MARK = "BENCH_FIRST_STEP"
SECTIONS = ("training", "inference", "startup", "sweep")


# ----------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Sizes:
    """How big each measurement is. FULL takes ~6-7 minutes on 2 cores (plus ~20 s once
    to write its 87k-row CSV); SMOKE checks that every figure can be produced, in well
    under a minute of work."""

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
    sweep_csv_rows: int  # the sweeps' own CSV (the start-up section deletes its cache)
    sweep_space: dict[str, list[Any]]  # discrete: grid over it, bayes over the same values
    sweep_fixed: dict[str, Any]
    sweep_target: float | None  # None: a share of the best value the full grid reaches
    sweep_target_share: float
    sweep_max_runs: int  # bayes run cap (grid: its size)
    sweep_bayes_repeats: int  # bayes starts at random: its time to target is a median of these
    sweep_concurrent: bool  # run both sweeps at once (smoke only: shorter, not comparable)


FULL = Sizes(
    train_beats=4000, val_beats=1000, epochs=3, rounds=2, model={},
    csv_rows=87_554,  # the size of the real Kaggle mitbih_train.csv
    startup_repeats=2, infer_beats=20_000, infer_repeats=5, bootstrap_beats=20_000,
    sweep_csv_rows=20_000, sweep_space={"learning_rate": [0.0003, 0.003], "layer_1_size": [8, 32],
                 "kernel_size": [3, 7]},
    sweep_fixed={"epochs": 4, "max_train_beats": 2000, "val_fraction": 0.05,
                 "n_conv_blocks": 2, "layer_2_size": 32, "layer_FC_size": 32},
    sweep_target=None, sweep_target_share=0.95, sweep_max_runs=8, sweep_bayes_repeats=3,
    sweep_concurrent=False,
)

SMOKE = Sizes(
    train_beats=512, val_beats=128, epochs=2, rounds=1,
    model={"n_conv_blocks": 2, "layer_1_size": 8, "layer_2_size": 8, "layer_FC_size": 16},
    csv_rows=2000, startup_repeats=1, infer_beats=2000, infer_repeats=2, bootstrap_beats=20_000,
    sweep_csv_rows=1000, sweep_space={"learning_rate": [0.001]},
    sweep_fixed={"epochs": 1, "max_train_beats": 200, "val_fraction": 0.05,
                 "n_conv_blocks": 1, "layer_1_size": 4, "layer_FC_size": 8},
    sweep_target=0.0, sweep_target_share=1.0, sweep_max_runs=1, sweep_bayes_repeats=1,
    sweep_concurrent=True,
)


# ----------------------------------------------------------------------------- results


@dataclass
class Figure:
    section: str
    name: str
    value: float | None  # None: not measured (note says why)
    unit: str
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


class Results:
    def __init__(self, mode: str, machine: dict[str, Any]):
        self.mode = mode
        self.machine = machine
        self.figures: list[Figure] = []
        self.started = time.time()

    def add(self, section: str, name: str, value: float | None, unit: str, note: str = "",
            **detail: Any) -> Figure:
        fig = Figure(section, name, None if value is None else float(value), unit, note, detail)
        self.figures.append(fig)
        return fig

    def not_measured(self, section: str, name: str, unit: str, why: str) -> Figure:
        return self.add(section, name, None, unit, f"not measured: {why}")

    def as_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "machine": self.machine,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
                "wall_s": round(time.time() - self.started, 1),
                "figures": [asdict(f) for f in self.figures]}


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(),
                            "python": platform.python_version(), "platform": platform.platform()}
    if hasattr(os, "sched_getaffinity"):
        info["cores_usable"] = len(os.sched_getaffinity(0))
    try:
        import keras
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["keras"] = keras.__version__
        gpus = tf.config.list_physical_devices("GPU")
        info["gpus"] = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
                        for g in gpus]
    except ImportError as e:
        info["tensorflow"] = f"not importable: {e}"
    if hasattr(os, "getloadavg"):
        info["load_average_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def machine_line(m: dict[str, Any]) -> str:
    gpus = ", ".join(m.get("gpus") or []) or "no GPU"
    load = m.get("load_average_start")
    return (f"{m['cpu']}, {m['cores']} cores ({m.get('cores_usable', m['cores'])} usable), {gpus}; "
            f"TensorFlow {m.get('tensorflow')}, Keras {m.get('keras')}, Python {m['python']}"
            + (f"; load average at start {load[0]:.2f}" if load else ""))


def print_results(results: Results, console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console(highlight=False)
        if not console.is_terminal:
            console = Console(highlight=False, width=max(console.width, 160))
    table = Table(title=f"ecg-sweeps benchmark ({results.mode})",
                  caption=machine_line(results.machine))
    for col, justify in (("section", "left"), ("figure", "left"), ("value", "right"),
                         ("unit", "left"), ("note", "left")):
        table.add_column(col, justify=justify, overflow="fold")
    last = None
    for f in results.figures:
        table.add_row(f.section if f.section != last else "", f.name, format_value(f.value, f.unit),
                      f.unit, f.note, end_section=False)
        last = f.section
    console.print(table)


def write_results(results: Results, path: Path) -> None:
    from .artifacts import atomic_write_json

    atomic_write_json(path, results.as_json())


# ----------------------------------------------------------------------------- training


def _cnn_config(sizes: Sizes, **overrides: Any) -> dict[str, Any]:
    from .config import resolve

    return resolve({"model": "cnn", "epochs": sizes.epochs, **sizes.model, **overrides})


def _steady_rate(epoch_ends: list[float], beats: int) -> list[float]:
    """Beats/s of every epoch after the first, from the wall times at the epoch ends."""
    return [beats / d for d in np.diff(epoch_ends)[1:]] if len(epoch_ends) > 2 else []


def _fit_ours(config: dict[str, Any], train, val, n_classes: int, compile_kwargs=None,
              async_batch_hooks: bool = False):
    """training.fit as a run calls it. The two options are experiments: extra compile
    arguments (e.g. jit_compile), and marking our callbacks ``async_safe`` so Keras may
    dispatch their per-batch hook off the training loop."""
    import keras

    from . import models, training

    keras.utils.set_random_seed(int(config["seed"]))
    model = models.build(config, (train.X.shape[1], 1), n_classes)
    if compile_kwargs:
        original = model.compile
        model.compile = lambda *a, **k: original(*a, **{**k, **compile_kwargs})
    make_callbacks = training._make_callbacks
    if async_batch_hooks:
        def marked(*args, **kwargs):
            callbacks = make_callbacks(*args, **kwargs)
            for cb in callbacks:
                cb.async_safe = True
            return callbacks

        training._make_callbacks = marked
    ends = [time.perf_counter()]
    try:
        training.fit(model, config, train, val, n_classes,
                     lambda m: ends.append(time.perf_counter()), training.StopRequest())
    finally:
        training._make_callbacks = make_callbacks
    return model, ends


def _fit_baseline(config: dict[str, Any], train, val, n_classes: int, batch_size: int = 32,
                  jit_compile: Any = "auto"):
    """What published notebooks do: compile, then model.fit on NumPy arrays."""
    import keras

    from . import models

    keras.utils.set_random_seed(int(config["seed"]))
    model = models.build(config, (train.X.shape[1], 1), n_classes)
    model.compile(optimizer=keras.optimizers.Adam(float(config["learning_rate"])),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=jit_compile)
    ends = [time.perf_counter()]

    class EpochClock(keras.callbacks.Callback):  # measurement only: one call per epoch
        def on_epoch_end(self, epoch, logs=None):
            ends.append(time.perf_counter())

    model.fit(train.X[..., None], train.y, batch_size=batch_size, epochs=int(config["epochs"]),
              validation_data=(val.X[..., None], val.y), verbose=0, callbacks=[EpochClock()])
    return model, ends


def bench_training(results: Results, sizes: Sizes, work: Path,
                   experiments: bool = False) -> Path:
    """Training throughput; returns the path of a saved model for the inference bench."""
    from .data import synth
    from .data.datasets import Split

    train = Split(*synth.make_mitbih(sizes.train_beats, 0))
    val = Split(*synth.make_mitbih(sizes.val_beats, 1))
    n_classes = 5
    b32 = _cnn_config(sizes, batch_size=32)
    default = _cnn_config(sizes)
    variants: dict[str, Callable[[], tuple[Any, list[float]]]] = {
        "baseline": lambda: _fit_baseline(b32, train, val, n_classes),
        "ours_b32": lambda: _fit_ours(b32, train, val, n_classes),
        "ours_default": lambda: _fit_ours(default, train, val, n_classes),
    }
    if experiments:
        variants["ours_b32_xla"] = lambda: _fit_ours(b32, train, val, n_classes,
                                                     {"jit_compile": True})
        variants["ours_b32_async"] = lambda: _fit_ours(b32, train, val, n_classes,
                                                       async_batch_hooks=True)
        variants["baseline_xla"] = lambda: _fit_baseline(b32, train, val, n_classes,
                                                         jit_compile=True)
    rates: dict[str, list[float]] = {k: [] for k in variants}
    saved = work / "bench-model.keras"
    for _ in range(sizes.rounds):
        for name, run in variants.items():
            model, ends = run()
            rates[name] += _steady_rate(ends, len(train))
            if name == "ours_default" and not saved.exists():
                model.save(saved)
    med = {k: statistics.median(v) if v else None for k, v in rates.items()}
    best = {k: max(v) if v else None for k, v in rates.items()}
    where = (f"{len(train)} synthetic beats, {len(val)} validation, {sizes.epochs} epochs x "
             f"{sizes.rounds} rounds; median epoch, the first of each fit left out")
    results.add("training", "baseline: model.fit on NumPy, batch 32", med["baseline"], "beats/s",
                where, epochs=rates["baseline"], best=best["baseline"])
    results.add("training", "ours: training.fit (tf.data, callbacks), batch 32", med["ours_b32"],
                "beats/s", "same model, data and batch size", epochs=rates["ours_b32"],
                best=best["ours_b32"])
    results.add("training", f"ours at the default batch {default['batch_size']}",
                med["ours_default"], "beats/s", "", epochs=rates["ours_default"],
                best=best["ours_default"])
    if med["baseline"] and med["ours_b32"]:
        results.add("training", "ratio ours / baseline, batch 32", med["ours_b32"] / med["baseline"],
                    "x", ">1: ours is faster")
        results.add("training", f"ratio ours (batch {default['batch_size']}) / baseline (batch 32)",
                    med["ours_default"] / med["baseline"], "x", "")
    if experiments:
        results.add("experiments", "ours, batch 32, jit_compile=True (XLA)", med["ours_b32_xla"],
                    "beats/s", f"vs {format_value(med['ours_b32'], 'beats/s')} without",
                    epochs=rates["ours_b32_xla"])
        results.add("experiments", "ours, batch 32, callbacks marked async_safe",
                    med["ours_b32_async"], "beats/s",
                    f"vs {format_value(med['ours_b32'], 'beats/s')} as is", epochs=rates["ours_b32_async"])
        results.add("experiments", "baseline, batch 32, jit_compile=True (XLA)",
                    med["baseline_xla"], "beats/s",
                    f"vs {format_value(med['baseline'], 'beats/s')} without",
                    epochs=rates["baseline_xla"])
    return saved


# ----------------------------------------------------------------------------- inference


def bench_inference(results: Results, sizes: Sizes, model_path: Path,
                    experiments: bool = False) -> None:
    from . import evaluation
    from .data import synth

    X, y = synth.make_mitbih(sizes.infer_beats, 2)
    t0 = time.perf_counter()
    member = evaluation.load_model(model_path)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluation.predict_proba([member], X)
    first = len(X) / (time.perf_counter() - t0)
    times = []
    for _ in range(sizes.infer_repeats):
        t0 = time.perf_counter()
        evaluation.predict_proba([member], X)
        times.append(time.perf_counter() - t0)
    steady = len(X) / statistics.median(times)
    results.add("inference", "code/eval.py prediction path, steady", steady, "beats/s",
                f"{len(X)} beats, batch 1024, median of {sizes.infer_repeats}, default CNN")
    results.add("inference", "first call (graph tracing included)", first, "beats/s",
                f"model load {load_s:.2f} s before it")
    if experiments:
        for batch in (256, 4096):
            t0 = time.perf_counter()
            evaluation.predict_proba([member], X, batch_size=batch)  # trace this batch size
            runs = []
            for _ in range(sizes.infer_repeats):
                t0 = time.perf_counter()
                evaluation.predict_proba([member], X, batch_size=batch)
                runs.append(time.perf_counter() - t0)
            results.add("experiments", f"prediction at batch {batch}",
                        len(X) / statistics.median(runs), "beats/s",
                        f"vs {format_value(steady, 'beats/s')} at 1024")

    rng = np.random.default_rng(0)
    yb = rng.choice(5, size=sizes.bootstrap_beats, p=[0.8, 0.03, 0.07, 0.01, 0.09])
    probs = rng.dirichlet(np.ones(5), size=len(yb))
    probs[np.arange(len(yb)), yb] += 1.0
    pred = probs.argmax(axis=1)
    cm = np.bincount(yb * 5 + pred, minlength=25).reshape(5, 5)
    t0 = time.perf_counter()
    evaluation.bootstrap_intervals(cm, list("NSVFQ"), draws=1000, seed=0)
    boot_s = time.perf_counter() - t0
    results.add("inference", f"eval bootstrap: 1000 draws on {len(yb):,} beats", boot_s, "s",
                "accuracy, macro-F1, per-class precision/recall/F1 intervals")


# ----------------------------------------------------------------------------- start-up

PROBE = textwrap.dedent(f'''
    """Run code/train.py unchanged, printing a timestamp when the first training step ends."""
    import os, runpy, sys, time

    sys.path.insert(0, os.path.join(os.getcwd(), "code"))  # as running code/train.py would
    sys.argv = [os.path.join("code", "train.py"), *sys.argv[1:]]
    from ecgsweep import training

    _make_callbacks = training._make_callbacks


    def _with_probe(*args, **kwargs):
        import keras

        class FirstStep(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                print(f"{FIRST_STEP_MARK} {{time.time():.6f}}", flush=True)
                self.model.stop_training = True  # measured; let the run end normally

        return [*_make_callbacks(*args, **kwargs), FirstStep()]


    training._make_callbacks = _with_probe
    runpy.run_path(sys.argv[0], run_name="__main__")
''')


def _bench_csv(data_root: Path, rows: int) -> Path:
    """A synthetic mitbih_train.csv of ``rows`` beats, written once and kept for later runs."""
    from .data import synth

    folder = data_root / f"mitbih-{rows}"
    csv_path = folder / "mitbih_train.csv"
    done = folder / ".complete"
    if not done.exists():
        synth.write_dataset(folder, n_train=rows, n_test=max(100, rows // 20), n_ptb=100, seed=0)
        done.write_text(str(rows))
    return csv_path


def _drop_parse_cache(csv_path: Path) -> None:
    from .data import kaggle_csv

    for candidate in kaggle_csv._cache_candidates(csv_path):
        candidate.unlink(missing_ok=True)


def _has_parse_cache(csv_path: Path) -> bool:
    from .data import kaggle_csv

    return any(c.is_file() for c in kaggle_csv._cache_candidates(csv_path))


def _env(wandb_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(wandb_dir),
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    for key in ("WANDB_SWEEP_ID", "WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH", "WANDB_RESUME"):
        env.pop(key, None)
    return env


def launch_to_first_step(probe: Path, args: list[str], wandb_dir: Path,
                         timeout_s: float = 300) -> dict[str, float]:
    """Seconds from launch to: the run's first line (W&B and TensorFlow up), the data line,
    the end of the first training step. Output lines are timestamped as they arrive."""
    marks: dict[str, float] = {}
    lines: list[str] = []
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, str(probe), *args], cwd=REPO_ROOT,
                            env=_env(wandb_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            now = time.time()
            lines.append(line.rstrip())
            if line.startswith("run ") and "run_ready" not in marks:
                marks["run_ready"] = now - t0
            elif line.startswith("data: ") and "data_loaded" not in marks:
                marks["data_loaded"] = now - t0
            elif line.startswith(FIRST_STEP_MARK) and "first_step" not in marks:
                marks["first_step"] = float(line.split()[1]) - t0
        proc.wait()
    finally:
        timer.cancel()
    if proc.returncode != 0 or "first_step" not in marks:
        tail = "\n".join(lines[-15:])
        raise RuntimeError(f"code/train.py exited {proc.returncode} before a first step:\n{tail}")
    return marks


def bench_startup(results: Results, sizes: Sizes, work: Path, data_root: Path) -> None:
    t0 = time.perf_counter()
    csv_path = _bench_csv(data_root, sizes.csv_rows)
    made_s = time.perf_counter() - t0
    probe = work / "first_step_probe.py"
    probe.write_text(PROBE)
    args = ["--model=cnn", "--dataset=mitbih", f"--data_dir={csv_path.parent}", "--epochs=1",
            f"--models_dir={work / 'startup-models'}", *([f"--{k}={v}" for k, v in sizes.model.items()])]
    runs: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    for _ in range(sizes.startup_repeats):
        _drop_parse_cache(csv_path)
        runs["cold"].append(launch_to_first_step(probe, args, work / "startup-wandb"))
        if not _has_parse_cache(csv_path):
            raise RuntimeError(f"the cold run did not write a parse cache for {csv_path}")
        runs["warm"].append(launch_to_first_step(probe, args, work / "startup-wandb"))

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    def phases(kind: str) -> str:
        ready, data, step = med(kind, "run_ready"), med(kind, "data_loaded"), med(kind, "first_step")
        return (f"W&B+TF up {ready:.1f} s, data {data - ready:.1f} s, "
                f"model+first step {step - data:.1f} s")

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


# ----------------------------------------------------------------------------- sweeps


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


def _read_history(db: Path, seen: set[tuple[str, int]]) -> list[tuple[str, int, dict]]:
    if not db.is_file():
        return []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute("SELECT run_id, step, data FROM history").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []  # being created; next poll
    fresh = []
    for run_id, step, data in rows:
        if (run_id, step) not in seen:
            seen.add((run_id, step))
            fresh.append((run_id, step, json.loads(data)))
    return fresh


def _read_runs(db: Path) -> list[dict[str, Any]]:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(
                "SELECT run_id, seq, params, state, stop_reason, exit_code, epochs, metric_best, "
                "started_at, ended_at FROM runs ORDER BY seq")]
        finally:
            conn.close()
    except sqlite3.Error:
        return []


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
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=_env(folder / "wandb"), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    seen: set[tuple[str, int]] = set()
    try:
        while True:
            done = proc.poll() is not None
            for run_id, _, row in _read_history(db, seen):
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
    trace.runs = _read_runs(db) if db.is_file() else []
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
    csv_path = _bench_csv(data_root / "sweep", sizes.sweep_csv_rows)
    if not _has_parse_cache(csv_path):
        from .data.kaggle_csv import load_csv

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


SECTION_TITLES = {"training": "training", "inference": "inference", "startup": "start-up",
                  "data": "start-up", "sweep": "sweep", "experiments": "experiments"}


def _run_sections(results: Results, sizes: Sizes, sections: tuple[str, ...], work: Path,
                  data_root: Path, experiments: bool, concurrent: bool) -> None:
    """Training and inference run in this process; start-up and sweeps launch programs.
    With ``concurrent`` (smoke) the launching sections run in threads beside the others."""

    def guarded(name: str, step: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        print(f"  {name} ...", flush=True)
        try:
            return step()
        except Exception as e:  # one broken section should not hide the others
            results.not_measured(SECTION_TITLES[name], f"{name} section", "",
                                 f"{type(e).__name__}: {e}")
            return None
        finally:
            print(f"  {name} done in {time.perf_counter() - t0:.0f} s", flush=True)

    launching = []
    if "startup" in sections:
        launching.append(("startup", lambda: bench_startup(results, sizes, work, data_root)))
    if "sweep" in sections:
        launching.append(("sweep", lambda: bench_sweep(results, sizes, work, data_root)))
    if concurrent and launching:
        # the start-up CSV is written once, before anyone reads it
        guarded("data", lambda: (_bench_csv(data_root, sizes.csv_rows),
                                 _bench_csv(data_root / "sweep", sizes.sweep_csv_rows)))
    threads = [threading.Thread(target=guarded, args=step) for step in launching] if concurrent else []
    for t in threads:
        t.start()
    if "training" in sections or "inference" in sections:
        model_path = guarded("training", lambda: bench_training(results, sizes, work, experiments))
        if "inference" in sections and model_path is not None:
            guarded("inference", lambda: bench_inference(results, sizes, model_path, experiments))
    for t in threads:
        t.join()
    if not concurrent:
        for name, step in launching:
            guarded(name, step)


def run(smoke: bool = False, out: Path | None = None, sections: tuple[str, ...] = SECTIONS,
        data_root: Path | None = None, experiments: bool = False,
        sweep_target: float | None = None, keep: bool = False) -> Results:
    """Run the chosen sections, print the table and write the JSON; returns the results."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    sizes = SMOKE if smoke else FULL
    if sweep_target is not None:
        sizes = Sizes(**{**asdict(sizes), "sweep_target": sweep_target})
    out = Path(out) if out else REPO_ROOT / "bench" / ("results-smoke.json" if smoke else "results.json")
    data_root = Path(data_root) if data_root else REPO_ROOT / "bench" / "data"
    results = Results("smoke" if smoke else "full", machine_info())
    work = Path(tempfile.mkdtemp(prefix="ecg-bench-"))
    print(f"benchmark ({results.mode}) on {machine_line(results.machine)}", flush=True)
    try:
        _run_sections(results, sizes, sections, work, data_root, experiments,
                      concurrent=sizes.sweep_concurrent)
    finally:
        if keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    order = {name: i for i, name in enumerate(SECTION_TITLES.values())}
    results.figures.sort(key=lambda f: order.get(f.section, len(order)))
    if hasattr(os, "getloadavg"):
        results.machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print_results(results)
    write_results(results, out)
    print(f"wrote {out} ({results.as_json()['wall_s']:.0f} s in all)")
    return results
