"""The test data a model is scored on: the held-out data of the data set it was chosen on
(or an explicit CSV), a warning when that data set no longer holds the beats the model
was chosen on, and one when the test data repeats the beats it was trained on."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..cli import UserError
from ..data.datasets import DataSource, Split
from ..model_record import record_path
from .members import LoadedModel, numbered_class_names

# A test set that repeats at least this share of its beats from the development data is
# not held out; a few identical beats (flat or clipped rows) can happen by chance.
OVERLAP_WARN_SHARE = 0.01


def development_data(config: dict[str, Any], data_dir: str | None) -> tuple[DataSource, Split]:
    """The config's data set and the development beats it holds now, taken as a run takes
    them (its class set applied)."""
    from ..data import datasets

    source = datasets.resolve_source(config["dataset"], data_dir or config.get("data_dir", "data"))
    dev = datasets.load_development(source)
    dev = datasets.restrict_classes(dev, source.class_names, config.get("classes", "aami5"))
    return source, dev


def development_fingerprint(config: dict[str, Any], data_dir: str | None) -> str:
    """The fingerprint of the development beats the config's data set holds now."""
    from ..data import datasets

    return datasets.fingerprint(development_data(config, data_dir)[1])


def data_set_key(config: dict[str, Any], data_dir: str | None) -> tuple[str, str, str]:
    """What names the development data of a model's config (an ensemble's folds share it):
    its data set, folder (``data_dir`` given to eval wins) and classes."""
    return (str(config["dataset"]), str(data_dir or config.get("data_dir")),
            str(config.get("classes")))


def changed_data(members: Sequence[LoadedModel], data_dir: str | None) -> list[str]:
    """One warning per model whose record's data set no longer holds the development beats
    the model was chosen on (regenerated or replaced since): the test file beside them may
    then not be held out from them. Models without a recorded fingerprint are not checked."""
    from ..cli import expected_errors

    now: dict[tuple[str, str, str], str] = {}  # an ensemble's folds share their data set
    warnings = []
    for m in members:
        config = m.record.config
        recorded = m.record.dataset.fingerprint
        if not recorded or not config.get("dataset"):
            continue
        key = data_set_key(config, data_dir)
        try:
            if key not in now:
                now[key] = development_fingerprint(config, data_dir)
        except expected_errors() as e:
            warnings.append(f"{m.path} was chosen on development data with fingerprint "
                            f"{recorded}, which cannot be read now ({e}); the test data may not "
                            "be held out from it")
            continue
        if now[key] != recorded:
            warnings.append(
                f"{m.path} was chosen on development data with fingerprint {recorded}, but its "
                f"data set holds other data now (fingerprint {now[key]}: regenerated or "
                "replaced since?); the test data beside it may overlap the beats the model "
                "trained on, so these may not be held-out scores. Retrain on the current data, "
                "or pass --test CSV to score a file you know is held out")
    return warnings


def beat_hashes(X: np.ndarray) -> np.ndarray:
    """One 64-bit hash per beat (its float32 samples), to find identical beats in two sets;
    a linear pass, about a tenth of a second for 100,000 beats."""
    rows = np.ascontiguousarray(X, dtype=np.float32)
    return np.fromiter((hash(row.tobytes()) for row in rows), dtype=np.int64, count=len(rows))


def shared_beats(test: Split, dev: Split) -> int:
    """How many beats of ``test`` are identical to a beat of ``dev`` (0 for other widths)."""
    if len(test) == 0 or len(dev) == 0 or test.X.shape[1] != dev.X.shape[1]:
        return 0
    return int(np.isin(beat_hashes(test.X), beat_hashes(dev.X)).sum())


def overlap_warnings(members: Sequence[LoadedModel], split: Split, where: str,
                     test_csv: str | None, data_dir: str | None) -> list[str]:
    """One warning per model whose training data the test data repeats: the very file it
    was trained on, the very beats (the record's fingerprint), or at least
    ``OVERLAP_WARN_SHARE`` of its beats identical to development beats. Data that cannot be
    read now is not checked."""
    from ..cli import expected_errors
    from ..data import datasets

    test_print = datasets.fingerprint(split)
    loaded: dict[tuple[str, str, str], tuple[DataSource, Split]] = {}  # an ensemble's folds
    warnings = []
    for m in members:
        config = m.record.config
        if not config.get("dataset"):
            continue
        key = data_set_key(config, data_dir)
        try:
            if key not in loaded:
                loaded[key] = development_data(config, data_dir)
        except expected_errors():
            continue
        warning = _overlap(m, *loaded[key], split, where, test_csv, test_print)
        if warning:
            warnings.append(warning)
    return warnings


