"""One training run, as ``wandb agent`` (or our offline runner, or a user by hand) starts it.

Parameters arrive the way the agent passes them (``--key=value`` arguments and the
``WANDB_SWEEP_PARAM_PATH`` file that ``wandb.init`` applies), and are read only through
``wandb.config``. The run cannot tell who started it. Besides logging to W&B, each epoch's
metrics are appended to ``<run dir>/files/ecgsweep-metrics.jsonl`` and the outcome to
``ecgsweep-summary.json``: plain files that any local sweep runner can follow while the run
is live, with no W&B server.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from . import params
from .cli import EXIT_ERROR, EXIT_NAN, EXIT_OK, EXIT_USAGE, UserError, expected_errors
from .config import resolve

METRICS_FILE = "ecgsweep-metrics.jsonl"
SUMMARY_FILE = "ecgsweep-summary.json"
SWEEP_METRIC = "val_macro_f1"


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
        try:
            parsed[key] = yaml.safe_load(value) if value != "" else ""
        except yaml.YAMLError:
            parsed[key] = value
        i += 1
    return parsed


def usage() -> str:
    lines = ["usage: python code/train.py [--key=value ...]", "",
             "Trains one model. Every key is a hyperparameter, also settable from a sweep YAML.",
             "", "Training:"]
    lines += [f"  --{p.name}={p.default!s:<10} {p.help}" for p in params.TRAINING_PARAMS]
    for family, family_params in sorted(params.FAMILY_PARAMS.items()):
        lines += ["", f"model={family}:"]
        lines += [f"  --{p.name}={p.default!s:<10} {p.help}" for p in family_params]
    return "\n".join(lines)


class EpochLog:
    """Receives each epoch's metrics: W&B, the local metrics file, and one terminal line."""

    def __init__(self, run, metrics_path: Path, epochs: int):
        self.run = run
        self.metrics_path = metrics_path
        self.epochs = epochs

    def __call__(self, metrics: dict[str, float]) -> None:
        self.run.log(metrics)
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(metrics) + "\n")
            f.flush()
            os.fsync(f.fileno())
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                          if k not in ("epoch", "learning_rate"))
        print(f"epoch {metrics['epoch']}/{self.epochs}  {shown}", flush=True)


def _artifact_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-")[:120]


def _train(run, config: dict[str, Any]) -> int:
    """Everything after wandb.init; returns the process exit code."""
    from . import artifacts, models, training
    from .data import datasets

    import keras

    files_dir = Path(run.dir)
    summary: dict[str, Any] = {"model": config["model"], "stopped": False, "promoted": False}
    stop = training.StopRequest()
    stop.install()
    try:
        device = training.configure_device(config["mixed_precision"])
        print(f"run {run.id}: {config['model']} on {config['dataset']}, training on {device}",
              flush=True)
        training.seed_everything(config["seed"])

        source = datasets.resolve_source(config["dataset"], config["data_dir"])
        dev = datasets.load_development(source)
        train, val = datasets.train_val_split(dev, config["val_fraction"], config["seed"],
                                              config["max_train_beats"])
        n_classes = len(source.class_names)
        print(f"data: {len(train)} training and {len(val)} validation beats, classes "
              f"{', '.join(source.class_names)}", flush=True)

        model = models.build(config, (dev.X.shape[1], 1), n_classes)
        sink = EpochLog(run, files_dir / METRICS_FILE, config["epochs"])
        try:
            result = training.fit(model, config, train, val, n_classes, sink, stop)
        except training.TrainingDiverged as e:
            summary.update(error=str(e))
            run.summary.update({"error": str(e)})
            artifacts.atomic_write_json(files_dir / SUMMARY_FILE, summary)
            print(f"error: {e}", file=sys.stderr, flush=True)
            return EXIT_NAN
        if not result.history:
            raise UserError("the run was stopped before finishing one epoch; nothing to keep")

        run_model = files_dir.parent / "model.keras"
        model.save(run_model)
        record = {
            "metric": SWEEP_METRIC, "goal": "maximize", "value": result.best_val_macro_f1,
            "best_epoch": result.best_epoch, "metrics": result.best_metrics,
            "config": config, "run_id": run.id, "project": run.project,
            "sweep_id": os.environ.get("WANDB_SWEEP_ID") or getattr(run, "sweep_id", None),
            "run_dir": str(files_dir.parent), "class_names": list(source.class_names),
            "n_classes": n_classes, "input_shape": [int(dev.X.shape[1]), 1],
            "dataset": {"name": source.name, "files": source.files,
                        "fingerprint": datasets.fingerprint(dev),
                        "n_train": len(train), "n_val": len(val)},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": device,
            "keras_version": keras.__version__, "backend": keras.backend.backend(),
            "stopped": result.stopped,
        }
        artifacts.atomic_write_json(artifacts.sidecar_path(run_model), record)
        slot = artifacts.BestModelSlot(config["models_dir"], config["model"])
        promoted, reason = slot.promote_if_better(run_model, record)
        print(f"best model {'updated' if promoted else 'kept'}: {slot.model_path} ({reason})",
              flush=True)

        import wandb

        artifact = wandb.Artifact(_artifact_name(config["model"], source.name), type="model",
                                  metadata={k: record[k] for k in ("metric", "value", "best_epoch",
                                                                   "class_names")})
        artifact.add_file(str(run_model), name="model.keras")
        artifact.add_file(str(artifacts.sidecar_path(run_model)), name="model.json")
        run.log_artifact(artifact, aliases=["latest", "best"] if promoted else ["latest"])

        summary.update(best_val_macro_f1=result.best_val_macro_f1, best_epoch=result.best_epoch,
                       val_macro_f1=result.best_val_macro_f1, stopped=result.stopped,
                       promoted=promoted, model_path=str(slot.model_path),
                       run_model_path=str(run_model))
        # The sweep's objective is the summary value: the best epoch, whose weights we keep.
        run.summary.update({k: summary[k] for k in ("best_val_macro_f1", "best_epoch",
                                                     "val_macro_f1", "stopped", "promoted")})
        artifacts.atomic_write_json(files_dir / SUMMARY_FILE, summary)
        print(f"done: best val_macro_f1 {result.best_val_macro_f1:.4f} at epoch "
              f"{result.best_epoch}{' (stopped early by request)' if result.stopped else ''}",
              flush=True)
        return EXIT_OK
    finally:
        stop.uninstall()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(usage())
        return EXIT_OK
    try:
        cli_config = parse_cli(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import wandb

    run = wandb.init(project=os.environ.get("WANDB_PROJECT", "ecg-sweeps"), config=cli_config,
                     job_type="train")
    exit_code = EXIT_ERROR  # until proven otherwise: a crash finishes the run as failed
    try:
        config = resolve(dict(run.config))
        # Record the defaults the run used, so the W&B config shows every value.
        run.config.update({k: v for k, v in config.items() if k not in run.config},
                          allow_val_change=True)
        exit_code = _train(run, config)
    except expected_errors() as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        exit_code = EXIT_USAGE
    finally:
        run.finish(exit_code=exit_code)
    return exit_code
