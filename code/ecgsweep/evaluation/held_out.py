"""The test data a model is scored on: the held-out data of the data set it was chosen on
(or an explicit CSV), and a warning when that data set no longer holds the beats the model
was chosen on."""

from __future__ import annotations

from typing import Any, Sequence

from ..cli import UserError
from ..data.datasets import Split
from ..model_record import record_path
from .members import LoadedModel


def development_fingerprint(config: dict[str, Any], data_dir: str | None) -> str:
    """The fingerprint of the development beats the config's data set holds now, taken as a
    run takes it (its class set applied)."""
    from ..data import datasets

    source = datasets.resolve_source(config["dataset"], data_dir or config.get("data_dir", "data"))
    dev = datasets.load_development(source)
    dev = datasets.restrict_classes(dev, source.class_names, config.get("classes", "aami5"))
    return datasets.fingerprint(dev)


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
        key = (str(config["dataset"]), str(data_dir or config.get("data_dir")),
               str(config.get("classes")))
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


def test_data_for(loaded: LoadedModel, test_csv: str | None, data_dir: str | None) -> tuple[Split, str]:
    """The held-out test split the model's record points at, or an explicit CSV."""
    from ..data import datasets

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