def _overlap(m: LoadedModel, source: DataSource, dev: Split, split: Split, where: str,
             test_csv: str | None, test_print: str) -> str | None:
    """The one warning for model ``m`` (see ``overlap_warnings``), or None."""
    not_held_out = "these are not held-out scores; pass a test file the model never saw"
    trained_files = [Path(f).resolve() for f in source.development_files() if Path(f).is_file()]
    if test_csv and Path(test_csv).resolve() in trained_files:
        return (f"{where} is a file {m.path} was trained on (data set {source.name}): "
                f"{not_held_out}")
    if test_print == m.record.dataset.fingerprint:
        return (f"{where} holds the very beats {m.path} was trained and validated on "
                f"(fingerprint {test_print}): {not_held_out}")
    shared = shared_beats(split, dev)
    if len(split) and shared / len(split) >= OVERLAP_WARN_SHARE:
        return (f"{shared} of the {len(split)} beats of {where} ({shared / len(split):.1%}) are "
                f"identical to beats {m.path} was trained or validated on (data set "
                f"{source.name}): {not_held_out}")
    return None


def layout_warnings(members: Sequence[LoadedModel], test_csv: str | None) -> list[str]:
    """One warning per training folder whose conversion laid rows out otherwise (window
    start, rate, width: ``wfdb_beats.ROW_LAYOUT_KEYS``) than the conversion that wrote
    ``test_csv``: the model would score rows unlike those it learned. Data without a
    ``split.json`` on either side is not checked."""
    from ..data import wfdb_beats

    test = wfdb_beats.conversion_method(Path(test_csv).parent) if test_csv else None
    if test is None:
        return []
    models_by_folder: dict[Path, list[str]] = {}
    for m in members:
        train = m.record.dataset.files.get("train")
        if train:
            models_by_folder.setdefault(Path(train).parent, []).append(str(m.path))
    warnings = []
    for folder, models in models_by_folder.items():
        trained = wfdb_beats.conversion_method(folder)
        differences = wfdb_beats.layout_differences(trained, test) if trained else []
        if differences:
            warnings.append(
                f"{test_csv} was converted with other row settings than {', '.join(models)} "
                f"trained on ({folder}): {'; '.join(differences)} (training / test); "
                "convert the test records with the same code/data.py wfdb options")
    return warnings


def check_test_classes(loaded: LoadedModel, test_csv: str) -> None:
    """A test CSV whose labels mean other classes than the model's (its class-names file
    says so, or it is a Kaggle file of another data set) is refused. A model with no record
    of its classes' names is not checked."""
    from ..data.classes import file_class_names
    from ..data.datasets import class_names_for

    names = file_class_names(test_csv)
    if names is None or loaded.class_names == numbered_class_names(len(loaded.class_names)):
        return
    names = class_names_for(names, str(loaded.record.config.get("classes", "aami5")))
    if list(names) != loaded.class_names:
        raise UserError(f"{test_csv}: its labels mean the classes {', '.join(names)}, but "
                        f"{loaded.path} predicts {', '.join(loaded.class_names)}; score it on "
                        "data with its classes")


def test_data_for(loaded: LoadedModel, test_csv: str | None, data_dir: str | None) -> tuple[Split, str]:
    """The held-out test split the model's record points at, or an explicit CSV."""
    from ..data import datasets

    if test_csv is not None:
        check_test_classes(loaded, test_csv)

    config = loaded.record.config
    dataset = config.get("dataset")
    if dataset is None and test_csv is None:
        raise UserError(f"{loaded.path} has no record of its data set ({record_path(loaded.path)} "
                        "missing); pass --test CSV")
    source = datasets.resolve_source(dataset or str(test_csv),
                                     data_dir or config.get("data_dir", "data"))
    classes = config.get("classes", "aami5")
    split = datasets.load_test(source, test_csv)
    split = datasets.restrict_classes(split, source.class_names, classes)
    where = str(test_csv) if test_csv else (f"the {source.name} test data"
                                            + (f" ({source.files.get('test')})"
                                               if source.files.get("test") else ""))
    return split, where
