"""What ``check`` finds in a sweep config: one ``Problem`` per finding, and its level.

The engine's own checks and a program's checks (``program.ProgramHooks.check``) report in
this one type, so that one table, ``LEVELS``, decides what stops a sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

# What each kind of finding does to a sweep, in one table. An error stops it before its first
# run: W&B's server refuses it (its schema or its engine's own checks), the offline engine
# cannot run it, there is no program to start, or the program rejects the runs it gets.
# Whatever W&B would run as written is a warning: `check` reports it and exits 0, the runner
# prints it and runs the sweep as W&B would.
LEVELS: dict[str, str] = {
    "schema": "error",           # W&B's schema or the sweeps engine's checks refuse it
    "engine": "error",           # the offline engine cannot run it (custom, a grid of ranges)
    "program": "error",          # the program to start is missing
    "rejected": "error",         # the program rejects the value (or values that go together):
                                 # its runs would fail
    "string_value": "warning",   # 1e-5 in value(s) is a string; W&B hands the program the string
    "log_exponents": "warning",  # old-style log bounds are exponents of e; W&B samples them so
    "value_list": "warning",     # value: [..] gives every run the whole list
    "repeated_value": "warning", # a value listed twice is tried more often
    "int_bounds": "warning",     # integer bounds make W&B search integers only
    "unread": "warning",         # a parameter the chosen model does not read
    "combination": "warning",    # a value the search may draw with another that cannot go with it
    "metric": "warning",         # a metric or goal that ranks the runs oddly
    "command": "warning",        # wandb agent drops an unknown macro, keeps a partial one verbatim,
                                 # and with no args macro the program reads wandb.config
    "listing": "note",           # the parameters the program reads
}


@dataclass(frozen=True)
class Problem:
    """One finding; its ``kind`` (a key of LEVELS) says whether it is an error, which stops
    the sweep, a warning or a note. ``vague``: a refusal of W&B's JSON schema that names none
    of the forms it would take ("not valid under any of the given schemas"), left out where
    a precise finding on the same field says more."""

    field: str
    message: str
    kind: str = "schema"
    vague: bool = False

    @property
    def level(self) -> str:
        return LEVELS[self.kind]

    def __str__(self) -> str:
        prefix = f"{self.level}: " if self.level != "error" else ""
        return f"{prefix}{self.field}: {self.message}"


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.level == "error"]
