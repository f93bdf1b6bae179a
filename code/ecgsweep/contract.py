"""The contract between a training run and the sweep runner: one definition of each fact.

Both sides import from here: the exit codes a run ends with (and the runner classifies),
the files a run leaves in its wandb run folder, and the metric names code/train.py logs.
"""

from __future__ import annotations

# Exit codes the offline sweep runner (and users' scripts) can rely on.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # bad input: config, data, model/data mismatch
EXIT_NAN = 3  # training diverged (NaN or infinite loss, weights or validation outputs)

# Files code/train.py writes into its wandb run folder's files/ (read by the sweep runner).
METRICS_FILE = "ecgsweep-metrics.jsonl"
SUMMARY_FILE = "ecgsweep-summary.json"

# Metrics code/train.py logs every epoch or writes to its summary (DESIGN.md).
TRAIN_METRICS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_macro_f1",
                 "best_val_macro_f1", "best_epoch")
