"""The contract between a training run and the tools around it: one definition of each fact.

Both sides import from here: the exit codes a run ends with (which ``sweep_hooks`` explains
to the sweep runner), and the metric names code/train.py logs. Metrics and summary travel
the way any W&B program's do: through ``wandb.log`` and ``run.summary`` into the run's own
record, which the runner reads (``sweep/wandb_log.py``); there is no side file.
"""

from __future__ import annotations

# Exit codes users' scripts can rely on: the generic ones are the sweep engine's
# (ok 0, error 1, bad input 2: config, data, model/data mismatch); the training program's own
# is EXIT_NAN, which the engine learns through sweep_hooks.EcgProgram.describe_exit.
from .sweep.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE  # noqa: F401

EXIT_NAN = 3  # training diverged (NaN or infinite loss, weights or validation outputs)

# The W&B project of a run (and of eval's report) when WANDB_PROJECT names none.
DEFAULT_PROJECT = "ecg-sweeps"

# The validation metric each value of the ``objective`` config key names: the one that picks
# the kept epoch (keep_epoch: best), drives early stopping and the plateau schedule, and
# ranks runs for the best-model slot. sveb_veb_f1 is the mean of the EC57 SVEB and VEB F1
# (ec57.sveb_veb_f1), the figures the inter-patient literature reports.
OBJECTIVE_METRICS = {"macro_f1": "val_macro_f1", "sveb_veb_f1": "val_sveb_veb_f1"}
VAL_METRICS = tuple(OBJECTIVE_METRICS.values())


def kept_metric(name: str) -> str:
    """The summary key of ``name``'s value at the kept epoch (the best, or the last with
    keep_epoch: last). W&B's sweep engine judges a run by its metric's extremum over the
    logged history and the summary, so a sweep over runs that keep their last epoch must
    name this key: with ``name`` it would judge them by their best epoch."""
    return f"kept_{name}"


KEPT_METRIC = kept_metric("val_macro_f1")

# Metrics code/train.py logs every epoch or writes to its summary (DESIGN.md);
# val_sveb_veb_f1 when the classes include S and V (MIT-BIH).
TRAIN_METRICS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", *VAL_METRICS,
                 *(f"best_{m}" for m in VAL_METRICS), "best_epoch",
                 *(kept_metric(m) for m in VAL_METRICS))

# The marks of an epoch a stop (SIGTERM, Ctrl-C) cut short, logged with its metrics: after
# which of its batches it stopped, and how many it has. The summary's STOPPED_MID_EPOCH says
# the run's model ends on such an epoch.
STOPPED_AFTER_BATCH = "stopped_after_batch"
# The summary's mark of a run that a stop ended before its own end (it keeps what it trained).
STOPPED = "stopped"
EPOCH_BATCHES = "epoch_batches"
STOPPED_MID_EPOCH = "stopped_mid_epoch"
# Such an epoch's figures go to W&B under this prefix, so that no sweep metric (the ranking,
# bayes, hyperband) reads the figures of an epoch that is not whole.
CUT_SHORT_PREFIX = "cut_short/"

# Where a run's model is kept in its W&B run folder (beside it, its record: model.json).
RUN_MODEL_FILE = "model.keras"
# A k-fold run keeps one model per fold instead (and its record beside it: fold<i>.json).
FOLD_MODEL_FILE = "fold{index}.keras"
# The Keras name of a k-fold run's ensemble model (its fold models averaged in one file).
ENSEMBLE_MODEL_NAME = "ensemble"

# Who offers a finished run's model to the best-model slot: the run itself (default), or,
# when runs train on other machines (--ray), the sweep's coordinator once the run folder is
# back on its disk, under its lock.
PROMOTE_ENV = "ECGSWEEP_PROMOTE"
PROMOTE_BY_COORDINATOR = "coordinator"
