"""What a finished sweep hands the user: the `wandb sync` command that uploads its runs."""

from __future__ import annotations

import os
from pathlib import Path

from .store import Store


def sync_command(store: Store) -> str:
    """The `wandb sync` command that uploads the sweep's offline runs: the store's
    ``wandb/``, and the run folders a program wrote elsewhere (``wandb.init(dir=...)``)."""
    meta = store.meta()
    folder = store.folder / "wandb"
    parts = ["wandb", "sync"]
    if meta.get("project"):
        parts += ["-p", str(meta["project"])]
    if meta.get("entity"):
        parts += ["-e", str(meta["entity"])]
    parts.append(_shown(folder))
    parts += [_shown(run) for run in runs_outside(store, folder)]
    return " ".join(parts)


def runs_outside(store: Store, folder: Path) -> list[Path]:
    """The run folders of the sweep's runs that are not in ``folder``."""
    found = [Path(row["files_dir"]).parent for row in store.runs() if row.get("files_dir")]
    inside = folder.resolve()
    return sorted({run for run in found if inside not in run.resolve().parents})


def _shown(path: Path) -> str:
    """``path`` relative to the current folder where it lies below it, else absolute."""
    try:
        shown = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if shown.startswith("..") else shown


def sync_note(store: Store) -> str | None:
    """A warning to print under the sync command when the runs carry the local sweep ID."""
    meta = store.meta()
    if meta.get("syncable"):
        return None
    return (f"note: these runs carry sweep ID {meta['sweep_id']}, which W&B's server has never "
            "seen; if `wandb sync` answers 'sweep ... not found', start sweeps meant for upload "
            "with --syncable (runs then carry group sweep-<ID> instead)")
