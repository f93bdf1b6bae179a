"""Inference in this process: the prediction path of ``code/eval.py`` and its bootstrap."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from .report import Results, format_value
from .sizes import Sizes


def bench_inference(results: Results, sizes: Sizes, model_path: Path,
                    experiments: bool = False) -> None:
    from ecgsweep import evaluation
    from ecgsweep.data import synth

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
