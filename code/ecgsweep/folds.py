"""A run's folds: its training/validation splits, how their epochs are logged, and what
k-fold cross-validation reports.

``folds: k`` (k >= 2) trains k models one after the other, saved as
``<run dir>/fold<i>.keras`` with a ``fold<i>.json`` record each. Their epochs go to W&B as
``fold<i>/val_macro_f1`` etc. (with ``fold``). The plain metric names (``val_macro_f1``,
``kept_val_macro_f1``, ``val_loss``, ...) get one row per fold that trained to its end
(``FoldsDoneLog``): the mean over the folds so far of each fold's kept epoch, with
``folds_completed``. So the i-th value of the sweep's metric is the mean of the first i
folds, which are the same records in every run of a sweep (``split_seed``), and hyperband
(W&B's and the offline engine's) compares runs fold by fold and stops a lagging one after
its first or second fold. The summary holds the mean over all folds. Once all folds have
trained, their epoch-wise mean goes to W&B under ``mean/`` (``mean/val_macro_f1``, ...),
for plots only: under the plain names it would add rows that hyperband counts as steps.
W&B's engine judges a run by the best value its metric logged, so a run whose first folds
score above its last ones is credited with that higher running mean; the run's record and
the best-model slot hold the mean over all folds.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, NamedTuple, Sequence

import numpy as np

from .cli import UserError, counted, script_command
from .contract import (CUT_SHORT_PREFIX, EPOCH_BATCHES, STOPPED_AFTER_BATCH, VAL_METRICS,
                       kept_metric)
from .model_record import KFoldSummary, ModelRecord

if TYPE_CHECKING:
    from .data.datasets import Fold, Split


def split_seed(config: dict[str, Any]) -> int:
    """The seed of the validation split and the folds: split_seed, else the run's seed."""
    return int(config["seed"]) if int(config["split_seed"]) < 0 else int(config["split_seed"])


def development_folds(config: dict[str, Any], class_names: Sequence[str],
                      dev: Split, other_lead: Split | None = None
                      ) -> Iterator[tuple[Any, dict]]:
    """The run's training/validation splits, each with its training beats rebalanced (and,
    with ``train_outside_s_gate``, without the beats the S gate clears). ``other_lead``:
    the development records' beats in another lead (``data.other_lead``); each split's
    training part also gets those of its own records.

    One split (``folds`` 0 or 1: ``val_fraction`` held out) or k stratified folds. SMOTE
    and synthetic augmentation (``imbalance.rebalance``) see only a split's training part,
    after the validation part is taken (and after ``max_train_beats`` has capped the real
    beats: added beats come on top); the validation beats are yielded as split. Yields
    ``(datasets.Fold, added)`` one at a time, so only one rebalanced fold is in memory.
    """
    from . import imbalance, training
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
            print(held_out_line(fold, len(folds) > 1, len(fold.val) / len(dev),
                                config["val_fraction"]), flush=True)
        train = with_other_lead(fold.train, other_lead, f"fold {fold.index}")
        kept = training.beats_outside_s_gate(train, config)
        if not len(kept):
            raise UserError(f"fold {fold.index}: train_outside_s_gate leaves no training beat "
                            f"(the {config['s_gate_measure']} of every one is above "
                            f"s_gate_irregularity={config['s_gate_irregularity']}); raise "
                            "s_gate_irregularity or set train_outside_s_gate=false")
        if len(kept) < len(fold.train):
            print(f"fold {fold.index}: {len(fold.train) - len(kept)} training beats the S gate "
                  "clears left out (train_outside_s_gate)", flush=True)
        train, added = imbalance.rebalance(kept, config, class_names,
                                           seed=seed + fold.index - 1)
        yield datasets.Fold(fold.index, train, fold.val, fold.val_index), added


def with_other_lead(train: Split, other_lead: Split | None, label: str) -> Split:
    """``train`` and, when ``other_lead`` is given, its records' beats in the other lead."""
    from .data import other_lead as other

    if other_lead is None:
        return train
    added = other.for_training(other_lead, train)
    print(f"{label}: {len(added)} training beats added from another lead of its training "
          "records (other_lead_data)", flush=True)
    return train.followed_by(added)


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


def format_metrics(metrics: dict[str, float]) -> str:
    """An epoch's metrics in one line, and whether a stop cut the epoch short."""
    shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                      if k not in ("epoch", "learning_rate", STOPPED_AFTER_BATCH, EPOCH_BATCHES))
    return shown + cut_short_note(metrics)


def cut_short_note(metrics: dict[str, float]) -> str:
    """" (stopped after batch k of n)" for an epoch a stop cut short, else ""."""
    if STOPPED_AFTER_BATCH not in metrics:
        return ""
    return (f" (stopped after batch {int(metrics[STOPPED_AFTER_BATCH])} of "
            f"{int(metrics[EPOCH_BATCHES])})")


class EpochLog:
    """Receives each epoch's metrics: W&B (where the offline sweep runner reads them, from the
    run's own record) and one terminal line."""

    def __init__(self, run, epochs: int):
        self.run = run
        self.epochs = epochs

    def __call__(self, metrics: dict[str, float]) -> None:
        self.run.log(logged_row(metrics))
        shown = format_metrics(metrics)
        print(f"epoch {metrics['epoch']}/{self.epochs}  {shown}", flush=True)


def logged_row(metrics: dict[str, float]) -> dict[str, float]:
    """An epoch's metrics as W&B logs them under the sweep's names; an epoch a stop cut
    short keeps its epoch number and marks there, its figures under ``CUT_SHORT_PREFIX``."""
    if STOPPED_AFTER_BATCH not in metrics:
        return metrics
    marks = ("epoch", STOPPED_AFTER_BATCH, EPOCH_BATCHES)
    return {(k if k in marks else f"{CUT_SHORT_PREFIX}{k}"): v for k, v in metrics.items()}


