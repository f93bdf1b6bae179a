"""The contract between a training run and the sweep runner: one definition of each fact.

Both sides import from here: the exit codes a run ends with (and the runner classifies),
and the metric names code/train.py logs. Metrics and summary travel the way any W&B
program's do: through ``wandb.log`` and ``run.summary`` into the run's own record, which the
runner reads (``sweep/wandb_log.py``); there is no side file.
"""

from __future__ import annotations

# Exit codes the offline sweep runner (and users' scripts) can rely on.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # bad input: config, data, model/data mismatch
EXIT_NAN = 3  # training diverged (NaN or infinite loss, weights or validation outputs)

# The kept epoch's val_macro_f1 (the best, or the last with keep_epoch: last), written to
# the run's summary only. W&B's sweep engine judges a run by its metric's extremum over the
# logged history and the summary, so a sweep over runs that keep their last epoch must name
# this key: with val_macro_f1 it would judge them by their best epoch.
KEPT_METRIC = "kept_val_macro_f1"

# Metrics code/train.py logs every epoch or writes to its summary (DESIGN.md).
TRAIN_METRICS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_macro_f1",
                 "best_val_macro_f1", "best_epoch", KEPT_METRIC)

# Where a run's model is kept in its W&B run folder (beside it, its record: model.json).
RUN_MODEL_FILE = "model.keras"
# A k-fold run keeps one model per fold instead (and its record beside it: fold<i>.json).
FOLD_MODEL_FILE = "fold{index}.keras"

# Who offers a finished run's model to the best-model slot: the run itself (default), or,
# when runs train on other machines (--ray), the sweep's coordinator once the run folder is
# back on its disk, under its lock.
PROMOTE_ENV = "ECGSWEEP_PROMOTE"
PROMOTE_BY_COORDINATOR = "coordinator"
