"""A k-fold run scored again with other settings of the steps after the model, or several
runs of the same folds scored together, each fold's models averaged.

Premature beats called S, the S gate, the runs of S, the V templates and the per-record
class mix (``params.PER_RECORD_KEYS``) change no weight, so they can be tried on a finished run
without training it again: each fold's saved model predicts the records it held out, the
steps run with the given settings, and the folds' confusion matrices are pooled as the run
pooled them (``cv_report``). ``code/eval.py --cv-run DIR --set KEY=VALUE`` runs it. The figure is a
cross-validated one of the same records the settings are chosen on, so it flatters as the
run's own table does.

Runs trained with other seeds on the same folds (the same ``folds`` and ``split_seed``)
score together as the models of one fold averaged (``code/eval.py --cv-run A --cv-run B``):
the cross-validated figure of the seeds' models averaged, which ``code/protocol.py`` reports
for its seeds.

The held-out records can also be read from another conversion of the same patients
(``code/eval.py --cv-run RUN --held-out-from DIR``: for instance their second lead, a proxy
of a database recorded on other leads that needs no record of another database).
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


def rescore_run_folders(run_dirs: Sequence[str | Path], settings: dict[str, Any],
                        data_dir: str | None = None, batch_size: int = 1024,
                        names: Sequence[str] | None = None,
                        held_out_from: str | None = None) -> dict[str, Any]:
    """Prints, and returns, the pooled EC57 and per-record tables of the k-fold runs in
    ``run_dirs`` with ``settings`` for the steps after the model. With several runs (the same
    folds, other seeds) each fold's models are averaged, as ``code/eval.py`` averages models
    given together; ``data_dir`` is where their data set is now (default: where they were
    trained); with ``names``, of those held-out records only. With ``held_out_from``, a
    folder of the same records converted otherwise (another lead), each fold's models score
    the records it held out as read from there (``other_recordings``)."""
    from .evaluation.held_out import development_data
    from .evaluation.members import changed_settings, load_model, with_settings

    run_dirs = [Path(d) for d in run_dirs]
    runs = [read_fold_records(d) for d in run_dirs]
    for run_dir, records in zip(run_dirs, runs):
        check_held_out_records(records, run_dir)
    check_same_folds(runs, run_dirs)
    if held_out_from is None:
        _, dev = development_data(runs[0][0].config, data_dir)
        for run_dir, records in zip(run_dirs, runs):
            check_same_data(records[0], dev, run_dir, data_dir)
        folds = list(enumerate(runs[0], start=1))
    else:
        _, dev = development_data(runs[0][0].config, held_out_from)
        folds = other_recordings(runs[0], dev, held_out_from)
    rescored = []
    for index, record in folds:
        loaded = [load_model(d / FOLD_MODEL_FILE.format(index=index)) for d in run_dirs]
        members = [with_settings(member, settings) for member in loaded]
        if not rescored:  # once, before the first fold it scores
            whose = (f"{run_dirs[0]}: its {len(runs[0])} fold models"
                     if len(run_dirs) == 1 else
                     f"{len(run_dirs)} runs ({', '.join(map(str, run_dirs))}): each fold's "
                     f"{len(run_dirs)} models averaged,")
            print(f"{whose} scored again on the records they held out, after the model: "
                  f"{changed_settings(loaded[0], settings)}", flush=True)
        rescored.append(fold_scored(members, record, dev, batch_size))
    return {**print_pooled(rescored, names), "after_model_settings": dict(settings),
            "runs": [str(d) for d in run_dirs]}


def fold_scored(members: Sequence[Any], record: ModelRecord, dev: datasets.Split,
                batch_size: int) -> ModelRecord:
    """``record`` with its validation confusion matrices (total, per record) made again, as
    the run made them, from ``members`` (their probabilities averaged, then the steps after
    the model) on the records the fold held out."""
    from sklearn.metrics import confusion_matrix

    from . import ec57
    from .evaluation.members import predict_proba

    val = dev.take(np.isin(dev.records.astype(str), record.val_records))
    pred = predict_proba(members, val, batch_size=batch_size).argmax(axis=1)
    labels = list(range(len(record.class_names)))
    return dataclasses.replace(
        record, config=members[0].record.config,
        val_confusion=confusion_matrix(val.y, pred, labels=labels).tolist(),
        val_confusion_by_record=ec57.confusion_by_record(val.y, pred, val.records,
                                                         len(labels)))


def other_recordings(records: list[ModelRecord], dev: datasets.Split,
                     where: str) -> list[tuple[int, ModelRecord]]:
    """The folds (number, record) that held out a record of ``dev``, the same patients'
    records converted otherwise (another lead) in ``where``: its every record must be one a
    fold held out, since any other trained the models. Prints the held-out records it lacks."""
    if dev.records is None:
        raise UserError(f"--held-out-from {where}: its data has no beat sidecar, so its beats' "
                        "records are unknown; convert the records with `code/data.py wfdb`")
    present = set(np.unique(dev.records.astype(str)))
    held_out = {str(name) for r in records for name in r.val_records}
    foreign = sorted(present - held_out)
    if foreign:  # every development record is held out by one fold
        raise UserError(f"--held-out-from {where}: records {' '.join(foreign)} are not the "
                        "run's development records, which its folds held out; it takes those "
                        "records converted otherwise (e.g. another lead). To score the run's "
                        "model on other records: --model MODEL --test CSV")
    missing = sorted(held_out - present)
    if missing:
        print(f"--held-out-from {where}: held-out records not there, left out: "
              f"{' '.join(missing)}", flush=True)
    return [(index, r) for index, r in enumerate(records, start=1)
            if present & {str(name) for name in r.val_records}]


def check_same_folds(runs: list[list[ModelRecord]], run_dirs: list[Path]) -> None:
    """Runs scored together must hold out the same records fold by fold (the same
    ``folds`` and ``split_seed``; their seeds may differ) and have the same classes."""
    first = runs[0]
    for run_dir, records in zip(run_dirs[1:], runs[1:]):
        if records[0].class_names != first[0].class_names:
            raise UserError(f"--cv-run {run_dir}: its classes ({' '.join(records[0].class_names)}) "
                            f"are not those of {run_dirs[0]} "
                            f"({' '.join(first[0].class_names)}); only runs of the same classes "
                            "can be averaged")
        folds = [sorted(map(str, r.val_records)) for r in records]
        expected = [sorted(map(str, r.val_records)) for r in first]
        if folds != expected:
            differ = next((i for i, (a, b) in enumerate(zip(folds, expected), start=1) if a != b),
                          min(len(folds), len(expected)) + 1)
            raise UserError(f"--cv-run {run_dir}: its fold {differ} held out other records than "
                            f"{run_dirs[0]}'s; only runs with the same folds (the same folds "
                            "and split_seed, any seed) can be averaged fold by fold")


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
