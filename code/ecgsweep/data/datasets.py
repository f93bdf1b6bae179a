"""Named data sets: where their files are, their classes, and their train/val/test splits.

The validation split is taken from the training file only; the test data (the Kaggle
test file, or PTBDB's fixed held-out split) is never seen by training or by a sweep.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from ..cli import UserError, script_command
from . import sidecar
from .classes import MITBIH_CLASSES, MITBIH_FILES, PTBDB_CLASSES, PTBDB_FILES, read_class_names
from .download import KAGGLE_FILES
from .kaggle_csv import csv_name_stem, load_csv

# PTBDB ships no test file; this fixed split is the held-out test set for every run and
# for eval, whatever a run's own seed is, so no sweep ever trains on it.
PTBDB_TEST_FRACTION = 0.2
PTBDB_SPLIT_SEED = 2018
SYNTHETIC_SIZES = {"train": 6000, "test": 2000}
SYNTHETIC_SEEDS = {"train": 0, "test": 1}


@dataclass
class Split:
    """Beats (n×width float32) and integer labels; with a beat sidecar (``data.sidecar``)
    also each beat's record, RR features and R-peak sample (None when unknown)."""

    X: np.ndarray
    y: np.ndarray
    records: np.ndarray | None = None
    rr: np.ndarray | None = None
    r_peak: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: np.ndarray) -> "Split":
        """The beats at ``idx`` (indexes or a mask), every per-beat field alike."""
        return Split(self.X[idx], self.y[idx],
                     None if self.records is None else self.records[idx],
                     None if self.rr is None else self.rr[idx],
                     None if self.r_peak is None else self.r_peak[idx])

    def followed_by(self, other: "Split") -> "Split":
        """These beats, then ``other``'s, every per-beat field alike (a field either lacks
        is dropped)."""
        def both(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
            return None if a is None or b is None else np.concatenate([a, b])

        return Split(np.concatenate([self.X, other.X]), np.concatenate([self.y, other.y]),
                     both(self.records, other.records), both(self.rr, other.rr),
                     both(self.r_peak, other.r_peak))


AAMI4_DROPPED = "Q"  # aami4: N S V F, the inter-patient literature's classes (Q too rare)
CLASS_SETS = {"aami5": MITBIH_CLASSES, "aami4": MITBIH_CLASSES[:4]}


def class_set_fits(source_classes: tuple[str, ...], classes: str) -> bool:
    """Whether the class set ``classes`` applies to data of ``source_classes``: aami4 drops
    the Q beats, so it needs MIT-BIH's classes; aami5 keeps every class of any data."""
    return classes != "aami4" or tuple(source_classes) == MITBIH_CLASSES


def restrict_classes(split: Split, class_names: tuple[str, ...], classes: str) -> Split:
    """``classes: aami4`` drops the Q beats (label 4) of a MIT-BIH split; aami5 keeps all."""
    if classes == "aami5" or tuple(class_names) != MITBIH_CLASSES:
        return split
    return split.take(split.y != MITBIH_CLASSES.index(AAMI4_DROPPED))


def class_names_for(source_classes: tuple[str, ...], classes: str) -> tuple[str, ...]:
    if classes == "aami4" and tuple(source_classes) == MITBIH_CLASSES:
        return CLASS_SETS["aami4"]
    return tuple(source_classes)


@dataclass
class DataSource:
    """What a data set name resolves to."""

    name: str
    class_names: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict)

    def development_files(self) -> list[str]:
        """The files a run trains and validates on: all but the held-out ``test`` file."""
        return [path for role, path in self.files.items() if role != "test"]

    def has_test_data(self) -> bool:
        """Whether ``load_test`` finds held-out data without a ``--test`` CSV: a single CSV
        given as the data set has none, nor a folder without its test file (``code/data.py
        wfdb --split train`` writes none)."""
        return (self.name in ("ptbdb", "synthetic")
                or ("test" in self.files and Path(self.files["test"]).is_file()))


def _describe_missing(path: Path, name: str) -> str:
    """A missing file: a named data set's (mitbih_test.csv, ...) with where its files come
    from, any other (a --test CSV, a data set given as a path) with where it was looked for."""
    if path.name not in KAGGLE_FILES:
        where = "" if path.is_absolute() else f" (looked for from {Path.cwd()})"
        return f"{path}: no such file{where}; check the path"
    return (f"{path}: no such file (data set '{name}'). Put the Kaggle heartbeat CSVs in "
            f"{path.parent}/ (see docs/data.md), or run `{script_command('data.py', 'data')} "
            f"synth --out {path.parent}` for synthetic data in the same format.")


