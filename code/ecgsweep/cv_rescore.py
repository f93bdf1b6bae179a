"""A k-fold run scored again with other settings of the steps after the model.

Premature beats called S, the S gate, the runs of S, the V templates and the per-record
class mix (``params.PER_RECORD_KEYS``) change no weight, so they can be tried on a finished run
without training it again: each fold's saved model predicts the records it held out, the
steps run with the given settings, and the folds' confusion matrices are pooled as the run
pooled them (``cv_report``). ``code/eval.py --cv-run DIR --set KEY=VALUE`` runs it. The figure is a
cross-validated one of the same records the settings are chosen on, so it flatters as the
run's own table does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .cli import UserError
from .contract import FOLD_MODEL_FILE
from .cv_report import print_pooled, read_fold_records
from .data import datasets
from .model_record import ModelRecord


def rescore_run_folder(run_dir: str | Path, settings: dict[str, Any],
                       data_dir: str | None = None, batch_size: int = 1024,
                       names: Sequence[str] | None = None) -> dict[str, Any]:
    """Prints, and returns, the pooled EC57 and per-record tables of the k-fold run in
    ``run_dir`` with ``settings`` for the steps after the model; ``data_dir`` is where its
    data set is now (default: where it was trained); with ``names``, of those held-out
    records only."""
    from .evaluation.held_out import development_data
    from .evaluation.members import changed_settings, load_model, with_settings

    run_dir = Path(run_dir)
    records = read_fold_records(run_dir)
    check_held_out_records(records, run_dir)
    _, dev = development_data(records[0].config, data_dir)
    check_same_data(records[0], dev, run_dir, data_dir)
    rescored = []
    for index, record in enumerate(records, start=1):
        member = load_model(run_dir / FOLD_MODEL_FILE.format(index=index))
        if index == 1:
            print(f"{run_dir}: its {len(records)} fold models scored again on the records "
                  f"they held out, after the model: {changed_settings(member, settings)}",
                  flush=True)
        rescored.append(fold_scored(with_settings(member, settings), record, dev, batch_size))
    return {**print_pooled(rescored, names), "after_model_settings": dict(settings)}


def fold_scored(member, record: ModelRecord, dev: datasets.Split,
                batch_size: int) -> ModelRecord:
    """``record`` with its validation confusion matrices (total, per record) made again,
    as the run made them, from ``member`` on the records the fold held out."""
    from .fold_training import validation_confusion

    val = dev.take(np.isin(dev.records.astype(str), record.val_records))
    config = member.record.config
    confusion = validation_confusion(member.model, val, config, len(record.class_names),
                                     record.class_prior, batch_size)
    return dataclasses.replace(record, config=config, val_confusion=confusion.total.tolist(),
                               val_confusion_by_record=confusion.by_record)


def check_held_out_records(records: list[ModelRecord], run_dir: Path) -> None:
    """Only folds that held out whole records can be scored again: their beats are found
    by record."""
    if any(not r.val_records for r in records):
        raise UserError(f"--cv-run {run_dir} --set: its folds did not hold out whole records "
                        "(val_split: record), so their validation beats cannot be found "
                        "again; only such a run can be scored again")


def check_same_data(record: ModelRecord, dev: datasets.Split, run_dir: Path,
                    data_dir: str | None) -> None:
    """The data set must still hold the very beats the run trained and validated on."""
    if dev.records is None:
        raise UserError(f"--cv-run {run_dir} --set: its data set has no beat sidecar now, so "
                        "the records its folds held out cannot be found")
    now = datasets.fingerprint(dev)
    if record.dataset.fingerprint and now != record.dataset.fingerprint:
        where = data_dir or record.config.get("data_dir", "data")
        raise UserError(f"--cv-run {run_dir} --set: the data set in {where} holds other beats "
                        f"now (fingerprint {now}) than the run was trained on "
                        f"({record.dataset.fingerprint}); give the run's data with --data-dir")
