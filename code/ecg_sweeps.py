"""The installed command, ``ecg-sweeps``: one subcommand per job of the scripts in ``code/``.

    ecg-sweeps sweep sweep_conf/quickstart_cnn_bayes.yaml --count 6
    ecg-sweeps status SWEEP_ID
    ecg-sweeps eval --model models/cnn/<data-key>/best.keras
    ecg-sweeps SUBCOMMAND --help

Each subcommand is the same code as its script (``ecg-sweeps eval`` is ``code/eval.py``,
``ecg-sweeps status`` is ``code/sweep.py status``), so the two forms take the same
arguments. This module sits beside the packages rather than in one of them: it imports
both ``ecgsweep`` and ``ecgbench``, and ``ecgbench`` imports ``ecgsweep``.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from typing import Callable

# What the sweep script's first word may be besides a YAML (sweep_cli.main reads it).
SWEEP_SUBCOMMANDS = ("status", "stop", "cancel", "pause", "resume", "report", "ensemble",
                     "check")


@dataclass(frozen=True)
class Subcommand:
    name: str
    summary: str  # the one line of `ecg-sweeps --help`
    run: Callable[[list[str]], object]


def _train(argv: list[str]) -> object:
    from ecgsweep.run import program_main

    return program_main(argv)


def _sweep(argv: list[str]) -> object:
    from ecgsweep.sweep_cli import main

    return main(argv)


def _sweep_command(name: str) -> Callable[[list[str]], object]:
    def run(argv: list[str]) -> object:
        from ecgsweep.sweep_cli import main

        return main([name, *argv])

    return run


def _eval(argv: list[str]) -> object:
    from ecgsweep.eval_cli import main

    return main(argv)


def _data(argv: list[str]) -> object:
    from ecgsweep.data_cli import main

    return main(argv)


def _protocol(argv: list[str]) -> object:
    from ecgsweep.protocol import main

    return main(argv)


def _bench(argv: list[str]) -> object:
    from ecgbench.cli import build_parser, main
    from ecgbench.sizes import REPO_ROOT
    from ecgsweep.cli import UserError

    build_parser().parse_args(argv)  # --help and bad options answer first
    if not (REPO_ROOT / "code" / "train.py").is_file():
        raise UserError("bench times the clone's code/train.py and code/sweep.py: run it from "
                        "a clone installed with `pip install -e .` (or `make bench`)")
    return main(argv)


SUMMARIES = {
    "status": "a sweep's runs and leaderboard (no ID: the sweeps in the store)",
    "stop": "no new runs in a sweep; the running ones finish",
    "cancel": "no new runs, and the running ones are stopped",
    "pause": "no new runs until `resume`",
    "resume": "let a paused sweep start runs again",
    "report": "a sweep as one HTML file and PNGs",
    "ensemble": "the top K runs' models averaged, against the best run",
    "check": "validate sweep YAMLs (--fix writes the mechanical fixes)",
}

SUBCOMMANDS = (
    Subcommand("train", "train one model (the program of every sweep YAML)", _train),
    Subcommand("sweep", "run a W&B sweep YAML offline (or --resume one)", _sweep),
    *(Subcommand(name, SUMMARIES[name], _sweep_command(name)) for name in SWEEP_SUBCOMMANDS),
    Subcommand("eval", "score a model or an ensemble on held-out test data", _eval),
    Subcommand("data", "make, convert, download or check data (synth, wfdb, kaggle, check)",
               _data),
    Subcommand("protocol", "inter-patient protocol in one command: records in, EC57 report out",
               _protocol),
    Subcommand("bench", "time training, start-up, inference and sweeps (a clone only)", _bench),
)


def usage() -> str:
    width = max(len(s.name) for s in SUBCOMMANDS)
    lines = ["usage: ecg-sweeps SUBCOMMAND [ARGS ...]", "",
             "Hyperparameter sweeps for ECG beat classification, online with W&B or offline.",
             "", "subcommands:"]
    lines += [f"  {s.name:<{width}}  {s.summary}" for s in SUBCOMMANDS]
    lines += ["", "`ecg-sweeps SUBCOMMAND --help` shows a subcommand's arguments."]
    return "\n".join(lines)


def find(name: str) -> Subcommand:
    """The subcommand called ``name``; UserError naming the closest one otherwise."""
    from ecgsweep.cli import UserError

    names = [s.name for s in SUBCOMMANDS]
    if name in names:
        return SUBCOMMANDS[names.index(name)]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UserError(f"unknown subcommand {name!r}{hint} (see `ecg-sweeps --help`)")


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return f"ecg-sweeps {installed_version('ecg-sweeps')}"
    except PackageNotFoundError:
        return "ecg-sweeps (not installed: run from the clone)"


def main(argv: list[str] | None = None) -> int:
    from ecgsweep.cli import EXIT_OK, EXIT_USAGE, name_commands_as_installed, run_main

    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(usage(), file=sys.stderr)
        return EXIT_USAGE
    if argv[0] in ("-h", "--help"):
        print(usage())
        return EXIT_OK
    if argv[0] == "--version":
        print(version())
        return EXIT_OK
    name_commands_as_installed()
    return run_main(lambda: find(argv[0]).run(argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
