"""What a finished sweep hands the user: the `wandb sync` command and the best models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .. import artifacts
from .promotion import run_model
from .store import Store


def sync_command(store: Store) -> str:
    """The `wandb sync` command that uploads the sweep's offline runs."""
    meta = store.meta()
    folder = store.folder / "wandb"
    try:
        shown = os.path.relpath(folder)
        if shown.startswith(".."):
            shown = str(folder)
    except ValueError:
        shown = str(folder)
    parts = ["wandb", "sync"]
    if meta.get("project"):
        parts += ["-p", str(meta["project"])]
    if meta.get("entity"):
        parts += ["-e", str(meta["entity"])]
    parts.append(shown)
    return " ".join(parts)


def sync_note(store: Store) -> str | None:
    """A warning to print under the sync command when the runs carry the local sweep ID."""
    meta = store.meta()
    if meta.get("syncable"):
        return None
    return (f"note: these runs carry sweep ID {meta['sweep_id']}, which W&B's server has never "
            "seen; if `wandb sync` answers 'sweep ... not found', start sweeps meant for upload "
            "with --syncable (runs then carry group sweep-<ID> instead)")


def _slot_of(files_dir: str | None) -> tuple[str, Path] | None:
    """(family, the best.keras of the slot) that the run with this files folder trained for,
    from the record it left beside its model (None: no readable record, not our program)."""
    if not files_dir:
        return None
    model = run_model(Path(files_dir).parent)
    if model is None:
        return None
    try:
        record = artifacts.load_record(artifacts.sidecar_path(model), ranked=False)
        family = str(record["config"]["model"])
        models_dir = Path(str(record["config"]["models_dir"]))
    except (OSError, artifacts.DamagedRecord, KeyError, TypeError):
        return None
    return family, models_dir / family / artifacts.dataset_key(record) / artifacts.MODEL_FILE


def best_models(rows: list[dict], cwd: str | Path | None = None) -> list[dict[str, Any]]:
    """The best-model slots of the data this sweep's runs trained on (one per family and data
    set, ``models/<family>/<data-key>/best.keras``), found from the records the runs left
    beside their models; none for a program that leaves no such record. Each entry: model,
    model_path (as the runs name it), record (None: no slot yet), problem (a damaged
    record: what is wrong) and from_this_sweep."""
    base = Path(cwd or os.getcwd())
    run_ids = {r["run_id"] for r in rows}
    slots = dict.fromkeys(filter(None, (_slot_of(r.get("files_dir")) for r in rows)))
    out = []
    for family, model_path in slots:
        record_path = base / artifacts.sidecar_path(model_path)
        record, problem = None, None
        if record_path.exists():
            try:
                record = artifacts.load_record(record_path)
            except (OSError, artifacts.DamagedRecord) as e:
                problem = str(e)
        out.append({"model": family, "model_path": str(model_path), "record": record,
                    "problem": problem,
                    "from_this_sweep": record is not None and record.get("run_id") in run_ids})
    return out
