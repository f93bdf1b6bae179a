"""One training run, as ``wandb agent`` (or our offline runner, or a user by hand) starts it.

Parameters arrive the way the agent passes them (``--key=value`` arguments and the
``WANDB_SWEEP_PARAM_PATH`` file that ``wandb.init`` applies), and are read only through
``wandb.config``. The run cannot tell who started it. Each epoch's metrics go to
``wandb.log`` and the outcome to ``run.summary``, nowhere else: the offline sweep runner
reads them from the run's own W&B record, as it does for any program.

The ``objective`` key names the validation metric that keeps epochs and ranks runs
(``val_macro_f1`` by default, or ``val_sveb_veb_f1``); both are logged when the classes
have S and V, and the summary holds each one's kept value as ``kept_<metric>``.

A run is a sequence of named steps, each in its own module:

- config and data (``run_start``): the cross-setting rules, the data in the config's
  protocol, the pretrained model;
- folds (``folds``): one split, or k folds (``folds: k``) whose mean is the run's value;
- fit (``fold_training``): each fold's model trained and saved;
- record (``run_record``): each fold's record, and the run's;
- final model (``final_model``): a k-fold run's one model, its folds averaged or a refit;
- promote (``run_end``): the best-model slot, the W&B artifact and summary.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
from typing import Any, Callable

from . import backend
from .cli import (EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, StoppedEmptyHanded,
                  expected_errors, one_line_warnings, stop_signals_interrupt,
                  wandb_start_failed)
from .config import resolve
from .contract import DEFAULT_PROJECT
from .run_args import parse_cli, usage


# The `stopped:` lines of a stop that comes before training installs its own (which stops
# after the current batch): the process ends at once.
STOPPED_WHILE_STARTING = ("the run was stopped while it was starting; no model was trained "
                          "and none was promoted")
STOPPED_AT_ONCE = ("the run was stopped at once (before training began, or by a second stop); "
                   "no model was promoted")


def _train(run, config: dict[str, Any]) -> int:
    """Everything after wandb.init, as named steps; returns the process exit code."""
    from . import training
    from .final_model import final_model
    from .fold_training import train_folds
    from .run_end import finish, log_model_artifact, promote, record_divergence
    from .run_record import combine_folds
    from .run_start import prepare

    stop = training.StopRequest()
    stop.install()
    try:
        ctx = prepare(run, config, stop)
        try:
            outcomes = train_folds(ctx)
        except training.TrainingDiverged as e:
            return record_divergence(ctx, str(e))
        record, best_value, best_epoch = combine_folds(ctx, outcomes)
        if ctx.stop.requested:  # asked to stop once training was over: it still did not finish
            record = dataclasses.replace(record, stopped=True)
        final = final_model(ctx, outcomes, record)
        promoted, slot = promote(ctx, final.path, final.record)
        log_model_artifact(ctx, outcomes, final, promoted)
        finish(ctx, outcomes, final, best_value, best_epoch, promoted, slot)
        return EXIT_OK
    finally:
        stop.uninstall()


def main(argv: list[str] | None = None, *, as_program: bool = False) -> int:
    """One run from its ``--key=value`` arguments; the process exit code. ``as_program``:
    this is the process's run (code/train.py, a sweep's), so a stop after its outcome is
    written ends the process with that outcome (``finish_run``)."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(usage())
        return EXIT_OK
    # Until training installs its own stop (training.StopRequest), a stop signal ends the
    # run through the handlers below with a message, not silently with the default action.
    stop_signals_interrupt()
    one_line_warnings()  # e.g. a key of another family: one `warning:` line in the run's log
    try:
        cli_config = parse_cli(argv)
        refuse_before_start(cli_config)
    except expected_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"stopped: {STOPPED_WHILE_STARTING}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    backend.quiet_tensorflow()
    try:
        import wandb

        # Through the environment: in a sweep W&B ignores wandb.init's project, and its
        # runs would otherwise land in a project named after the program's folder.
        os.environ.setdefault("WANDB_PROJECT", DEFAULT_PROJECT)
        run = wandb.init(config=cli_config, job_type="train")
    except KeyboardInterrupt:
        print(f"stopped: {STOPPED_WHILE_STARTING}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except Exception as e:  # wandb raises its own types for login/network/config problems
        print(f"error: {wandb_start_failed('train', e)}", file=sys.stderr)
        return EXIT_USAGE
    exit_code = EXIT_ERROR  # until proven otherwise: a crash finishes the run as failed
    try:
        config = resolve(dict(run.config))
        # Before anything imports Keras: it reads KERAS_BACKEND once, on import.
        backend.select(config["backend"])
        # Record the defaults the run used, so the W&B config shows every value.
        run.config.update({k: v for k, v in config.items() if k not in run.config},
                          allow_val_change=True)
        exit_code = _train(run, config)
    except expected_errors() as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        exit_code = EXIT_USAGE
    except StoppedEmptyHanded as e:
        print(f"stopped: {e}", file=sys.stderr, flush=True)
        exit_code = EXIT_INTERRUPTED
    except KeyboardInterrupt:  # a stop before training began, or a second Ctrl-C: quit now
        print(f"stopped: {STOPPED_AT_ONCE}", file=sys.stderr, flush=True)
        exit_code = EXIT_INTERRUPTED
    finally:
        finish_run(run, exit_code, exit_on_stop=as_program)
    return exit_code


def refuse_before_start(cli_config: dict[str, Any]) -> None:
    """A run started by hand gets its values from the command line alone: values that
    cannot run, and development data that is not there, are refused before ``wandb.init``,
    so they leave no W&B run behind. A sweep's run gets its values through ``wandb.init``
    (the agent's parameter file), so its values are checked after it, as W&B's own runs
    are."""
    import warnings

    from .data import datasets
    from .run_start import check_combinations

    if os.environ.get("WANDB_SWEEP_PARAM_PATH"):
        return
    refused = None
    # each warning is said once: by the run itself, or here when the run is refused
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        try:
            config = resolve(cli_config)
            check_combinations(config)
            datasets.check_development_files(datasets.resolve_source(config["dataset"],
                                                                     config["data_dir"]))
        except Exception as e:  # the caller reports it: the warnings go first
            refused = e
    if refused is not None:
        for w in said:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        raise refused


def finish_run(run, exit_code: int, *, exit_on_stop: bool = False) -> None:
    """``run.finish`` with stop signals ignored until it returns: the run's outcome is
    decided, so a stop arriving as it ends (a sweep's SIGTERM) changes nothing of it, and
    its W&B record is written whole. Then the handlers come back, or, with
    ``exit_on_stop`` (the process's own run), a stop ends the process at once with
    ``exit_code``: nothing is left to do but exit, and a sweep's SIGTERM then would
    otherwise end a finished run with exit 143 or a traceback."""
    from .sweep.guard import STOP_SIGNALS

    held = ({sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
            if threading.current_thread() is threading.main_thread() else {})
    try:
        run.finish(exit_code=exit_code)
    finally:
        for sig, handler in held.items():
            signal.signal(sig, _exit_with(exit_code) if exit_on_stop else handler)


def _exit_with(exit_code: int) -> Callable[[int, Any], None]:
    """A signal handler that ends the process with ``exit_code``: SystemExit, so W&B's and
    the interpreter's own exit steps still run (a stop during one of them ends that one)."""
    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(exit_code)

    return handler


def program_main(argv: list[str] | None = None) -> int:
    """``main`` as the training program's entry (code/train.py, ``python -m ecgsweep.run``,
    ``ecg-sweeps train``)."""
    return main(argv, as_program=True)


if __name__ == "__main__":  # `python -m ecgsweep.run`: the training program as installed
    sys.exit(program_main())
