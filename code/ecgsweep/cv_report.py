"""The cross-validated report of a k-fold run: every development beat is predicted once,
by the fold that held it out, so the folds' summed confusion matrices give one EC57 table
(with ``val_split: record``, of records no model saw) and one per-record error table.

A k-fold run prints both when its last fold ends; ``code/eval.py --cv-run DIR`` prints
them again from the fold records a run folder keeps (``fold<i>.json`` beside
``fold<i>.keras``), without loading a model, so a finished run can be re-read or scored
under a newer rule.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import ec57
from .cli import UserError, counted
from .contract import FOLD_MODEL_FILE
from .model_record import ModelRecord, record_path


def pooled_ec57(records: list[ModelRecord], class_names: Sequence[str]) -> dict[str, Any]:
    """Prints, and returns, the EC57 table of the folds' summed validation confusion
    matrices and, when every fold kept one per record, the per-record error table."""
    cm = np.sum([np.asarray(r.val_confusion) for r in records], axis=0)
    table = ec57.class_table(cm, class_names)
    print(ec57.format_table(table, f"cross-validated over {counted(len(records), 'fold')} "
                                   "(each beat "
                                   "predicted by the fold that held it out), "
                                   f"{ec57.table_heading(class_names)}:"), flush=True)
    pooled = {"confusion": cm.tolist(), "ec57": table,
              "pooled_macro_f1": ec57.macro_f1(cm),
              "val_records": [r.val_records for r in records]}
    if all(r.val_confusion_by_record is not None for r in records):
        # every record is held out by one fold only, so the folds' dicts do not overlap
        by_record = {k: v for r in records for k, v in r.val_confusion_by_record.items()}
        pooled["record_errors"] = print_record_errors(by_record, class_names)
    return pooled


def print_record_errors(by_record: dict[str, Any],
                        class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Prints, and returns, where the S and V errors are: per held-out record."""
    rows = ec57.record_errors(by_record, class_names)
    if rows:  # none when the classes hold no S or V (PTBDB)
        print(ec57.format_record_errors(rows, "per held-out record, most errors first (beats "
                                              "of the class, found, false calls):"), flush=True)
    return rows


