"""Shared shell for the entry scripts: turn expected failures into one clear line.

A user who points the tool at a malformed CSV or a misspelled key should read what is
wrong and where, not a traceback. Unexpected errors still show their traceback.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path
from typing import Callable

from .contract import EXIT_ERROR, EXIT_NAN, EXIT_OK, EXIT_USAGE  # noqa: F401 (re-exported)


class UserError(Exception):
    """A problem with the user's input (file, flag, config); the message says what to fix."""


def expected_errors() -> tuple[type[BaseException], ...]:
    from .config import ConfigError
    from .data.kaggle_csv import DataFormatError

    return (UserError, ConfigError, DataFormatError, FileNotFoundError, PermissionError,
            IsADirectoryError)


def wandb_start_failed(what: str, error: Exception) -> UserError:
    """The one-line error for a W&B run that could not start (no login, no network)."""
    return UserError(f"{what}: could not start a W&B run ({type(error).__name__}: {error}). Log "
                     "in with `wandb login`, or set WANDB_MODE=offline to log to a local folder "
                     "and `wandb sync` it later")


def run_main(main: Callable[[], object]) -> int:
    """Call ``main`` and map expected errors to a one-line message and exit code 2."""
    try:
        result = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except expected_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    return int(result) if isinstance(result, int) else EXIT_OK


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


def require_folder(path: str | Path, flag: str) -> Path:
    """The first of ``path`` and its parents that exists; UserError naming ``flag`` when that
    is a file, so that ``path`` can never be a folder."""
    folder = existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == folder else f": {existing}"
        raise UserError(f"{flag} {folder}{where} is a file, not a folder; give a folder (it is "
                        "made if missing)")
    return existing


def writable_folder(path: str | Path, flag: str) -> Path:
    """``path`` as a Path when files can be written there; UserError naming ``flag``
    otherwise. Checked before the work whose results go there, so that a bad folder costs
    nothing; nothing is made here."""
    existing = require_folder(path, flag)
    try:
        with tempfile.TemporaryFile(dir=existing):  # the one sure test: write a file there
            pass
    except OSError as e:
        raise UserError(f"{flag} {path}: cannot write in {existing} ({e.strerror or e}); "
                        "give a folder you can write") from e
    return Path(path)
