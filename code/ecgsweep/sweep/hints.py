"""How a "run this next" hint names a command: as the clone's script where the current
folder is a clone's root, else as the installed command's subcommand."""

from __future__ import annotations

import os

from .store import DEFAULT_STORE

# The installed console command (pyproject.toml's [project.scripts]).
INSTALLED_COMMAND = "ecg-sweeps"
SWEEP_SCRIPT = "sweep.py"


def script_command(script: str, command: str) -> str:
    """``python code/<script>`` where the current folder is a clone's root, else the
    installed ``ecg-sweeps <command>``."""
    return (f"python code/{script}" if os.path.isfile(os.path.join("code", script))
            else f"{INSTALLED_COMMAND} {command}")


def sweep_command(subcommand: str | None = None) -> str:
    """The sweep command, or one of its subcommands (``status``, ``resume``, ``check``):
    ``python code/sweep.py [sub]`` in a clone, ``ecg-sweeps <sub, else sweep>`` elsewhere."""
    base = script_command(SWEEP_SCRIPT, subcommand or "sweep")
    return f"{base} {subcommand}" if subcommand and base.startswith("python ") else base


def store_option(store_root: str | os.PathLike) -> str:
    """`` --store DIR`` for a store other than the default (``.sweeps`` here), else nothing."""
    same = os.path.abspath(store_root) == os.path.abspath(DEFAULT_STORE)
    return "" if same else f" --store {store_root}"


def continue_command(sweep_id: str, store_root: str | os.PathLike) -> str:
    """The command that continues a sweep whose runner ended (``--resume``)."""
    return f"{sweep_command()} --resume {sweep_id}{store_option(store_root)}"