def check_development_files(source: DataSource) -> None:
    """UserError naming the first file of ``source``'s development data that is missing
    (its test file may be: eval takes --test), as loading it would, before anything loads."""
    for name in source.development_files():
        if not Path(name).exists():
            raise UserError(_describe_missing(Path(name), source.name))


# The data sets known by name; any other ``dataset`` is a path (a CSV, or a folder of them).
NAMED_DATASETS = ("mitbih", "ptbdb", "synthetic")


def resolve_source(dataset: str, data_dir: str | Path = "data") -> DataSource:
    """Map a data set name (mitbih, ptbdb, synthetic) or a path to its files and classes."""
    data_dir = Path(data_dir)
    if dataset == "mitbih":
        return DataSource("mitbih", MITBIH_CLASSES,
                          {part: str(data_dir / name) for part, name in MITBIH_FILES.items()})
    if dataset == "ptbdb":
        return DataSource("ptbdb", PTBDB_CLASSES,
                          {part: str(data_dir / name) for part, name in PTBDB_FILES.items()})
    if dataset == "synthetic":
        return DataSource("synthetic", MITBIH_CLASSES)
    path = Path(dataset)
    named_csv = csv_name_stem(path) is not None
    if path.is_dir() and not named_csv:
        return resolve_source("mitbih", path)
    # Any file is read as a CSV, as the loader reads it; a missing one named as a CSV is
    # named by the loader's "no such file". Its classes: the names beside it, else its labels.
    if path.is_file() or named_csv:
        return DataSource(str(path), read_class_names(path) or (), {"train": str(path)})
    raise UserError(f"config key 'dataset': {dataset!r} is neither mitbih, ptbdb, synthetic, "
                    "a folder of Kaggle CSVs nor a CSV file (no such file or folder)")


def _load(path_str: str, name: str, n_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    path = Path(path_str)
    if not path.exists():
        raise UserError(_describe_missing(path, name))
    return load_csv(path, n_classes=n_classes)  # a folder or unreadable file: its own message


def _load_split(path_str: str, name: str, n_classes: int | None) -> Split:
    """A CSV's beats, with its beat sidecar's records and RR features when there is one."""
    X, y = _load(path_str, name, n_classes)
    beside = sidecar.read_beside(path_str, len(y))
    if beside is None:
        return Split(X, y)
    records, r_peak, rr = beside
    return Split(X, y, records, rr, r_peak)


def _ptbdb_all(source: DataSource) -> tuple[np.ndarray, np.ndarray]:
    Xn, yn = _load(source.files["normal"], "ptbdb", 2)
    Xa, ya = _load(source.files["abnormal"], "ptbdb", 2)
    for file, X, y, expected in ((source.files["normal"], Xn, yn, 0),
                                 (source.files["abnormal"], Xa, ya, 1)):
        if len(y) and not np.all(y == expected):
            row = int(np.argmax(y != expected)) + 1
            raise UserError(f"{file}, row {row}, column {X.shape[1] + 1}: label "
                            f"{int(y[row - 1])} in a file "
                            f"that should hold only class {expected} ({PTBDB_CLASSES[expected]})")
    if Xn.shape[1] != Xa.shape[1]:
        raise UserError(f"{source.files['abnormal']}: {Xa.shape[1]} samples per beat, but "
                        f"{source.files['normal']} has {Xn.shape[1]}; both need one width")
    return np.concatenate([Xn, Xa]), np.concatenate([yn, ya])


def _ptbdb_split(source: DataSource) -> tuple[Split, Split]:
    X, y = _ptbdb_all(source)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=PTBDB_TEST_FRACTION, random_state=PTBDB_SPLIT_SEED, stratify=y)
    return Split(X_tr, y_tr), Split(X_te, y_te)


