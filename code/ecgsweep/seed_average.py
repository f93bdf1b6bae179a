"""The models of several seeds averaged in one file, and the record that says what it is.

Runs of one configuration that differ only in their seed hold out the same records fold by
fold (the same ``folds`` and ``split_seed``), so their fold models can be averaged fold by
fold and scored on the records each fold held out (``cv_rescore.rescore_run_folders``):
that cross-validated figure is the averaged model's own. Its file is the runs' own models
(each a k-fold ensemble) averaged by ``final_model.ensemble_model``; it predicts what the
runs' models given together to ``code/eval.py`` predict, and the steps after the model run
once on its averaged output, with the settings the runs share.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

from . import prior_shift
from .contract import RUN_MODEL_FILE
from .model_record import ModelRecord, record_path


def save_seed_average(run_dirs: Sequence[Path], seeds: Sequence[int], pooled: dict[str, Any],
                      path: Path) -> ModelRecord:
    """Saves at ``path`` the run models of ``run_dirs`` (trained with ``seeds``) averaged,
    with a record whose cross-validated figures are ``pooled``
    (``cv_rescore.rescore_run_folders`` over the same runs); returns that record."""
    from .final_model import ENSEMBLE, ensemble_model
    from .run_record import final_record

    members = [Path(d) / RUN_MODEL_FILE for d in run_dirs]
    records = [ModelRecord.read(record_path(m)) for m in members]
    path.parent.mkdir(parents=True, exist_ok=True)
    # written whole or not at all: a stop while saving leaves no half-written model
    partial = path.with_name(f".{path.stem}.partial.keras")
    ensemble_model(members).save(partial)
    os.replace(partial, path)
    first = records[0]
    kfold = dataclasses.replace(
        first.kfold, confusion=pooled["confusion"], ec57=pooled["ec57"],
        pooled_macro_f1=pooled["pooled_macro_f1"], val_records=pooled["val_records"],
        record_errors=pooled.get("record_errors"), values=[], mean=None, std=None,
        best_epochs=[], models=[], eval_command=None)
    # no single run's: the runs' identity and k-fold mean do not describe the average
    averaged = dataclasses.replace(first, kfold=kfold, value=None, run_id=None, run_dir=None,
                                   sweep_id=None, extra={**first.extra, "seeds": list(seeds)})
    record = final_record(averaged, ENSEMBLE, n_train=first.dataset.n_train,
                          best_epoch=first.best_epoch,
                          class_prior=prior_shift.mean_prior([r.class_prior for r in records]),
                          members=[str(m) for m in members])
    record.write(record_path(path))
    return record
