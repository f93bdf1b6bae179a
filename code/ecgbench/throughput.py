"""One backend's training throughput, in a process of its own (Keras picks its backend once,
on import). The bench starts it with KERAS_BACKEND set:

    KERAS_BACKEND=torch python -m ecgbench.throughput --beats 4000 --epochs 4 --batch 64

Trains the CNN with ``training.fit`` as a run does, on synthetic beats, and prints one line
``THROUGHPUT {json}``: the backend, its device line, its GPUs and the beats/s of each epoch
after the first (graph tracing and compilation left out).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

MARK = "THROUGHPUT "


def measure(beats: int, val_beats: int, epochs: int, batch: int, mixed: bool,
            model: dict[str, Any]) -> dict[str, Any]:
    from ecgsweep import backend
    from ecgsweep.config import resolve
    from ecgsweep.data import synth
    from ecgsweep.data.datasets import Split

    from .training import fit_ours, steady_rate

    backend.select()
    device = backend.configure_device(mixed)
    train = Split(*synth.make_mitbih(beats, 0))
    val = Split(*synth.make_mitbih(val_beats, 1))
    config = resolve({"model": "cnn", "epochs": epochs, "batch_size": batch,
                      "mixed_precision": mixed, **model})
    _, ends = fit_ours(config, train, val)
    return {"backend": device.backend, "device": device.describe(), "gpus": list(device.gpus),
            "precision": device.precision, "rates": steady_rate(ends, beats)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m ecgbench.throughput")
    p.add_argument("--beats", type=int, required=True)
    p.add_argument("--val-beats", type=int, default=256)
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--mixed", action="store_true", help="mixed_float16 (on a GPU only)")
    p.add_argument("--model", default="{}", help="CNN hyperparameters, as JSON")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = measure(args.beats, args.val_beats, args.epochs, args.batch, args.mixed,
                  json.loads(args.model))
    print(MARK + json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
