"""A run's folds: its training/validation splits, how their epochs are logged, and what
k-fold cross-validation reports.

``folds: k`` (k >= 2) trains k models one after the other, saved as
``<run dir>/fold<i>.keras`` with a ``fold<i>.json`` record each. Their epochs go to W&B as
``fold<i>/val_macro_f1`` etc. (with ``fold``); W&B's plain ``val_macro_f1`` etc. get the
epoch-wise mean over the folds, written once all folds have trained. Not fold 1's epochs
live: the offline runner (like W&B) scores a run by the best value in its history and
summary, so a lucky fold 1 would lift the run above its mean; the mean rows never exceed
the summary's value of the objective (the mean of the folds' kept epochs). The price:
hyperband sees a k-fold run's epochs only at its end, so it cannot stop it early.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np

from .contract import VAL_METRICS
from .model_record import KFoldSummary, ModelRecord


def split_seed(config: dict[str, Any]) -> int:
    """The seed of the validation split and the folds: split_seed, else the run's seed."""
    return int(config["seed"]) if int(config["split_seed"]) < 0 else int(config["split_seed"])


def development_folds(config: dict[str, Any], class_names: Sequence[str],
                      dev) -> Iterator[tuple[Any, dict]]:
    """The run's training/validation splits, each with its training beats rebalanced.

    One split (``folds`` 0 or 1: ``val_fraction`` held out) or k stratified folds. SMOTE
    and synthetic augmentation (``imbalance.rebalance``) see only a split's training part,
    after the validation part is taken (and after ``max_train_beats`` has capped the real
    beats: added beats come on top); the validation beats are yielded as split. Yields
    ``(datasets.Fold, added)`` one at a time, so only one rebalanced fold is in memory.
    """
    from . import imbalance
    from .data import datasets

    seed = int(config["seed"])
    by_record, note = datasets.choose_val_split(config["val_split"], dev)
    print(note, flush=True)
    if int(config["folds"]) >= 2:
        folds = datasets.kfold_splits(dev, int(config["folds"]), split_seed(config),
                                      config["max_train_beats"], by_record=by_record)
    else:
        train, val = datasets.holdout_split(dev, config["val_split"], config["val_fraction"],
                                            split_seed(config), config["max_train_beats"])
        folds = [datasets.Fold(1, train, val)]
    for fold in folds:
        if by_record:
            print(f"fold {fold.index}: held-out records {datasets.describe_records(fold.val)}",
                  flush=True)
        train, added = imbalance.rebalance(fold.train, config, class_names,
                                           seed=seed + fold.index - 1)
        yield datasets.Fold(fold.index, train, fold.val, fold.val_index), added


class ValidationConfusion(NamedTuple):
    """A model's confusion matrix on the validation beats, and one per held-out record."""

    total: np.ndarray
    by_record: dict[str, Any] | None  # None when the beats name no record


@dataclass(frozen=True)
class FoldOutcome:
    """One trained fold (one split: the only one): its saved model, the record saved
    beside it, and what training returned (``training.FitResult``)."""

    path: Path
    record: ModelRecord
    result: Any


def _format_metrics(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                     if k not in ("epoch", "learning_rate"))


class EpochLog:
    """Receives each epoch's metrics: W&B (where the offline sweep runner reads them, from the
    run's own record) and one terminal line."""

    def __init__(self, run, epochs: int):
        self.run = run
        self.epochs = epochs

    def __call__(self, metrics: dict[str, float]) -> None:
        self.run.log(metrics)
        shown = _format_metrics(metrics)
        print(f"epoch {metrics['epoch']}/{self.epochs}  {shown}", flush=True)


class FoldLog:
    """A fold's epochs in k-fold cross-validation: to W&B under ``fold<i>/`` and the terminal.

    Their keys carry the fold, so the sweep's metric (``val_macro_f1`` etc.) is logged
    only by the epoch-wise mean over the folds, once they have all trained
    (``mean_history``).
    """

    def __init__(self, run, fold: int, folds: int, epochs: int):
        self.run, self.fold, self.folds, self.epochs = run, fold, folds, epochs

    def __call__(self, metrics: dict[str, float]) -> None:
        self.run.log({"fold": self.fold, **{f"fold{self.fold}/{k}": v for k, v in metrics.items()}})
        shown = _format_metrics(metrics)
        print(f"fold {self.fold}/{self.folds} epoch {metrics['epoch']}/{self.epochs}  {shown}",
              flush=True)


def mean_history(histories: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Epoch-wise mean over folds, with the spread of each validation F1. A fold that
    stopped early (early stopping, SIGTERM) counts with its last epoch's values for the
    later epochs, so every row averages all folds and no row's objective exceeds the mean
    of the folds' best epochs (the run's value)."""
    histories = [h for h in histories if h]
    rows = []
    for e in range(max((len(h) for h in histories), default=0)):
        at = [h[min(e, len(h) - 1)] for h in histories]
        keys = [k for k in at[0] if k != "epoch" and all(k in r for r in at)]
        row: dict[str, float] = {"epoch": e + 1}
        row.update({k: float(np.mean([r[k] for r in at])) for k in keys})
        row.update({f"{k}_std": float(np.std([r[k] for r in at]))
                    for k in VAL_METRICS if k in keys})
        rows.append(row)
    return rows


def eval_command(paths: list[Path]) -> str:
    """The ``code/eval.py`` command that scores the models at ``paths`` (several: as an
    ensemble) on the test data."""
    return "python code/eval.py " + " ".join(f"--model {p}" for p in paths)


def kfold_summary(outcomes: list[FoldOutcome], folds: int,
                  pooled: dict[str, Any]) -> KFoldSummary:
    """The folds' values, their mean and spread, the pooled EC57 report
    (``cv_report.pooled_ec57``), and the fold models with their ensemble's eval command."""
    values = [o.result.kept_value for o in outcomes]
    paths = [o.path for o in outcomes]
    return KFoldSummary(folds=folds, completed=len(outcomes), values=values,
                        mean=float(np.mean(values)), std=float(np.std(values)),
                        best_epochs=[o.result.kept_epoch for o in outcomes], **pooled,
                        models=[str(p) for p in paths], eval_command=eval_command(paths))


def mean_kept_metrics(outcomes: list[FoldOutcome]) -> dict[str, float]:
    """The mean over the folds of each metric every fold kept."""
    kept_keys = set.intersection(*(set(o.result.kept_metrics) for o in outcomes))
    return {key: float(np.mean([o.result.kept_metrics[key] for o in outcomes]))
            for key in sorted(kept_keys)}
