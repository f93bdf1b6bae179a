"""Shared shell for the entry scripts: turn expected failures into one clear line.

A user who points the tool at a malformed CSV or a misspelled key should read what is
wrong and where, not a traceback. Unexpected errors still show their traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import warnings
from typing import Callable

# The user's error, the generic exit codes and the folder checks are the sweep engine's (the
# lower layer), defined once there; the entry scripts and the ECG modules import them here.
from .contract import EXIT_NAN  # noqa: F401
from .sweep.errors import (EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK,  # noqa: F401
                           EXIT_USAGE, StoppedEmptyHanded)
from .sweep.errors import UserError
from .sweep.files import require_folder, writable_folder  # noqa: F401
from .sweep.hints import INSTALLED_COMMAND, script_command  # noqa: F401


class DataFormatError(ValueError):
    """A data file that is not in its format (a Kaggle heartbeat CSV, a beat sidecar); the
    message names file, row, column."""


def expected_errors() -> tuple[type[BaseException], ...]:
    from .config import ConfigError

    return (UserError, ConfigError, DataFormatError, FileNotFoundError, PermissionError,
            IsADirectoryError)


def wandb_start_failed(what: str, error: Exception) -> UserError:
    """The one-line error for a W&B run that could not start (no login, no network)."""
    return UserError(f"{what}: could not start a W&B run ({type(error).__name__}: {error}). Log "
                     "in with `wandb login`, or set WANDB_MODE=offline to log to a local folder "
                     "and `wandb sync` it later")


_naming = {"installed": False}


def name_commands_as_installed() -> None:
    """Usage lines and help name the commands as the installed command's subcommands
    (``ecg-sweeps sweep``) rather than as the clone's scripts (``code/sweep.py``)."""
    _naming["installed"] = True


def prog(script: str, command: str) -> str:
    """The name a usage line gives a command: ``ecg-sweeps <command>`` through the installed
    command, ``code/<script>`` as a script of the clone."""
    return f"{INSTALLED_COMMAND} {command}" if _naming["installed"] else f"code/{script}"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=file or sys.stderr, flush=True)


def one_line_warnings() -> None:
    """Print each Python warning as one ``warning: ...`` line on stderr, without the file,
    line and source Python adds: the user reads what is wrong, not where it was noticed."""
    warnings.showwarning = _show_warning


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_signals_interrupt() -> None:
    """SIGTERM and SIGHUP end this process as Ctrl-C does (KeyboardInterrupt), so its
    cleanup runs (``finally``: stopping the programs it started, removing its work folder);
    by default they end it at once and leave those programs running."""
    from .sweep.guard import handled_stop_signals

    for sig in handled_stop_signals():
        if sig != signal.SIGINT:  # Python's own handler already raises KeyboardInterrupt
            signal.signal(sig, _interrupt)


def run_main(main: Callable[[], object]) -> int:
    """Call ``main`` and map expected errors to a one-line message and exit code 2."""
    one_line_warnings()
    try:
        result = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except StoppedEmptyHanded as e:
        print(f"stopped: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # whoever read the output stopped reading: no traceback, and none again when the
        # interpreter flushes stdout on exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except expected_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    return int(result) if isinstance(result, int) else EXIT_OK


def counted(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless ``n`` is 1: "1 fold", "4 folds"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return n


def non_negative_int(text: str) -> int:
    """argparse type: an integer of 0 or more."""
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be 0 or more")
    return n


def non_negative_float(text: str) -> float:
    """argparse type: a finite number of 0 or more (fractions allowed)."""
    x = float(text)
    if not (math.isfinite(x) and x >= 0):
        raise argparse.ArgumentTypeError(f"{text}: must be a number of 0 or more")
    return x


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0 (fractions allowed)."""
    x = float(text)
    if not (math.isfinite(x) and x > 0):
        raise argparse.ArgumentTypeError(f"{text}: must be a number above 0")
    return x
