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
from .store import PENDING, RUNNING


def with_progress(rows: list[dict[str, Any]], program: ProgramHooks,
                  read: Callable[[Path], str] = read_tail) -> list[dict[str, Any]]:
    """``rows`` with ``progress`` (the hook's short text) added to each run whose output log
    says how far it is, or how far it went (a k-fold run's folds, where its logged rows
    count its epochs of every fold)."""
    out = []
    for row in rows:
        if row.get("log_path") and row.get("state") != PENDING:
            said = _said(program, Path(row["log_path"]), row.get("state") == RUNNING, read)
            if said:
                row = {**row, "progress": said}
        out.append(row)
    return out


def _said(program: ProgramHooks, log: Path, live: bool,
          read: Callable[[Path], str]) -> str | None:
    """The hook's reading of the log; an ended run's is read again only when its log
    changed, since the live table asks for every run at each refresh."""
    if live:
        return program.progress(read(log))
    try:
        stat = log.stat()
    except OSError:
        return None
    state = (stat.st_size, stat.st_mtime_ns, program.progress, read)
    earlier = _ENDED.get(str(log))
    if earlier is None or earlier[0] != state:
        earlier = _ENDED[str(log)] = (state, program.progress(read(log)))
    return earlier[1]


# each ended run's reading, by its log, with the log's state it was read at
_ENDED: dict[str, tuple[tuple[Any, ...], str | None]] = {}