def load_development(source: DataSource) -> Split:
    """All beats a run may train and validate on (never the test data)."""
    if source.name == "ptbdb":
        return _ptbdb_split(source)[0]
    if source.name == "synthetic":
        from . import synth

        return Split(*synth.make_mitbih(SYNTHETIC_SIZES["train"], SYNTHETIC_SEEDS["train"]))
    n_classes = len(source.class_names) or None
    split = _load_split(source.files["train"], source.name, n_classes)
    _check_two_classes(split, source.files["train"], source.class_names)
    if not source.class_names:  # a bare CSV path: classes are the labels it holds
        source.class_names = tuple(str(c) for c in range(int(split.y.max()) + 1))
    return split


def _check_two_classes(split: Split, path: str, class_names: tuple[str, ...]) -> None:
    """A model learns to tell classes apart: development data of one class is refused."""
    labels = np.unique(split.y)
    if len(labels) < 2:
        label = int(labels[0])
        name = f" ({class_names[label]})" if label < len(class_names) else ""
        raise UserError(f"{path}: every beat is of class {label}{name}; training needs beats "
                        "of at least 2 classes: add beats of the other classes")


def load_test(source: DataSource, test_csv: str | Path | None = None) -> Split:
    """The held-out test data of a source, or an explicit CSV. Labels are never negative on
    any path; an explicit CSV's labels above the model's classes are left to the caller,
    who can name the model (``evaluation.check_fit``)."""
    n_classes = len(source.class_names) or None
    if test_csv is not None:
        return _load_split(str(test_csv), source.name, None)
    if source.name == "ptbdb":
        return _ptbdb_split(source)[1]
    if source.name == "synthetic":
        from . import synth

        return Split(*synth.make_mitbih(SYNTHETIC_SIZES["test"], SYNTHETIC_SEEDS["test"]))
    if "test" in source.files and not source.has_test_data():
        path = Path(source.files["test"])
        where = "" if path.is_absolute() else f", looked for from {Path.cwd()}"
        raise UserError(f"{path}: no such file (data set {source.name!r}{where}); put the Kaggle "
                        f"test CSV in {path.parent}/ or pass --test CSV (a folder `data.py wfdb "
                        "--split train` wrote holds no test file)")
    if not source.has_test_data():
        raise UserError(f"data set {source.name!r} has no test file; pass --test CSV")
    return _load_split(source.files["test"], source.name, n_classes)


