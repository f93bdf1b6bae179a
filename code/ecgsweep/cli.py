"""Shared shell for the entry scripts: turn expected failures into one clear line.

A user who points the tool at a malformed CSV or a misspelled key should read what is
wrong and where, not a traceback. Unexpected errors still show their traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable


class UserError(Exception):
    """A problem with the user's input (file, flag, config); the message says what to fix."""


# Exit codes the offline sweep runner (and users' scripts) can rely on.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # bad input: config, data, model/data mismatch
EXIT_NAN = 3  # training diverged (NaN or infinite loss, weights or validation outputs)


def expected_errors() -> tuple[type[BaseException], ...]:
    from .config import ConfigError
    from .data.kaggle_csv import DataFormatError

    return (UserError, ConfigError, DataFormatError, FileNotFoundError, PermissionError,
            IsADirectoryError)


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