class FoldLog:
    """A fold's epochs in k-fold cross-validation: to W&B under ``fold<i>/`` and the terminal.

    Their keys carry the fold, so the sweep's metric (``val_macro_f1`` etc.) is logged
    only once per fold, by ``FoldsDoneLog``.
    """

    def __init__(self, run, fold: int, folds: int, epochs: int):
        self.run, self.fold, self.folds, self.epochs = run, fold, folds, epochs

    def __call__(self, metrics: dict[str, float]) -> None:
        self.run.log({"fold": self.fold, **{f"fold{self.fold}/{k}": v for k, v in metrics.items()}})
        shown = format_metrics(metrics)
        print(f"fold {self.fold}/{self.folds} epoch {metrics['epoch']}/{self.epochs}  {shown}",
              flush=True)


class PrefixedLog:
    """Epochs logged away from the sweep's metric: to W&B under ``prefix`` (``mean/`` for the
    epoch-wise mean over the folds, ``refit/`` for a refit), which no sweep metric names,
    and to the terminal after ``label``."""

    def __init__(self, run, prefix: str, label: str, epochs: int):
        self.run, self.prefix, self.label, self.epochs = run, prefix, label, epochs

    def __call__(self, metrics: dict[str, float]) -> None:
        self.run.log({f"{self.prefix}{k}": v for k, v in metrics.items()})
        print(f"{self.label} epoch {metrics['epoch']}/{self.epochs}  "
              f"{format_metrics(metrics)}", flush=True)


def mean_log(run, folds: int, epochs: int) -> PrefixedLog:
    """The epoch-wise mean over the folds (``mean_history``), once they have all trained."""
    return PrefixedLog(run, "mean/", f"mean of {counted(folds, 'fold')},", epochs)


def held_out_line(fold: Fold, k_fold: bool, share: float,
                  val_fraction: float) -> str:
    """The records a fold holds out; one split's says what share of the beats that is,
    since whole records rarely come to ``val_fraction`` of them."""
    from .data import datasets

    records = datasets.describe_records(fold.val)
    if k_fold:
        return f"fold {fold.index}: held-out records {records}"
    return (f"validation: held-out records {records}, {share:.0%} of the beats (whole records; "
            f"val_fraction {val_fraction:g} asks for about {val_fraction:.0%})")


def folds_done_text(completed: int, folds: int) -> str:
    """How a k-fold run's ``done:`` line says how many folds it finished (``FOLDS_DONE``
    reads it back for the sweep's runs table)."""
    return f"over {completed} of {folds} folds"


FOLDS_DONE = re.compile(r"^done: .* over (?P<completed>\d+) of (?P<folds>\d+) folds\b")


def folds_done_row(outcomes: list[FoldOutcome]) -> dict[str, float]:
    """The row logged after a fold: ``folds_completed`` and the mean over the folds so far
    of every metric their kept epochs hold, under its plain name, and each validation F1's
    under its ``kept_`` name too (a sweep that keeps the last epoch ranks by that one)."""
    means = {k: v for k, v in mean_kept_metrics(outcomes).items()
             if k not in ("epoch", "learning_rate")}
    row: dict[str, float] = {"folds_completed": len(outcomes), **means}
    row.update({kept_metric(m): means[m] for m in VAL_METRICS if m in means})
    return row


class FoldsDoneLog:
    """After each fold of a k-fold run: one row of the running mean (``folds_done_row``), the
    step at which hyperband compares runs. A fold stopped from outside before its end logs
    none: its value is not comparable with the others' at that step."""

    def __init__(self, run):
        self.run = run

    def __call__(self, outcomes: list[FoldOutcome]) -> None:
        if outcomes and not outcomes[-1].result.stopped:
            self.run.log(folds_done_row(outcomes))


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


def eval_command(paths: list[Path], needs_test_csv: bool = False,
                 runs_folder: str | os.PathLike = ".") -> str:
    """The ``code/eval.py`` command that scores the models at ``paths`` (several: as an
    ensemble) on the test data, run from ``runs_folder``; with a ``--test`` placeholder
    where the data set holds none (a single CSV)."""
    test = " --test TEST.csv" if needs_test_csv else ""
    return (script_command("eval.py", "eval", runs_folder) + " "
            + " ".join(f"--model {p}" for p in paths) + test)


def kfold_summary(outcomes: list[FoldOutcome], folds: int, pooled: dict[str, Any],
                  needs_test_csv: bool = False) -> KFoldSummary:
    """The folds' values, their mean and spread, the pooled EC57 report
    (``cv_report.pooled_ec57``), and the fold models with their ensemble's eval command."""
    values = [o.result.kept_value for o in outcomes]
    paths = [o.path for o in outcomes]
    return KFoldSummary(folds=folds, completed=len(outcomes), values=values,
                        mean=float(np.mean(values)), std=float(np.std(values)),
                        best_epochs=[o.result.kept_epoch for o in outcomes], **pooled,
                        models=[str(p) for p in paths],
                        eval_command=eval_command(paths, needs_test_csv))


def mean_kept_metrics(outcomes: list[FoldOutcome]) -> dict[str, float]:
    """The mean over the folds of each metric every fold kept."""
    kept_keys = set.intersection(*(set(o.result.kept_metrics) for o in outcomes))
    return {key: float(np.mean([o.result.kept_metrics[key] for o in outcomes]))
            for key in sorted(kept_keys)}
