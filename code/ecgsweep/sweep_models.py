"""The best models a sweep of ``code/train.py`` trains for: their promotion on the
coordinator for runs that trained on another machine, and what the closing summary says of
them. Used by ``sweep_hooks.EcgProgram``.

A run started with ``ECGSWEEP_PROMOTE=coordinator`` keeps its model in its W&B run folder
(``model.keras`` and its record ``model.json``; a k-fold run also its ``fold<i>.*``, and its
``model.*`` is its final model, whose record holds the k-fold mean) and promotes nothing.
Once the executor has brought that folder back, the coordinator offers the model to the
best-model slot under the coordinator's ``models/``, under the slot's lock, as the run would
have on one machine, unless the record says the run was stopped before it finished
(``stopped``): only a run that ends by itself is promoted. Programs that leave no such
record are left alone.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

from . import artifacts
from .contract import FOLD_MODEL_FILE, RUN_MODEL_FILE, STOPPED
from .folds import eval_command
from .model_record import DamagedRecord, ModelRecord, record_path


def run_model(run_folder: Path) -> Path | None:
    """The model an ecg-sweeps run left in its run folder with its record: its own
    (``model.keras``; a k-fold run's final model), else a k-fold run's fold 1, which a run
    stopped before its final model leaves; None for a program that is not ours."""
    for name in (RUN_MODEL_FILE, FOLD_MODEL_FILE.format(index=1)):
        if (run_folder / name).is_file() and record_path(run_folder / name).is_file():
            return run_folder / name
    return None


def promote_shipped(run_folder: Path, cwd: str | Path) -> str | None:
    """Offer a shipped-back run's model to its slot; returns the line to log (None when the
    run left no ecg-sweeps model)."""
    model = run_model(run_folder)
    if model is None:
        return None
    try:
        record = ModelRecord.read(record_path(model))
        models_dir, family = Path(record.config["models_dir"]), str(record.config["model"])
    except DamagedRecord as e:
        return f"best model: not offered, {e}"
    except (OSError, KeyError, TypeError) as e:
        return f"best model: not offered, {record_path(model)} is unreadable ({e})"
    if record.stopped:
        return (f"best model: not offered by the coordinator: {record_path(model)} says the "
                "run was stopped before it finished; only a run that ends by itself is "
                "promoted")
    record = _shipped_paths(record, run_folder)
    if not models_dir.is_absolute():
        models_dir = Path(cwd) / models_dir
    slot = artifacts.BestModelSlot(models_dir, family)
    promoted, reason = slot.promote_if_better(model, record)
    return (f"best model {'updated' if promoted else 'kept'} by the coordinator: "
            f"{slot.model_path} ({reason})")


def ended_by_itself(files_dir: Path | None) -> bool:
    """Whether the run with this W&B files folder saved its own model at its end: a
    ``model.keras`` whose record does not say ``stopped`` (a k-fold run's fold models alone
    are a run cut short)."""
    model = Path(files_dir).parent / RUN_MODEL_FILE if files_dir else None
    if model is None or not model.is_file():
        return False
    try:
        return not ModelRecord.read(record_path(model)).stopped
    except (OSError, DamagedRecord):
        return False


def stopped_by_request(summary: Mapping[str, Any] | None) -> bool:
    """Whether the run whose W&B summary this is ended early on a stop request and kept
    what it had trained (its summary's ``stopped``: a run stopped in any fold, in its
    refit or after its training)."""
    return bool((summary or {}).get(STOPPED))


def _shipped_paths(record: ModelRecord, run_folder: Path) -> ModelRecord:
    """``record`` naming its run folder and fold files (``kfold.models``, an ensemble's
    ``members``) where they lie now, in the shipped folder, not on the node that trained
    them."""
    def here(paths: list[str]) -> list[str]:
        return [str(run_folder / Path(p).name) for p in paths]

    if record.run_dir is not None:
        record = dataclasses.replace(record, run_dir=str(run_folder))

    if record.kfold is not None:
        record = dataclasses.replace(record, kfold=dataclasses.replace(
            record.kfold, models=here(record.kfold.models)))
    if record.members:
        record = dataclasses.replace(record, members=here(record.members))
    return record


def _slot_of(files_dir: str | None) -> tuple[str, Path] | None:
    """(family, the best.keras of the slot) that the run with this files folder trained for,
    from the record it left beside its model (None: no readable record, not our program)."""
    if not files_dir:
        return None
    model = run_model(Path(files_dir).parent)
    if model is None:
        return None
    try:
        record = ModelRecord.read(record_path(model))
        family = str(record.config["model"])
        models_dir = Path(str(record.config["models_dir"]))
    except (OSError, DamagedRecord, KeyError, TypeError):
        return None
    return family, models_dir / family / artifacts.dataset_key(record) / artifacts.MODEL_FILE


def best_models(rows: list[dict], cwd: str | Path | None = None) -> list[dict[str, Any]]:
    """The best-model slots of the data this sweep's runs trained on (one per family and data
    set, ``models/<family>/<data-key>/best.keras``), found from the records the runs left
    beside their models; none for a program that leaves no such record. Each entry: model,
    model_path (as the runs name it, from ``cwd``, their folder; absolute when that is not
    the current folder), record (None: no slot yet), problem (a damaged record: what is
    wrong), runs_folder (None when it is the current folder) and from_this_sweep."""
    base = Path(cwd or os.getcwd())
    here = base.resolve() == Path.cwd().resolve()
    run_ids = {r["run_id"] for r in rows}
    slots = dict.fromkeys(filter(None, (_slot_of(r.get("files_dir")) for r in rows)))
    out = []
    for family, model_path in slots:
        path = base / record_path(model_path)
        record, problem = None, None
        if path.exists():
            try:
                record = ModelRecord.read(path, ranked=True)
            except (OSError, DamagedRecord) as e:
                problem = str(e)
        out.append({"model": family, "model_path": str(model_path if here else base / model_path),
                    "record": record, "needs_test_csv": record is not None
                    and not _has_test_data(record, base),
                    "problem": problem, "runs_folder": None if here else str(base),
                    "from_this_sweep": record is not None and record.run_id in run_ids})
    return out


def best_model_lines(rec: dict[str, Any]) -> list[str]:
    """What the summary says of one slot the sweep's runs trained for (``best_models``)."""
    family, path, r = rec["model"], rec["model_path"], rec["record"]
    if rec["problem"]:
        return [f"best {family} model: {rec['problem']}; the next run promoted there archives it"]
    if r is None:
        return [f"no {family} model promoted yet ({path} missing)"]
    origin = (f"from this sweep, run {r.run_id}" if rec["from_this_sweep"]
              else f"an earlier record (run {r.run_id}), not beaten by this sweep")
    # its test data is named from the runs' folder, as the model's path is
    there = rec.get("runs_folder")
    command = eval_command([Path(path)], rec["needs_test_csv"], there or ".")
    return [f"best {family} model: {path} ({origin}, {r.metric} {r.value:.4g})",
            f"next: {f'cd {there} && ' if there else ''}{command}"]


def _has_test_data(record: ModelRecord, runs_folder: Path) -> bool:
    """Whether the data set the model trained on holds a test file for eval to find (a CSV
    of one's own, or a folder converted with --split train, holds none)."""
    from .cli import UserError
    from .data.datasets import NAMED_DATASETS, resolve_source

    config = record.config
    data_dir = runs_folder / str(config.get("data_dir") or "data")
    dataset = str(config.get("dataset") or "mitbih")
    if dataset not in NAMED_DATASETS:
        dataset = str(runs_folder / dataset)
    try:
        return resolve_source(dataset, data_dir).has_test_data()
    except UserError:  # the data set is gone: the hint asks for a test file
        return False
