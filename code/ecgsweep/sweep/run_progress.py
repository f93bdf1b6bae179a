"""How far each live run is, from its own output, for the runs table.

A run's W&B record reaches the store only as often as the run flushes it (about every 15 s
for ``wandb`` offline), so the table would show a run that is three epochs in at epoch 0.
Its output log is written as it prints: the program's ``progress`` hook reads the end of
it. A program whose hooks say nothing (any W&B user's) keeps the count of logged rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .failures import read_tail
from .program import ProgramHooks
from .store import RUNNING


def with_progress(rows: list[dict[str, Any]], program: ProgramHooks,
                  read: Callable[[Path], str] = read_tail) -> list[dict[str, Any]]:
    """``rows`` with ``progress`` (the hook's short text) added to each running run whose
    output log says how far it is."""
    out = []
    for row in rows:
        if row.get("state") == RUNNING and row.get("log_path"):
            said = program.progress(read(Path(row["log_path"])))
            if said:
                row = {**row, "progress": said}
        out.append(row)
    return out
