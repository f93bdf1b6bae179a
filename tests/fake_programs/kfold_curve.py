"""A fast stand-in for a k-fold run of code/train.py: no TensorFlow, but its rows are made by
the run's own loggers (``ecgsweep.folds``: ``FoldLog``, ``FoldsDoneLog``, ``mean_log``), so the
sweep engine reads exactly the history a real k-fold run writes, in the same order.

Parameters as curve.py takes them. ``quality`` sets the folds' scores: fold i keeps
``quality - 0.02 * i`` (its last epoch), epoch e of E scores ``e / E`` of that. ``folds``
(default 3) and ``epochs`` (default 2); each epoch lasts FAKE_EPOCH_S seconds (default
0.05). SIGTERM stops it after the current epoch (train.py: after the current batch); as in
train.py a fold it interrupts is not kept, and the summary says ``stopped: true`` with the
folds that finished (none finished: one stopped line, exit 130).
"""

import os
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "code"))

from curve import params  # noqa: E402
from wandb_record import RecordWriter  # noqa: E402

from ecgsweep.cli import EXIT_INTERRUPTED  # noqa: E402
from ecgsweep.folds import FoldLog, FoldOutcome, FoldsDoneLog, mean_history, mean_log  # noqa: E402

stop = False


def on_term(signum, frame):
    global stop
    stop = True


class RecordRun:
    """What the loggers use of a wandb run: ``log``, one history record per call."""

    def __init__(self, writer: RecordWriter):
        self.writer, self.step = writer, 0

    def log(self, row):
        self.writer.history(dict(row), self.step)
        self.step += 1


def train_fold(run, index, folds, epochs, score, epoch_s):
    """One fold's epochs through FoldLog; its outcome as fold_training returns it."""
    sink, history = FoldLog(run, index, folds, epochs), []
    for epoch in range(1, epochs + 1):
        time.sleep(epoch_s)
        f1 = score * epoch / epochs
        row = {"epoch": epoch, "loss": 1.0 - f1, "val_loss": 1.0 - f1, "val_macro_f1": f1}
        history.append(row)
        sink(row)
        if stop:
            break
    result = SimpleNamespace(history=history, kept_metrics=dict(history[-1]),
                             kept_value=history[-1]["val_macro_f1"], stopped=stop)
    return FoldOutcome(Path(f"fold{index}.keras"), None, result)


def main():
    signal.signal(signal.SIGTERM, on_term)
    p = params()
    run_id = os.environ["WANDB_RUN_ID"]
    base = Path(os.environ.get("WANDB_DIR") or os.getcwd()) / "wandb"
    folder = base / f"offline-run-{time.strftime('%Y%m%d_%H%M%S')}-{run_id}"
    (folder / "files").mkdir(parents=True, exist_ok=True)
    writer = RecordWriter(folder / f"run-{run_id}.wandb")
    run = RecordRun(writer)
    folds, epochs = int(p.get("folds", 3)), int(p.get("epochs", 2))
    quality, epoch_s = float(p.get("quality", 0.5)), float(os.environ.get("FAKE_EPOCH_S", "0.05"))
    folds_done, outcomes = FoldsDoneLog(run), []
    for index in range(1, folds + 1):
        outcome = train_fold(run, index, folds, epochs, quality - 0.02 * index, epoch_s)
        if outcome.result.stopped:
            break
        outcomes.append(outcome)
        folds_done(outcomes)
        if stop:
            break
    if not outcomes:
        print("stopped: the run was stopped before its first fold finished; nothing to keep",
              file=sys.stderr, flush=True)
        writer.exit(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    log_mean = mean_log(run, len(outcomes), epochs)
    for row in mean_history([o.result.history for o in outcomes]):
        log_mean(row)
    value = sum(o.result.kept_value for o in outcomes) / len(outcomes)
    writer.summary({"val_macro_f1": value, "kept_val_macro_f1": value, "stopped": stop,
                    "folds": folds, "folds_completed": len(outcomes), "promoted": False})
    writer.exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
