"""Why a run failed, in one line, and when failures should stop the sweep."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path
from typing import Callable

from .errors import EXIT_INTERRUPTED, EXIT_USAGE

OUTPUT_TAIL_LINES = 40
OUTPUT_TAIL_CHARS = 4000
SAME_FAILURES_TO_STOP = 3


def _no_meaning(code: int) -> str | None:
    return None


# How a program ends when Ctrl-C or SIGTERM stops it: its own interrupted exit, the shell's
# 128 + SIGTERM, or the signal itself.
STOPPED_EXITS = (EXIT_INTERRUPTED, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM)


def stopped_from_outside(rc: int) -> bool:
    """Whether exit code ``rc`` is that of a program stopped by a signal, not of one that
    failed (a stop the sweep did not send is someone's Ctrl-C or kill)."""
    return rc in STOPPED_EXITS


def classify_exit(rc: int, tail: str,
                  describe_exit: Callable[[int], str | None] = _no_meaning) -> str:
    """One line saying why a run failed, from its exit code and the end of its output;
    ``describe_exit`` says what the program means by its own codes
    (``ProgramHooks.describe_exit``)."""
    lines = program_lines(tail)
    err_lines = [ln for ln in lines if ln.lower().startswith("error:")]
    last_err = err_lines[-1] if err_lines else None
    last = lines[-1] if lines else ""
    if rc in (-9, 137):
        return "killed by SIGKILL (exit %d): out of memory?" % rc
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return f"killed by {name} (exit {rc})"
    meaning = describe_exit(rc)
    if meaning:
        return f"{meaning} (exit {rc})" + (f": {last_err}" if last_err else "")
    if rc == EXIT_USAGE:
        return f"bad config or data (exit {rc}): {last_err or last}"
    if rc == EXIT_INTERRUPTED:
        stopped = [ln for ln in lines if ln.lower().startswith("stopped:")]
        return f"interrupted (exit {rc}): {stopped[-1] if stopped else last}"
    oom = [ln for ln in program_lines(tail, keep_wandb=True) if "out of memory" in ln.lower()
           or "resourceexhausted" in ln.lower()]
    if oom:
        return f"out of memory (exit {rc}): {oom[-1][:300]}"
    tb = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", ln)]
    return f"crashed (exit {rc}): {(tb[-1] if tb else last_err or last)[:300]}"


# Terminal colour codes, and the lines wandb itself prints (its footer ends a failed run's
# output with "wandb: Find logs at: <the run's folder>", which names no error and differs
# from run to run).
ANSI_CODE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WANDB_LINE = re.compile(r"^wandb:")


def program_lines(tail: str, keep_wandb: bool = False) -> list[str]:
    """The non-empty lines of a run's output tail, colour codes removed, without wandb's own
    lines (all of them with ``keep_wandb``, or when there are only those)."""
    lines = [ANSI_CODE.sub("", ln).strip() for ln in tail.splitlines()]
    lines = [ln for ln in lines if ln]
    own = [ln for ln in lines if not WANDB_LINE.match(ln)]
    return lines if keep_wandb else own or lines


def same_error_key(error: str | None) -> str:
    """An error with its numbers blanked, so that 'the same error' ignores epochs and values."""
    return re.sub(r"\d+(\.\d+)?", "#", error or "")


def read_tail(path: Path, lines: int = OUTPUT_TAIL_LINES, chars: int = OUTPUT_TAIL_CHARS) -> str:
    """The end of a run's output log (empty when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - chars * 2))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    text = "\n".join(data.splitlines()[-lines:])
    return text[-chars:]
