"""The seam between the sweep engine and the program it runs.

The engine runs any W&B program as ``wandb agent`` would, and knows nothing of what the
program does. A program whose authors want more from the engine (checks of its parameters
before the first run, a step on the coordinator once a run that trained on another machine
is back, lines in the closing summary) hands it a ``ProgramHooks`` through the entry script
(``code/sweep.py``). ``ANY_PROGRAM`` is the default: it adds nothing, and the engine then
does exactly what it does for a W&B user's program.

``parameter`` and ``check`` apply only to configs the hooks own (``owns``): a sweep of
another program in the same checkout gets the engine's checks alone. The run hooks
(``remote_env``, ``on_shipped_run``, ``ended_by_itself``, ``stopped_by_request``,
``closing_lines``, ``describe_exit``, ``run_as``, ``progress``) serve every run of a sweep started with the
hooks, and leave alone what they do not recognise.

Where a run's program is found: the YAML's ``program:`` is a file from the directory the
runs run in (the current one), as ``wandb agent`` finds it. Only when no such file is there
does ``run_as`` get asked for the program as installed (``program_items``), so a sweep of
an installed program runs from any directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from .findings import Problem


def _takes_any(value: Any) -> str | None:
    return None


@dataclass(frozen=True)
class ParamRule:
    """What a program says of one of its parameters: the type it takes (int, float, str or
    bool), its bounds, and why it rejects a value (None: it takes it). The engine checks each
    spec against it: that every value listed is taken, and that what a distribution samples
    has the right type and stays within the bounds."""

    name: str
    kind: type
    low: float | None = None
    high: float | None = None
    reject: Callable[[Any], str | None] = _takes_any


class ProgramHooks(Protocol):
    """What the engine may ask of the program a sweep runs."""

    def owns(self, cfg: Mapping[str, Any], cwd: str | Path | None = None) -> bool:
        """Whether the sweep config runs this program (the other hooks then apply);
        ``cwd`` is the folder the runs start in, where ``program:`` is found (None: this
        process's)."""

    def parameter(self, name: str) -> ParamRule | None:
        """The program's rule for a top-level parameter; None: it does not read one so named."""

    def check(self, cfg: Mapping[str, Any]) -> list[Problem]:
        """Findings of the program's own about an owned config (unknown parameters, values
        that cannot go together, a metric it never logs), in the engine's finding type."""

    def remote_env(self) -> dict[str, str]:
        """Variables to set for a run that trains on another machine (``--ray``)."""

    def on_shipped_run(self, run_folder: Path, cwd: str) -> str | None:
        """Called on the coordinator once a finished remote run's folder is back in the store;
        returns a line for the run's log, or None."""

    def ended_by_itself(self, files_dir: Path | None) -> bool:
        """Whether the run whose W&B files folder is ``files_dir`` reached its own end, so
        a stop sent as it exited changed nothing of it (False: the program does not say)."""

    def stopped_by_request(self, summary: Mapping[str, Any] | None) -> bool:
        """Whether the run whose W&B summary is ``summary`` ended early on a stop signal
        and exited 0 with what it had (False: the program does not say). Not sent by the
        sweep, such a stop came from outside it (Ctrl-C or ``kill`` on the run)."""

    def closing_lines(self, rows: list[dict[str, Any]], cwd: str | None) -> list[str]:
        """Lines for the end of the sweep's summary (after the leaderboard)."""

    def describe_exit(self, code: int) -> str | None:
        """What the program means by exit code ``code``, for a failed run's error line; None:
        nothing beyond the engine's own reading (2: bad config or data, signals, tracebacks)."""

    def run_as(self, program: str) -> list[str] | None:
        """The command-line items ``${program}`` stands for when the YAML's ``program:`` is
        no file from the runs' directory: the program as installed, run by
        ``${interpreter}`` (``["-m", "package.module"]``); None: the file is missing."""

    def progress(self, output_tail: str) -> str | None:
        """How far a live run is, read from the end of its output, as a short text for the
        runs table's epoch column (``3/10``); None: the output does not say, and the table
        counts the rows the run logged to W&B."""


class AnyProgram:
    """Any W&B program: the hooks that add nothing."""

    def owns(self, cfg: Mapping[str, Any], cwd: str | Path | None = None) -> bool:
        return False

    def parameter(self, name: str) -> ParamRule | None:
        return None

    def check(self, cfg: Mapping[str, Any]) -> list[Problem]:
        return []

    def remote_env(self) -> dict[str, str]:
        return {}

    def on_shipped_run(self, run_folder: Path, cwd: str) -> str | None:
        return None

    def ended_by_itself(self, files_dir: Path | None) -> bool:
        return False

    def stopped_by_request(self, summary: Mapping[str, Any] | None) -> bool:
        return False

    def closing_lines(self, rows: list[dict[str, Any]], cwd: str | None) -> list[str]:
        return []

    def describe_exit(self, code: int) -> str | None:
        return None

    def run_as(self, program: str) -> list[str] | None:
        return None

    def progress(self, output_tail: str) -> str | None:
        return None


ANY_PROGRAM: ProgramHooks = AnyProgram()


def program_items(cfg: Mapping[str, Any], cwd: str | Path,
                  hooks: ProgramHooks) -> list[str] | None:
    """What ``${program}`` stands for in the runs' commands: None for the YAML's
    ``program:`` as written (a file from ``cwd``, or no program), else the hooks' installed
    form of it (``run_as``), or None when they have none (``check`` reports it missing)."""
    program = cfg.get("program")
    if not isinstance(program, str) or not program or (Path(cwd) / program).is_file():
        return None
    return hooks.run_as(program)
