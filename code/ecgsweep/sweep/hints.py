"""How a "run this next" hint names a command: as the clone's script where the current
folder is a clone's root, else as the installed command's subcommand."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .store import DEFAULT_STORE

# The installed console command (pyproject.toml's [project.scripts]).
INSTALLED_COMMAND = "ecg-sweeps"
SWEEP_SCRIPT = "sweep.py"


# The clone's scripts' folder, when this package runs from a clone (``code/ecgsweep/...``).
CLONE_CODE = Path(__file__).resolve().parents[2]


def script_command(script: str, command: str, runs_folder: str | os.PathLike = ".") -> str:
    """How to run a job from ``runs_folder`` (default: the current one): ``python
    code/<script>`` where it is a clone's root; else the installed ``ecg-sweeps <command>``
    when that is on PATH, or as this process was started when it is that command; else this
    clone's script by its full path, run by this interpreter (which has the packages)."""
    if os.path.isfile(os.path.join(runs_folder, "code", script)):
        return f"python code/{script}"
    if shutil.which(INSTALLED_COMMAND):
        return f"{INSTALLED_COMMAND} {command}"
    if os.path.basename(sys.argv[0]) == INSTALLED_COMMAND:  # started by its path
        return f"{os.path.abspath(sys.argv[0])} {command}"
    if not (CLONE_CODE / script).is_file():
        return f"{INSTALLED_COMMAND} {command}"
    return f"{sys.executable} {CLONE_CODE / script}"


def another_runs_folder(runs_folder: str | os.PathLike | None,
                        here: str | os.PathLike = ".") -> bool:
    """Whether a sweep's runs ran in another folder than ``here`` that is still there: their
    relative paths (data, models) are found from it, so a command on their files runs
    there. A folder gone (the store moved) leaves nothing to send the user to."""
    return (runs_folder is not None and os.path.isdir(runs_folder)
            and os.path.realpath(runs_folder) != os.path.realpath(here))


def sweep_command(subcommand: str | None = None, runs_folder: str | os.PathLike = ".") -> str:
    """The sweep command, or one of its subcommands (``status``, ``resume``, ``check``), as
    ``script_command`` names it: the script with the subcommand after it, or ``ecg-sweeps
    <sub, else sweep>``."""
    base = script_command(SWEEP_SCRIPT, subcommand or "sweep", runs_folder)
    # the script, by its short or full path, takes the subcommand after it
    return f"{base} {subcommand}" if subcommand and base.endswith(SWEEP_SCRIPT) else base


def store_option(store_root: str | os.PathLike) -> str:
    """`` --store DIR`` for a store other than the default (``.sweeps`` here), else nothing."""
    same = os.path.abspath(store_root) == os.path.abspath(DEFAULT_STORE)
    return "" if same else f" --store {store_root}"


def continue_command(sweep_id: str, store_root: str | os.PathLike,
                     runs_folder: str | os.PathLike | None = None) -> str:
    """The command that continues a sweep whose runner ended (``--resume``): from the folder
    its runs ran in (``runs_folder``; ``cd`` there first when it is not this one)."""
    here = runs_folder is None or os.path.realpath(runs_folder) == os.path.realpath(".")
    if here:
        return f"{sweep_command()} --resume {sweep_id}{store_option(store_root)}"
    return (f"cd {runs_folder} && {sweep_command(runs_folder=runs_folder)} --resume {sweep_id} "
            f"--store {os.path.abspath(store_root)}")