def fingerprint(split: Split) -> str:
    """Content hash of beats and labels: tells whether two runs saw the same data."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(split.X, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(split.y, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def _stratify_or_none(y: np.ndarray, smaller_side: int, key: str) -> np.ndarray | None:
    """``y`` when a stratified split can put every class on both sides: each class has 2
    beats and the smaller side (``smaller_side`` beats) a beat per class. Else None, with a
    warning naming the config ``key`` that sets the sizes."""
    labels, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        problem = "a class has fewer than 2 beats"
    elif smaller_side < len(labels):
        problem = (f"{key}: one side of the split gets {smaller_side} beat(s), fewer than the "
                   f"{len(labels)} classes")
    else:
        return y
    warnings.warn(f"{problem}; the split is not stratified", stacklevel=3)
    return None


def train_val_split(dev: Split, val_fraction: float, seed: int,
                    max_train_beats: int = 0) -> tuple[Split, Split]:
    """Stratified validation split of the development data; optional stratified cap on train."""
    n_val = math.ceil(val_fraction * len(dev))  # as scikit-learn rounds a fractional test_size
    n_train = len(dev) - n_val
    if n_val < 1 or n_train < 1:
        raise UserError(f"config key 'val_fraction': {val_fraction} of the {len(dev)} development "
                        f"beat(s) leaves {n_train} for training and {n_val} for validation; "
                        "each side needs a beat: give more beats or change val_fraction")
    train_idx, val_idx = train_test_split(
        np.arange(len(dev)), test_size=n_val, random_state=seed,
        stratify=_stratify_or_none(dev.y, min(n_train, n_val), "val_fraction"))
    return _cap(dev.take(train_idx), max_train_beats, seed), dev.take(val_idx)


def record_val_split(dev: Split, val_fraction: float, seed: int,
                     max_train_beats: int = 0) -> tuple[Split, Split]:
    """Whole records held out for validation (about ``val_fraction`` of the beats),
    stratified by class as far as the records allow: no patient on both sides."""
    records = np.unique(dev.records)
    if len(records) < 2:
        raise UserError(f"val_split: record holds out whole records for validation, and the "
                        f"development data has one record ({records[0]}): give data of more "
                        "records, or set val_split: random (not for a model of consecutive "
                        "beats, seq2seq, which needs more records)")
    n_splits = max(2, min(round(1 / val_fraction), len(records)))
    train_idx, val_idx = next(iter(_record_folds(dev, n_splits, seed)))
    return _cap(dev.take(train_idx), max_train_beats, seed), dev.take(val_idx)


def _record_folds(dev: Split, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedGroupKFold

    n_records = len(np.unique(dev.records))
    if folds > n_records:
        raise UserError(f"record-grouped validation: {folds} folds need at least {folds} "
                        f"records; the development data has {n_records}")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a class in fewer records than folds
        return list(splitter.split(np.zeros(len(dev)), dev.y, groups=dev.records))


@dataclass
class Fold:
    """One training/validation split of the development data (1-based ``index``)."""

    index: int
    train: Split
    val: Split
    val_index: np.ndarray | None = None  # rows of the development data in ``val`` (k-fold)


def _cap(train: Split, max_train_beats: int, seed: int) -> Split:
    if 0 < max_train_beats < len(train):
        smaller_side = min(max_train_beats, len(train) - max_train_beats)
        keep, _ = train_test_split(
            np.arange(len(train)), train_size=max_train_beats, random_state=seed,
            stratify=_stratify_or_none(train.y, smaller_side, "max_train_beats"))
        return train.take(keep)
    return train


def kfold_splits(dev: Split, folds: int, seed: int, max_train_beats: int = 0,
                 by_record: bool = False) -> list[Fold]:
    """Stratified k-fold: each beat of ``dev`` is in exactly one fold's validation split;
    ``by_record``: whole records per fold (StratifiedGroupKFold), none on both sides.

    ``max_train_beats`` caps each fold's training part (a stratified subsample, as in
    ``train_val_split``); validation folds are never cut, so together they are ``dev``.
    """
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise ValueError(f"k-fold needs folds >= 2, got {folds}")
    if folds > len(dev):
        raise UserError(f"config key 'folds': {folds} folds need at least {folds} beats; the "
                        f"development data has {len(dev)}")
    labels, counts = np.unique(dev.y, return_counts=True)
    rare = [f"label {int(c)} ({int(n)} beats)" for c, n in zip(labels, counts) if n < folds]
    if rare:
        warnings.warn(f"k-fold: fewer beats than folds ({folds}) in {', '.join(rare)}; some "
                      "validation folds lack those classes", stacklevel=2)
    if by_record:
        parts = _record_folds(dev, folds, seed)
    else:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # sklearn repeats the warning above
            parts = list(splitter.split(np.zeros(len(dev)), dev.y))
    return [Fold(i, _cap(dev.take(train_idx), max_train_beats, seed), dev.take(val_idx), val_idx)
            for i, (train_idx, val_idx) in enumerate(parts, start=1)]


def choose_val_split(val_split: str, dev: Split) -> tuple[bool, str]:
    """(hold out whole records?, one line saying which validation was used and why)."""
    known = dev.records is not None
    if val_split == "record" and not known:
        raise UserError("config key 'val_split': record needs each beat's record, from the beat "
                        "sidecar `code/data.py wfdb` writes beside the CSV (<name>.beats.csv); "
                        "this data has none: use val_split=random")
    if val_split == "random" or (val_split == "auto" and not known):
        why = ("val_split=random" if val_split == "random"
               else "val_split=auto and the data names no records (no beat sidecar)")
        return False, (f"validation: random beats ({why}); the same patients are on both sides, "
                       "so this is an intra-patient figure that flatters the model on new patients")
    why = "val_split=record" if val_split == "record" else "val_split=auto and the sidecar names them"
    return True, f"validation: whole records held out ({why}); an inter-patient figure"


def holdout_split(dev: Split, val_split: str, val_fraction: float, seed: int,
                  max_train_beats: int = 0) -> tuple[Split, Split]:
    """The one training/validation split of a run (no k-fold), as ``val_split`` chooses."""
    by_record, _ = choose_val_split(val_split, dev)
    split = record_val_split if by_record else train_val_split
    return split(dev, val_fraction, seed, max_train_beats)


def describe_records(split: Split) -> str:
    """The records of a split, for the run's log: '101 (1862 beats), 106 (...)'."""
    if split.records is None:
        return "unknown records"
    names, counts = np.unique(split.records, return_counts=True)
    return ", ".join(f"{n} ({c})" for n, c in zip(names, counts))
