"""The record step of a run: the record saved beside each fold's model, and the run's own
record, which a k-fold run makes from its folds': the folds' mean as its value, the fold
files listed (``kfold.models``). A k-fold run's own model (``final_model``) is saved with
that record, saying what the model is (``final_record``)."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from .cv_report import pooled_ec57
from .folds import (FoldOutcome, mean_log, ValidationConfusion, kfold_summary, mean_history,
                    mean_kept_metrics)
from .model_record import DatasetInfo, ModelRecord
from .run_start import RunContext


def fold_record(ctx: RunContext, fold, result, confusion: ValidationConfusion,
                fingerprint: str, added: dict | None) -> ModelRecord:
    """The record saved beside a fold's model (and, promoted, as best.json)."""
    import keras

    from . import training

    run = ctx.run
    # the files there were: a folder converted with --split train has no test file
    files = {role: path for role, path in ctx.source.files.items() if Path(path).is_file()}
    dataset = DatasetInfo(name=ctx.source.name, files=files,
                          fingerprint=fingerprint, n_train=len(fold.train), n_val=len(fold.val),
                          added=added or None)
    return ModelRecord(
        metric=training.objective_metric(ctx.config), goal="maximize",
        value=result.kept_value, best_epoch=result.kept_epoch, metrics=result.kept_metrics,
        config=ctx.config, run_id=run.id, project=run.project,
        sweep_id=os.environ.get("WANDB_SWEEP_ID") or getattr(run, "sweep_id", None),
        run_dir=str(ctx.run_dir), class_names=list(ctx.class_names), n_classes=ctx.n_classes,
        input_shape=[int(ctx.dev.X.shape[1]), 1], dataset=dataset,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), device=ctx.device,
        keras_version=keras.__version__, backend=keras.backend.backend(),
        stopped=result.stopped, val_confusion=confusion.total.tolist(),
        val_records=(sorted(set(fold.val.records.tolist()))
                     if fold.val.records is not None else None),
        val_confusion_by_record=confusion.by_record, transfer=ctx.transfer_info or None,
        fold=fold.index if ctx.folds else None, folds=ctx.folds or None,
        class_prior=result.class_prior)


def combine_folds(ctx: RunContext, outcomes: list[FoldOutcome]) -> tuple[ModelRecord, float, int]:
    """The run's record and (value, epoch): fold 1's record, with k-fold's means and the
    cross-validated EC57 table when there are folds. A k-fold run logs the epoch-wise mean
    over its folds here, for plots (``folds.mean_log``)."""
    from . import training

    first = outcomes[0]
    if not ctx.folds:
        return first.record, first.result.kept_value, first.result.kept_epoch
    mean_rows = mean_history([o.result.history for o in outcomes])
    sink_all = mean_log(ctx.run, len(outcomes), ctx.config["epochs"])
    for row in mean_rows:
        sink_all(row)
    kept_row = training.kept_row(mean_rows, ctx.config["keep_epoch"],
                                 training.objective_metric(ctx.config))
    pooled = pooled_ec57([o.record for o in outcomes], ctx.class_names)
    kfold = kfold_summary(outcomes, ctx.folds, pooled, not ctx.source.has_test_data())
    # The value the run's model competes with is the mean over the folds.
    record = dataclasses.replace(
        first.record, value=kfold.mean, best_epoch=int(kept_row["epoch"]),
        stopped=any(o.result.stopped for o in outcomes) or ctx.stop.requested,
        metrics=mean_kept_metrics(outcomes), kfold=kfold)
    return record, kfold.mean, int(kept_row["epoch"])


def final_record(record: ModelRecord, kind: str, n_train: int, best_epoch: int | None,
                 class_prior: list[float] | None, members: list[str] | None = None,
                 added: dict | None = None) -> ModelRecord:
    """The record of a k-fold run's own model (``final_model``: ``kind``, ensemble or
    refit, with the ``members`` an ensemble averages and the ``class_prior`` its outputs
    are calibrated to): the run's record, whose value is the k-fold mean. The model held no
    validation beats of its own, so its validation confusion matrix is the folds' pooled
    one and no fold or held-out records are named."""
    dataset = dataclasses.replace(record.dataset, n_train=n_train, n_val=None, added=added)
    return dataclasses.replace(
        record, final_model=kind, members=members, best_epoch=best_epoch, fold=None,
        class_prior=class_prior,
        dataset=dataset, val_confusion=record.kfold.confusion if record.kfold else None,
        val_records=None, val_confusion_by_record=None)
