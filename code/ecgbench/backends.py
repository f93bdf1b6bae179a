"""Training throughput per Keras backend, as ratios against TensorFlow.

Same model, data, batch size and code path (``training.fit``) on each backend; each backend
trains in a subprocess of its own with KERAS_BACKEND set (``ecgbench.throughput``), backends
alternating over the rounds. A backend that is not installed is skipped with a note.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import stopping
from .report import Results
from .sizes import REPO_ROOT, Sizes, program_env
from .throughput import MARK


def run_throughput(name: str, work: Path, beats: int, epochs: int, batch: int,
                   mixed: bool = False, model: dict[str, Any] | None = None) -> subprocess.Popen:
    """Start ``ecgbench.throughput`` on backend ``name``; ``read_throughput`` collects it."""
    cmd = [sys.executable, "-m", "ecgbench.throughput", "--beats", str(beats), "--epochs",
           str(epochs), "--batch", str(batch), "--model", json.dumps(model or {}),
           *(["--mixed"] if mixed else [])]
    path = os.pathsep.join(filter(None, [str(REPO_ROOT / "code"), os.environ.get("PYTHONPATH")]))
    env = program_env(work / "throughput-wandb", KERAS_BACKEND=name, PYTHONPATH=path)
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def read_throughput(proc: subprocess.Popen, timeout_s: float = 900) -> dict[str, Any]:
    """The worker's result line, or RuntimeError with the tail of its output. A stop or the
    timeout ends the worker too, and waits for it."""
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except BaseException:
        stopping.stop_and_wait(proc, subprocess.Popen.kill)
        raise
    lines = out.splitlines()
    found = [json.loads(line[len(MARK):]) for line in lines if line.startswith(MARK)]
    if proc.returncode != 0 or not found:
        tail = "\n".join(lines[-12:])
        raise RuntimeError(f"throughput worker exited {proc.returncode}:\n{tail}")
    return found[-1]


def measure_backends(names: list[str], sizes: Sizes, work: Path) -> dict[str, dict[str, Any]]:
    """Each backend's result, its steady epochs pooled over ``sizes.rounds`` rounds."""
    batch = 64  # the run's default batch_size
    out: dict[str, dict[str, Any]] = {}
    for _ in range(sizes.rounds):
        for name in names:
            proc = run_throughput(name, work, sizes.train_beats, sizes.backend_epochs, batch,
                                  model=sizes.model)
            got = read_throughput(proc)
            if name in out:
                out[name]["rates"] += got["rates"]
            else:
                out[name] = got
    return out


def bench_backends(results: Results, sizes: Sizes, work: Path) -> dict[str, tuple[str, ...]]:
    """Adds beats/s per backend and the ratios to TensorFlow; returns the GPUs each saw."""
    from ecgsweep import backend

    installed = [b for b in backend.BACKENDS if backend.is_installed(b)]
    for name in backend.BACKENDS:
        if name not in installed:
            results.not_measured("backends", f"{name}: training.fit, batch 64", "beats/s",
                                 f"{name} not installed (`{backend.INSTALL_HINT[name]}`)")
    measured = measure_backends(installed, sizes, work)
    rate = {name: statistics.median(m["rates"]) if m["rates"] else None
            for name, m in measured.items()}
    where = (f"{sizes.train_beats} synthetic beats, {sizes.backend_epochs} epochs x "
             f"{sizes.rounds} rounds, median epoch after the first; each in its own process")
    for name, m in measured.items():
        results.add("backends", f"{name}: training.fit, batch 64", rate[name], "beats/s",
                    f"{m['device']}; {where}", epochs=m["rates"])
    base = rate.get("tensorflow")
    for name in installed:
        if name == "tensorflow":
            continue
        label = f"ratio {name} / tensorflow"
        if base and rate.get(name):
            results.add("backends", label, rate[name] / base, "x", ">1: faster than TensorFlow")
        else:
            results.not_measured("backends", label, "x", "TensorFlow or this backend not measured")
    return {name: tuple(m["gpus"]) for name, m in measured.items()}
