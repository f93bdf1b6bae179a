"""Training throughput in this process: our ``training.fit`` against the plain ``model.fit``
that published MIT-BIH notebooks use, on the same model, data and batch size."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .report import Results, format_value
from .sizes import Sizes

MODEL_FILE = "bench-model.keras"  # the model the inference section predicts with


def cnn_config(sizes: Sizes, **overrides: Any) -> dict[str, Any]:
    from ecgsweep.config import resolve

    return resolve({"model": "cnn", "epochs": sizes.epochs, **sizes.model, **overrides})


def steady_rate(epoch_ends: list[float], beats: int) -> list[float]:
    """Beats/s of every epoch after the first, from the wall times at the epoch ends."""
    return [beats / d for d in np.diff(epoch_ends)[1:]] if len(epoch_ends) > 2 else []


def fit_ours(config: dict[str, Any], train, val):
    """``training.fit`` as a run calls it; returns the model and the wall times at the start
    and at each epoch end (the run's own per-epoch sink is the clock)."""
    import keras

    from ecgsweep import models, training
    from ecgsweep.data.datasets import MITBIH_CLASSES  # synth.make_mitbih's labels

    keras.utils.set_random_seed(int(config["seed"]))
    model = models.build(config, (train.X.shape[1], 1), len(MITBIH_CLASSES))
    ends = [time.perf_counter()]
    training.fit(model, config, train, val, MITBIH_CLASSES,
                 lambda m: ends.append(time.perf_counter()), training.StopRequest())
    return model, ends


def _fit_baseline(config: dict[str, Any], train, val, n_classes: int, batch_size: int = 32,
                  jit_compile: Any = "auto"):
    """What published notebooks do: compile, then model.fit on NumPy arrays."""
    import keras

    from ecgsweep import models

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


def _synthetic_splits(sizes: Sizes):
    """The training and validation beats every fit here uses."""
    from ecgsweep.data import synth
    from ecgsweep.data.datasets import Split

    return (Split(*synth.make_mitbih(sizes.train_beats, 0)),
            Split(*synth.make_mitbih(sizes.val_beats, 1)))


def inference_model(sizes: Sizes, work: Path) -> Path:
    """The model the inference section predicts with, when the training section does not
    run: the same fit the training section saves (ours, default batch), not measured."""
    train, val = _synthetic_splits(sizes)
    model, _ = fit_ours(cnn_config(sizes), train, val)
    saved = work / MODEL_FILE
    model.save(saved)
    return saved


def bench_training(results: Results, sizes: Sizes, work: Path,
                   experiments: bool = False) -> Path:
    """Training throughput; returns the path of a saved model for the inference bench."""
    train, val = _synthetic_splits(sizes)
    n_classes = 5
    b32 = cnn_config(sizes, batch_size=32)
    default = cnn_config(sizes)
    variants: dict[str, Callable[[], tuple[Any, list[float]]]] = {
        "baseline": lambda: _fit_baseline(b32, train, val, n_classes),
        "ours_b32": lambda: fit_ours(b32, train, val),
        "ours_default": lambda: fit_ours(default, train, val),
    }
    if experiments:
        variants["baseline_xla"] = lambda: _fit_baseline(b32, train, val, n_classes,
                                                         jit_compile=True)
    rates: dict[str, list[float]] = {k: [] for k in variants}
    saved = work / MODEL_FILE
    for _ in range(sizes.rounds):
        for name, run in variants.items():
            model, ends = run()
            rates[name] += steady_rate(ends, len(train))
            if name == "ours_default" and not saved.exists():
                model.save(saved)
    med = {k: statistics.median(v) if v else None for k, v in rates.items()}
    best = {k: max(v) if v else None for k, v in rates.items()}
    where = (f"{len(train)} synthetic beats, {len(val)} validation, {sizes.epochs} epochs x "
             f"{sizes.rounds} rounds; median epoch, the first of each fit left out")
    results.add("training", "baseline: model.fit on NumPy, batch 32", med["baseline"], "beats/s",
                where, epochs=rates["baseline"], best=best["baseline"])
    results.add("training", "ours: training.fit (input pipeline, callbacks), batch 32", med["ours_b32"],
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
        results.add("experiments", "baseline, batch 32, jit_compile=True (XLA)",
                    med["baseline_xla"], "beats/s",
                    f"vs {format_value(med['baseline'], 'beats/s')} without",
                    epochs=rates["baseline_xla"])
    return saved
