"""The class names of each data set, in label order: label i is name i.

The named data sets have theirs here. A CSV of one's own names its classes in a small JSON
file beside it, ``<name>.classes.json``: a list of names in label order, e.g.
``["normal", "afib", "other"]`` for labels 0, 1, 2. Without one, the classes are the
labels' numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..cli import DataFormatError
from .kaggle_csv import csv_stem

# AAMI EC57 superclasses, labels 0..4 as in the Kaggle MIT-BIH CSVs.
MITBIH_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
# The PTB Diagnostic ECG Database's two files, labels 0..1.
PTBDB_CLASSES: tuple[str, ...] = ("normal", "abnormal")
CLASSES_SUFFIX = ".classes.json"
# The Kaggle "heartbeat" files of each data set, by part, and the classes their labels mean.
MITBIH_FILES: dict[str, str] = {"train": "mitbih_train.csv", "test": "mitbih_test.csv"}
PTBDB_FILES: dict[str, str] = {"normal": "ptbdb_normal.csv", "abnormal": "ptbdb_abnormal.csv"}
KAGGLE_FILE_CLASSES: dict[str, tuple[str, ...]] = {
    **{name: MITBIH_CLASSES for name in MITBIH_FILES.values()},
    **{name: PTBDB_CLASSES for name in PTBDB_FILES.values()}}


def classes_path(csv: str | os.PathLike) -> Path:
    """The class-names file of a CSV: ``beats.csv`` and ``beats.csv.gz`` ->
    ``beats.classes.json``."""
    csv = Path(csv)
    return csv.with_name(csv_stem(csv) + CLASSES_SUFFIX)


def read_class_names(csv: str | os.PathLike) -> tuple[str, ...] | None:
    """The class names beside ``csv`` (None when it has no class-names file); a file that is
    not a list of two or more distinct, non-empty names is an error naming it."""
    path = classes_path(csv)
    if not path.is_file():
        return None
    try:
        names = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataFormatError(f"{path}: not a JSON list of class names ({e})") from None
    problem = _names_problem(names)
    if problem:
        raise DataFormatError(f"{path}: {problem}; write the class names in label order, e.g. "
                              '["normal", "afib"] for labels 0 and 1')
    return tuple(name.strip() for name in names)


def file_class_names(csv: str | os.PathLike) -> tuple[str, ...] | None:
    """The classes a CSV's labels mean: its class-names file's, else (a Kaggle file, by its
    name) the Kaggle data set's; None when neither says."""
    return read_class_names(csv) or KAGGLE_FILE_CLASSES.get(Path(csv).name)


def _names_problem(names: object) -> str | None:
    if not isinstance(names, list):
        return f"holds a {type(names).__name__}, not a list"
    if len(names) < 2:
        return f"names {len(names)} class{'es' if len(names) != 1 else ''}, at least 2 needed"
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            return f"entry {i} ({json.dumps(name)}) is not a class name"
    stripped = [name.strip() for name in names]
    repeated = sorted({name for name in stripped if stripped.count(name) > 1})
    if repeated:
        return f"names {', '.join(repeated)} more than once"
    return None
