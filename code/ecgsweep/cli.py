"""Shared shell for the entry scripts: turn expected failures into one clear line.

A user who points the tool at a malformed CSV or a misspelled key should read what is
wrong and where, not a traceback. Unexpected errors still show their traceback.
"""

from __future__ import annotations

import argparse
import sys
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
    """argparse type: a number of 0 or more (fractions allowed)."""
    x = float(text)
    if not x >= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be 0 or more")
    return x
