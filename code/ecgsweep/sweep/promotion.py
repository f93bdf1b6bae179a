"""Best-model promotion on the coordinator, for runs that trained on another machine.

A run of ``code/train.py`` started with ``ECGSWEEP_PROMOTE=coordinator`` keeps its model in
its W&B run folder (``model.keras`` and its record ``model.json``; k-fold: ``fold<i>.*``)
and promotes nothing. Once the executor has brought that folder back, the coordinator offers
the model to the best-model slot under the coordinator's ``models/``, under the slot's lock,
as the run would have on one machine, unless the record says the run was stopped before it
finished (``stopped``): only a run that ends by itself is promoted. Programs that leave no
such record are left alone.
"""

from __future__ import annotations

from pathlib import Path

from .. import artifacts
from ..contract import RUN_MODEL_FILE


def run_model(run_folder: Path) -> Path | None:
    """The model an ecg-sweeps run left in its run folder with its record (k-fold: fold 1's),
    or None (a program that is not ours)."""
    for name in (RUN_MODEL_FILE, "fold1.keras"):
        if (run_folder / name).is_file() and artifacts.sidecar_path(run_folder / name).is_file():
            return run_folder / name
    return None


def promote_shipped(run_folder: Path, cwd: str | Path) -> str | None:
    """Offer a shipped-back run's model to its slot; returns the line to log (None when the
    run left no ecg-sweeps model)."""
    model = run_model(run_folder)
    if model is None:
        return None
    try:
        record = artifacts.load_record(artifacts.sidecar_path(model), ranked=False)
        config = record["config"]
        models_dir = Path(config["models_dir"])
        family = config["model"]
    except artifacts.DamagedRecord as e:
        return f"best model: not offered, {e}"
    except (OSError, KeyError, TypeError) as e:
        return f"best model: not offered, {artifacts.sidecar_path(model)} is unreadable ({e})"
    if record.get("stopped"):
        return (f"best model: not offered by the coordinator: {artifacts.sidecar_path(model)} "
                "says the run was stopped before it finished; only a run that ends by itself "
                "is promoted")
    if "kfold" in record:  # the fold files now lie in the shipped folder, not on the node
        record["kfold"]["models"] = [str(run_folder / Path(p).name)
                                     for p in record["kfold"].get("models", [])]
    if not models_dir.is_absolute():
        models_dir = Path(cwd) / models_dir
    slot = artifacts.BestModelSlot(models_dir, family)
    promoted, reason = slot.promote_if_better(model, record)
    return (f"best model {'updated' if promoted else 'kept'} by the coordinator: "
            f"{slot.model_path} ({reason})")
