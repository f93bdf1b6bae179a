"""The command line of ``code/train.py``: ``--key=value`` arguments, and the usage text
that lists every hyperparameter (``params``)."""

from __future__ import annotations

from typing import Any

import yaml

from . import params
from .cli import UserError, prog


def parse_cli(argv: list[str]) -> dict[str, Any]:
    """``--key=value`` / ``--key value`` pairs, values typed as YAML reads them."""
    parsed: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or arg == "--":
            raise UserError(f"unexpected argument {arg!r}: pass parameters as --key=value "
                            "(see --help)")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise UserError(f"argument --{key} needs a value: --{key}=VALUE")
            i += 1
            value = argv[i]
        if key in parsed:  # which one was meant is not ours to guess
            raise UserError(f"--{key} is given twice (the second time as {value!r}); give it "
                            "once")
        try:
            parsed[key] = yaml.safe_load(value) if value != "" else ""
        except yaml.YAMLError:
            parsed[key] = value
        i += 1
    return parsed


def usage() -> str:
    lines = [f"usage: {prog('train.py', 'train')} [--key=value ...]", "",
             "Trains one model. Every key is a hyperparameter, also settable from a sweep YAML.",
             "", "Training:"]
    lines += [_usage_line(p) for p in params.TRAINING_PARAMS]
    for family, family_params in sorted(params.FAMILY_PARAMS.items()):
        lines += ["", f"model={family}:"]
        lines += [_usage_line(p) for p in family_params]
    return "\n".join(lines)


def _usage_line(p: params.Param) -> str:
    allowed = f" [{' | '.join(map(str, p.choices))}]" if p.choices else ""
    return f"  {f'--{p.name}={p.default}':<34} {p.help}{allowed}"
