"""What a finished sweep hands the user: the `wandb sync` command and the best models."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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


def _family_entry(model: str, model_path: str, record: dict | None, run_ids: set) -> dict:
    rid = (record or {}).get("run_id")
    return {"model": model, "model_path": model_path, "exists": record is not None,
            "record": record, "from_this_sweep": bool(rid) and rid in run_ids}


def _param_value(params: dict, name: str, default: str) -> str:
    spec = params.get(name)
    return str(spec.get("value", default)) if isinstance(spec, dict) else default


def best_models(rows: list[dict], cwd: str | Path | None = None) -> list[dict[str, Any]]:
    """For each model family this sweep trained: the best model of each data set its runs
    trained on (``models/<family>/<data-key>/best.keras``), else the family's current link."""
    base = Path(cwd or os.getcwd())
    families: dict[tuple[str, str], None] = {}
    for r in rows:
        p = r.get("params") or {}
        families[(_param_value(p, "models_dir", "models"), _param_value(p, "model", "cnn"))] = None
    run_ids = {r["run_id"] for r in rows}
    out = []
    for models_dir, model in families:
        ours = []
        for record_path in sorted((base / models_dir / model).glob("*/best.json")):
            try:
                record = json.loads(record_path.read_text())
            except (OSError, ValueError):
                continue
            if record.get("run_id") in run_ids:
                ours.append(_family_entry(model, f"{models_dir}/{model}/{record_path.parent.name}"
                                                 "/best.keras", record, run_ids))
        if not ours:
            try:
                record = json.loads((base / models_dir / model / "best.json").read_text())
            except (OSError, ValueError):
                record = None
            ours = [_family_entry(model, f"{models_dir}/{model}/best.keras", record, run_ids)]
        out.extend(ours)
    return out
