"""What a finished sweep hands the user: the `wandb sync` command that uploads its runs."""

from __future__ import annotations

import os

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
