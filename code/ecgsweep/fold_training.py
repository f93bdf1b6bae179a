"""The fit step of a run: build each fold's model, train it, score its kept epoch on the
validation beats, and save it with its record (one split: one fold)."""

from __future__ import annotations

from typing import Any

from . import ec57, params
from .cli import StoppedEmptyHanded
from .contract import FOLD_MODEL_FILE, RUN_MODEL_FILE
from .cv_report import print_record_errors
from .folds import (EpochLog, FoldLog, FoldOutcome, FoldsDoneLog, ValidationConfusion,
                    cut_short_note, development_folds)
from .model_record import record_path
from .run_record import fold_record
from .run_start import RunContext


def train_folds(ctx: RunContext) -> list[FoldOutcome]:
    """Train every fold (one split: one fold); each saved with its record."""
    from .data import datasets

    fingerprint = datasets.fingerprint(ctx.dev)
    outcomes: list[FoldOutcome] = []
    folds_done = FoldsDoneLog(ctx.run)
    for fold, added in development_folds(ctx.config, ctx.class_names, ctx.dev,
                                           ctx.data.other_lead):
        outcome = train_fold(ctx, fold, added, fingerprint)
        if outcome is None:
            if outcomes:
                break  # stopped: keep the folds that finished
            unfinished = "its first fold finished" if ctx.folds else "its first batch ended"
            raise StoppedEmptyHanded(f"the run was stopped before {unfinished}; nothing to keep")
        outcomes.append(outcome)
        if ctx.folds:
            folds_done(outcomes)  # the step hyperband compares k-fold runs at
        if ctx.stop.requested:
            break
    return outcomes


def _describe_data(ctx: RunContext, fold, added: dict) -> int:
    """Print the fold's beats (and those added to training); returns how many were added."""
    n_added = sum(n for per_class in added.values() for n in per_class.values())
    extra = "".join(f"; {method} added " + ", ".join(f"{n} {c}" for c, n in per.items())
                    for method, per in added.items() if per)
    print(f"{ctx.tag(fold)}data: {len(fold.train)} training"
          f"{f' ({n_added} added)' if n_added else ''} and {len(fold.val)} validation beats, "
          f"classes {', '.join(ctx.class_names)}{extra}", flush=True)
    return n_added


def train_fold(ctx: RunContext, fold, added: dict, fingerprint: str) -> FoldOutcome | None:
    """Build, fit and save one fold's model; None when stopped before its first epoch, or
    (a fold of k) before its end: only folds that finished are kept."""
    from . import training

    training.seed_everything(ctx.config["seed"])  # each fold starts alike: reproducible alone
    tag = ctx.tag(fold)
    n_added = _describe_data(ctx, fold, added)
    model, fine_tune = build_model(ctx.config, int(ctx.dev.X.shape[1]), ctx.n_classes)
    sink = (FoldLog(ctx.run, fold.index, ctx.folds, ctx.config["epochs"]) if ctx.folds
            else EpochLog(ctx.run, ctx.config["epochs"]))
    try:
        result = training.fit(model, ctx.config, fold.train, fold.val, ctx.class_names,
                              sink, ctx.stop, fine_tune=fine_tune)
    except training.TrainingDiverged as e:
        raise training.TrainingDiverged(f"{tag}{e}") from None
    if not result.history:
        return None
    if ctx.folds and not result.finished:
        print(f"{tag}stopped before it finished; not kept", flush=True)
        return None
    confusion = validation_confusion(model, fold.val, ctx.config, ctx.n_classes,
                                     result.class_prior)
    print(ec57.format_table(ec57.class_table(confusion.total, ctx.class_names),
                            f"{tag}validation at the kept epoch {result.kept_epoch}"
                            f"{cut_short_note(result.kept_metrics)} "
                            f"({ctx.config['keep_epoch']}), "
                            f"{ec57.table_heading(ctx.class_names)}:"), flush=True)
    if confusion.by_record is not None and not ctx.folds:  # k-fold: pooled, at the end
        print_record_errors(confusion.by_record, ctx.class_names)
    path = ctx.run_dir / (FOLD_MODEL_FILE.format(index=fold.index) if ctx.folds
                          else RUN_MODEL_FILE)
    model.save(path)
    record = fold_record(ctx, fold, result, confusion, fingerprint, added if n_added else None)
    record.write(record_path(path))
    if ctx.folds:
        print(f"{tag}{ctx.config['keep_epoch']} {training.objective_metric(ctx.config)} "
              f"{result.kept_value:.4f} at epoch {result.kept_epoch}; saved {path}", flush=True)
    return FoldOutcome(path, record, result)


def build_model(config: dict[str, Any], input_width: int, n_classes: int):
    """A fresh model (from the family, or from the pretrained file) and its FineTune plan."""
    from . import models, training, transfer
    from .data import beatnorm

    if not params.pretrained_set(config["pretrained"]):
        leads = int(config["beat_leads"])
        shape = (beatnorm.beat_width(input_width, leads),
                 beatnorm.channels(config["beat_normalization"], leads))
        return models.build(config, shape, n_classes), None
    where = f"config key 'pretrained': {config['pretrained']}"
    pretrained = transfer.load_pretrained(config["pretrained"], input_width)
    model, base = transfer.build(config, pretrained, n_classes, where)
    return model, training.FineTune(base, int(config["freeze_epochs"]),
                                    float(config["fine_tune_lr_factor"]))


def validation_confusion(model, val, config: dict[str, Any], n_classes: int,
                         class_prior: list[float] | None,
                         batch_size: int = 1024) -> ValidationConfusion:
    """Confusion matrix of ``model`` (its kept epoch's weights, trained to ``class_prior``)
    on the validation beats, and one per held-out record when the beats name their records
    (else None)."""
    from sklearn.metrics import confusion_matrix

    from .training import predict_proba

    pred = predict_proba(model, val, config, batch_size=batch_size,
                         class_prior=class_prior).argmax(axis=1)
    cm = confusion_matrix(val.y, pred, labels=list(range(n_classes)))
    by_record = (ec57.confusion_by_record(val.y, pred, val.records, n_classes)
                 if val.records is not None else None)
    return ValidationConfusion(cm, by_record)