def read_fold_records(run_dir: str | Path, option: str = "--cv-run") -> list[ModelRecord]:
    """The fold records of a k-fold run folder, in fold order; a clear error, naming the
    ``option`` that gave the folder, when there are none or they do not belong together."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{option} {run_dir}: no such folder (give a k-fold run's folder, "
                        "e.g. wandb/offline-run-<time>-<id>)")
    # folds train in order, so a run stopped early holds folds 1..k' without gaps
    paths = list(itertools.takewhile(Path.exists, (
        record_path(run_dir / FOLD_MODEL_FILE.format(index=i)) for i in itertools.count(1))))
    if not paths:
        raise UserError(f"{option} {run_dir}: no fold<i>.json in it, so no fold of a "
                        "k-fold run finished there: a k-fold run keeps one per fold it "
                        "finishes (none when stopped in its first fold), a run of one split "
                        "none")
    records = []
    for path in paths:
        try:
            record = ModelRecord.read(path)
        except OSError as e:
            raise UserError(f"{path}: not a readable fold record ({e})") from None
        if record.val_confusion is None or not record.class_names:
            raise UserError(f"{path}: has no val_confusion or class_names; written by an "
                            "older ecg-sweeps or not a fold record")
        records.append(record)
    names = {tuple(r.class_names) for r in records}
    if len(names) > 1:
        raise UserError(f"{run_dir}: its fold records disagree on the classes {sorted(names)}")
    return records


def record_names(spec: str) -> list[str]:
    """The record names ``spec`` gives: a folder's WFDB records (those with a header and
    reference annotations), or names separated by commas."""
    from .data.records import listed_records
    from .data.wfdb_beats import find_records

    if spec.strip() and Path(spec).is_dir():  # Path("") is the current folder
        names = find_records(spec)
        if not names:
            raise UserError(f"--records {spec}: a folder without WFDB records (.hea with .atr)")
        return names
    return listed_records(spec, "or a folder of WFDB records")


def only_records(records: list[ModelRecord], names: Sequence[str]) -> list[ModelRecord]:
    """The fold records with their validation confusion matrices cut down to the held-out
    records named: a pooled table of part of the records (e.g. one database's, when the
    development records came from two)."""
    if any(r.val_confusion_by_record is None for r in records):
        raise UserError("--records: this run kept no confusion matrix per held-out record "
                        "(its folds did not hold out whole records)")
    held_out = {name for r in records for name in r.val_confusion_by_record}
    unknown = [name for name in names if name not in held_out]
    if unknown:
        raise UserError(f"--records: {', '.join(unknown)} held out by no fold of this run; "
                        f"its held-out records are {' '.join(sorted(held_out))}")
    wanted, out = set(names), []
    for r in records:
        mine = {k: v for k, v in r.val_confusion_by_record.items() if k in wanted}
        size = len(r.class_names)
        total = np.sum(list(mine.values()), axis=0) if mine else np.zeros((size, size), int)
        out.append(dataclasses.replace(r, val_confusion=np.asarray(total).tolist(),
                                       val_confusion_by_record=mine, val_records=sorted(mine)))
    print(f"the tables below pool {len(names)} of the {len(held_out)} held-out records: "
          f"{' '.join(names)}", flush=True)
    return out


def report_run_folder(run_dir: str | Path, names: Sequence[str] | None = None) -> dict[str, Any]:
    """Prints the cross-validated tables of a finished (or interrupted) k-fold run folder;
    with ``names``, of those held-out records only."""
    records = read_fold_records(run_dir)
    folds = records[0].folds or len(records)
    if len(records) < folds:
        print(f"{run_dir}: {len(records)} of {folds} folds finished; the tables below pool "
              "those only (the records of the other folds were never scored)", flush=True)
    return print_pooled(records, names)


def print_pooled(records: list[ModelRecord], names: Sequence[str] | None = None
                 ) -> dict[str, Any]:
    """Prints, and returns, the fold records' pooled tables and macro-F1, and the intervals
    over the held-out records (``record_intervals``); with ``names``, of those held-out
    records only (``only_records``)."""
    if names:
        records = only_records(records, names)
    pooled = {**pooled_ec57(records, records[0].class_names), **record_intervals(records),
              "class_names": list(records[0].class_names),
              "confusion_by_record": held_out_matrices(records)}
    print(f"pooled macro-F1 over {' '.join(records[0].class_names)}: "
          f"{pooled['pooled_macro_f1']:.3f}", flush=True)
    intervals = pooled.get("confidence_intervals")
    if intervals:
        spans = [(name, intervals["per_class"][name]["f1-score"])
                 for name in records[0].class_names]
        count = pooled["bootstrap"].get("records")  # none: one record, its beats resampled
        over = (f"the {count} held-out records (whole records resampled; every call counted"
                f"{_coarse(count)}" if count else
                "the one held-out record's beats (beats resampled; every call counted")
        print(f"F1 95% intervals over {over}): "
              + ", ".join(f"{name} {f'{f1[0]:.3f}-{f1[1]:.3f}' if f1 else '-'}"
                          for name, f1 in spans), flush=True)
    return pooled


def held_out_matrices(records: list[ModelRecord]) -> dict[str, list] | None:
    """Each held-out record's validation confusion matrix, by record name (every record is
    held out by one fold only); None when a fold kept no matrix per record."""
    if not all(r.val_confusion_by_record is not None for r in records):
        return None
    return {name: matrix for r in records for name, matrix in r.val_confusion_by_record.items()}


def print_paired(pooled: dict[str, Any], against: dict[str, Any]) -> dict[str, Any]:
    """Prints, and returns, ``pooled``'s F1 minus ``against``'s on the same held-out records
    (``evaluation.metrics.paired_differences``); UserError when they held out other records
    or kept no matrix per record."""
    from .evaluation.metrics import paired_differences

    ours, theirs = pooled.get("confusion_by_record"), against.get("confusion_by_record")
    if ours is None or theirs is None:
        raise UserError("--against: a fold record keeps no confusion matrix per held-out "
                        "record (a run of an older version); train it again to compare")
    if sorted(ours) != sorted(theirs) or pooled["class_names"] != against["class_names"]:
        raise UserError(f"--against: the runs held out other records or classes "
                        f"({' '.join(sorted(ours))} against {' '.join(sorted(theirs))}); "
                        "compare runs over the same records and classes, or pass --records "
                        "with the records both held out")
    names = sorted(ours)
    paired = paired_differences(np.array([ours[n] for n in names]),
                                np.array([theirs[n] for n in names]), pooled["class_names"])
    rows = list(paired["per_class"].items()) + [("macro-F1", paired["macro_f1"])]
    print(f"F1 of --cv-run minus F1 of --against, the same {paired['records']} held-out "
          f"records drawn for both ({paired['draws']} draws; every call counted"
          f"{_coarse(paired['records'])}): "
          + ", ".join(f"{name} {_signed(row)}" for name, row in rows), flush=True)
    return paired


def _coarse(records: int) -> str:
    """The note on intervals over few records, as eval's terminal gives it."""
    from .evaluation.metrics import coarse_interval_note

    note = coarse_interval_note(records)
    return f"; {note}" if note else ""


def _signed(row: dict[str, Any]) -> str:
    if row["difference"] is None:
        return "-"
    low, high = row["interval"] or (float("nan"), float("nan"))
    return f"{row['difference']:+.3f} [{low:+.3f}, {high:+.3f}]"


def record_intervals(records: list[ModelRecord]) -> dict[str, Any]:
    """The pooled figures' bootstrap intervals over the records the folds held out, as eval
    gives the test data's (``confidence_intervals`` and ``bootstrap``; 1,000 draws, seed 0):
    what a figure on other patients like these may be (``interval_report``). Empty when a
    fold kept no matrix per record."""
    from .evaluation.metrics import BOOTSTRAP_DRAWS, CI_LEVEL, interval_report

    matrices = held_out_matrices(records)
    if matrices is None:
        return {}
    by_record = np.array(list(matrices.values()))
    return interval_report(by_record.sum(axis=0), records[0].class_names, BOOTSTRAP_DRAWS, 0,
                           CI_LEVEL, by_record)
