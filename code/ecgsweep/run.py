"""One training run, as ``wandb agent`` (or our offline runner, or a user by hand) starts it.

Parameters arrive the way the agent passes them (``--key=value`` arguments and the
``WANDB_SWEEP_PARAM_PATH`` file that ``wandb.init`` applies), and are read only through
``wandb.config``. The run cannot tell who started it. Besides logging to W&B, each epoch's
metrics are appended to ``<run dir>/files/ecgsweep-metrics.jsonl`` and the outcome to
``ecgsweep-summary.json``: plain files that any local sweep runner can follow while the run
is live, with no W&B server.

Cross-validation (``folds: k``, k >= 2) trains k models one after the other, saved as
``<run dir>/fold<i>.keras`` with a ``fold<i>.json`` record each. Their epochs go to W&B
as ``fold<i>/val_macro_f1`` etc. (with ``fold``); the metrics file and W&B's plain
``val_macro_f1`` get the epoch-wise mean over the folds, written once all folds have
trained. Not fold 1's epochs live: the offline runner (like W&B) scores a run by the best
value in its history and summary, so a lucky fold 1 would lift the run above its mean;
the mean rows never exceed the summary's ``val_macro_f1`` (the mean of the folds' best
epochs). The price: hyperband sees a k-fold run's epochs only at its end, so it cannot
stop it early. The promoted ``best.keras`` is fold 1's model with the mean as its value
and the fold files listed in ``best.json`` (``kfold.models``); the run ends by printing the
``code/eval.py --model ... --model ...`` command that scores the k models as an ensemble.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import yaml

from . import params
from .cli import EXIT_ERROR, EXIT_NAN, EXIT_OK, EXIT_USAGE, UserError, expected_errors
from .config import resolve
from .contract import METRICS_FILE, SUMMARY_FILE

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
    lines += [_usage_line(p) for p in params.TRAINING_PARAMS]
    for family, family_params in sorted(params.FAMILY_PARAMS.items()):
        lines += ["", f"model={family}:"]
        lines += [_usage_line(p) for p in family_params]
    return "\n".join(lines)


def _usage_line(p: params.Param) -> str:
    allowed = f" [{' | '.join(map(str, p.choices))}]" if p.choices else ""
    return f"  {f'--{p.name}={p.default}':<34} {p.help}{allowed}"


def _format_metrics(metrics: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                     if k not in ("epoch", "learning_rate"))


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
        shown = _format_metrics(metrics)
        print(f"epoch {metrics['epoch']}/{self.epochs}  {shown}", flush=True)


def _artifact_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-")[:120]


class FoldLog:
    """A fold's epochs in k-fold cross-validation: to W&B under ``fold<i>/`` and the terminal.

    Not to the metrics file: the offline runner reads that one as the run's own epochs, and
    gets the epoch-wise mean over the folds once they have all trained (``_mean_history``).
    """

    def __init__(self, run, fold: int, folds: int, epochs: int):
        self.run, self.fold, self.folds, self.epochs = run, fold, folds, epochs

    def __call__(self, metrics: dict[str, float]) -> None:
        self.run.log({"fold": self.fold, **{f"fold{self.fold}/{k}": v for k, v in metrics.items()}})
        shown = _format_metrics(metrics)
        print(f"fold {self.fold}/{self.folds} epoch {metrics['epoch']}/{self.epochs}  {shown}",
              flush=True)


def _mean_history(histories: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Epoch-wise mean over folds. A fold that stopped early (early stopping, SIGTERM) counts
    with its last epoch's values for the later epochs, so every row averages all folds and
    no row's val_macro_f1 exceeds the mean of the folds' best epochs (the run's objective)."""
    histories = [h for h in histories if h]
    rows = []
    for e in range(max((len(h) for h in histories), default=0)):
        at = [h[min(e, len(h) - 1)] for h in histories]
        keys = [k for k in at[0] if k != "epoch" and all(k in r for r in at)]
        row: dict[str, float] = {"epoch": e + 1}
        row.update({k: float(np.mean([r[k] for r in at])) for k in keys})
        row["val_macro_f1_std"] = float(np.std([r["val_macro_f1"] for r in at]))
        rows.append(row)
    return rows


def development_folds(config: dict[str, Any], source, dev) -> Iterator[tuple[Any, dict]]:
    """The run's training/validation splits, each with its training beats rebalanced.

    One split (``folds`` 0 or 1: ``val_fraction`` held out) or k stratified folds. SMOTE
    and synthetic augmentation (``imbalance.rebalance``) see only a split's training part,
    after the validation part is taken (and after ``max_train_beats`` has capped the real
    beats: added beats come on top); the validation beats are yielded as split. Yields
    ``(datasets.Fold, added)`` one at a time, so only one rebalanced fold is in memory.
    """
    from . import imbalance
    from .data import datasets

    seed = int(config["seed"])
    if int(config["folds"]) >= 2:
        folds = datasets.kfold_splits(dev, int(config["folds"]), seed, config["max_train_beats"])
    else:
        train, val = datasets.train_val_split(dev, config["val_fraction"], seed,
                                              config["max_train_beats"])
        folds = [datasets.Fold(1, train, val)]
    for fold in folds:
        train, added = imbalance.rebalance(fold.train, config, source.class_names,
                                           seed=seed + fold.index - 1)
        yield datasets.Fold(fold.index, train, fold.val, fold.val_index), added


def _check_pretrained(config: dict[str, Any], input_width: int) -> dict[str, Any] | None:
    """Validate ``pretrained`` once, before any training; returns what the record keeps."""
    from . import artifacts, transfer

    if not transfer.is_set(config["pretrained"]):
        return None
    path = Path(config["pretrained"])
    slot = artifacts.BestModelSlot(config["models_dir"], config["model"])
    if path.exists() and slot.model_path.exists() and path.resolve() == slot.model_path.resolve():
        raise UserError(f"config key 'pretrained': {path} is the best-model file this run would "
                        f"replace (models_dir={config['models_dir']}, model={config['model']}); "
                        f"pass another models_dir, e.g. --models_dir={config['models_dir']}/transfer")
    model = transfer.load_pretrained(path, input_width)
    layer = transfer.feature_layer(model, f"config key 'pretrained': {path}")
    source = {}
    side = artifacts.sidecar_path(path)
    if side.is_file():
        try:
            rec = json.loads(side.read_text())
            source = {"model": rec.get("config", {}).get("model"),
                      "dataset": rec.get("dataset", {}).get("name"), "run_id": rec.get("run_id"),
                      "value": rec.get("value")}
        except (OSError, ValueError):
            source = {}
    info = {"pretrained": str(path), "sha256": artifacts.sha256_file(path),
            "feature_layer": layer.name, "freeze_epochs": int(config["freeze_epochs"]),
            "fine_tune_lr_factor": float(config["fine_tune_lr_factor"]), "source": source}
    trained_on = f", {source['model']} trained on {source['dataset']}" if source.get("dataset") else ""
    print(f"transfer: feature layers of {path}{trained_on}, up to layer {layer.name!r}; new head "
          f"trained alone for {min(config['freeze_epochs'], config['epochs'])} epoch(s), then all "
          f"layers at learning rate x {config['fine_tune_lr_factor']}", flush=True)
    return info


def _build(config: dict[str, Any], input_width: int, n_classes: int):
    """A fresh model (from the family, or from the pretrained file) and its FineTune plan."""
    from . import models, training, transfer

    if not transfer.is_set(config["pretrained"]):
        return models.build(config, (input_width, 1), n_classes), None
    where = f"config key 'pretrained': {config['pretrained']}"
    pretrained = transfer.load_pretrained(config["pretrained"], input_width)
    model, base = transfer.build(config, pretrained, n_classes, where)
    return model, training.FineTune(base, int(config["freeze_epochs"]),
                                    float(config["fine_tune_lr_factor"]))


def _eval_command(paths: list[Path]) -> str:
    return "python code/eval.py " + " ".join(f"--model {p}" for p in paths)


def _train(run, config: dict[str, Any]) -> int:
    """Everything after wandb.init; returns the process exit code."""
    from . import artifacts, training
    from .data import datasets

    import keras

    files_dir = Path(run.dir)
    run_dir = files_dir.parent
    summary: dict[str, Any] = {"model": config["model"], "stopped": False, "promoted": False}
    stop = training.StopRequest()
    stop.install()
    try:
        device = training.configure_device(config["mixed_precision"])
        print(f"run {run.id}: {config['model']} on {config['dataset']}, training on {device}",
              flush=True)

        source = datasets.resolve_source(config["dataset"], config["data_dir"])
        dev = datasets.load_development(source)
        n_classes = len(source.class_names)
        width = int(dev.X.shape[1])
        transfer_info = _check_pretrained(config, width)
        k = int(config["folds"]) if int(config["folds"]) >= 2 else 0
        if k:
            print(f"{k}-fold cross-validation on {len(dev)} development beats (val_fraction "
                  "unused); the run's metrics are the means over the folds", flush=True)
        sink_all = EpochLog(run, files_dir / METRICS_FILE, config["epochs"])
        fingerprint = datasets.fingerprint(dev)

        outcomes: list[dict[str, Any]] = []
        for fold, added in development_folds(config, source, dev):
            training.seed_everything(config["seed"])  # each fold starts alike: reproducible alone
            tag = f"fold {fold.index}/{k}: " if k else ""
            n_added = sum(n for per_class in added.values() for n in per_class.values())
            extra = "".join(f"; {method} added " + ", ".join(f"{n} {c}" for c, n in per.items())
                            for method, per in added.items() if per)
            print(f"{tag}data: {len(fold.train)} training{f' ({n_added} added)' if n_added else ''}"
                  f" and {len(fold.val)} validation beats, classes "
                  f"{', '.join(source.class_names)}{extra}", flush=True)
            model, fine_tune = _build(config, width, n_classes)
            sink = FoldLog(run, fold.index, k, config["epochs"]) if k else sink_all
            try:
                result = training.fit(model, config, fold.train, fold.val, n_classes, sink, stop,
                                      fine_tune=fine_tune)
            except training.TrainingDiverged as e:
                message = f"{tag}{e}"
                summary.update(error=message)
                run.summary.update({"error": message})
                artifacts.atomic_write_json(files_dir / SUMMARY_FILE, summary)
                print(f"error: {message}", file=sys.stderr, flush=True)
                return EXIT_NAN
            if not result.history:
                if outcomes:
                    break  # stopped between folds: keep the folds that trained
                raise UserError("the run was stopped before finishing one epoch; nothing to keep")

            path = run_dir / (f"fold{fold.index}.keras" if k else "model.keras")
            model.save(path)
            record = {
                "metric": SWEEP_METRIC, "goal": "maximize", "value": result.best_val_macro_f1,
                "best_epoch": result.best_epoch, "metrics": result.best_metrics,
                "config": config, "run_id": run.id, "project": run.project,
                "sweep_id": os.environ.get("WANDB_SWEEP_ID") or getattr(run, "sweep_id", None),
                "run_dir": str(run_dir), "class_names": list(source.class_names),
                "n_classes": n_classes, "input_shape": [width, 1],
                "dataset": {"name": source.name, "files": source.files,
                            "fingerprint": fingerprint,
                            "n_train": len(fold.train), "n_val": len(fold.val),
                            **({"added": added} if n_added else {})},
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": device,
                "keras_version": keras.__version__, "backend": keras.backend.backend(),
                "stopped": result.stopped,
                **({"transfer": transfer_info} if transfer_info else {}),
                **({"fold": fold.index, "folds": k} if k else {}),
            }
            artifacts.atomic_write_json(artifacts.sidecar_path(path), record)
            if k:
                print(f"fold {fold.index}/{k}: best val_macro_f1 {result.best_val_macro_f1:.4f} at "
                      f"epoch {result.best_epoch}; saved {path}", flush=True)
            outcomes.append({"path": path, "record": record, "result": result})
            if stop.requested:
                break

        first = outcomes[0]
        record = dict(first["record"])
        stopped = any(o["result"].stopped for o in outcomes) or stop.requested
        paths = [o["path"] for o in outcomes]
        if k:
            values = [o["result"].best_val_macro_f1 for o in outcomes]
            mean_rows = _mean_history([o["result"].history for o in outcomes])
            for row in mean_rows:
                sink_all(row)
            best_row = max(mean_rows, key=lambda r: r["val_macro_f1"])
            best_keys = set.intersection(*(set(o["result"].best_metrics) for o in outcomes))
            kfold = {"folds": k, "completed": len(outcomes), "values": values,
                     "mean": float(np.mean(values)), "std": float(np.std(values)),
                     "best_epochs": [o["result"].best_epoch for o in outcomes],
                     "models": [str(p) for p in paths], "eval_command": _eval_command(paths)}
            # The promoted file is fold 1's model; the value it competes with is the mean.
            record.update(value=kfold["mean"], best_epoch=int(best_row["epoch"]), stopped=stopped,
                          metrics={key: float(np.mean([o["result"].best_metrics[key]
                                                       for o in outcomes]))
                                   for key in sorted(best_keys)},
                          kfold=kfold)
            best_value, best_epoch = kfold["mean"], int(best_row["epoch"])
        else:
            best_value, best_epoch = first["result"].best_val_macro_f1, first["result"].best_epoch

        slot = artifacts.BestModelSlot(config["models_dir"], config["model"])
        promoted, reason = slot.promote_if_better(first["path"], record)
        print(f"best model {'updated' if promoted else 'kept'}: {slot.model_path} ({reason})",
              flush=True)

        import wandb

        artifact = wandb.Artifact(_artifact_name(config["model"], source.name), type="model",
                                  metadata={key: record[key] for key in ("metric", "value",
                                                                         "best_epoch", "class_names")})
        for p in paths:
            name = p.stem if k else "model"
            artifact.add_file(str(p), name=f"{name}.keras")
            artifact.add_file(str(artifacts.sidecar_path(p)), name=f"{name}.json")
        run.log_artifact(artifact, aliases=["latest", "best"] if promoted else ["latest"])

        summary.update(best_val_macro_f1=best_value, best_epoch=best_epoch,
                       val_macro_f1=best_value, stopped=stopped,
                       promoted=promoted, model_path=str(slot.model_path),
                       run_model_path=str(first["path"]))
        shown = ["best_val_macro_f1", "best_epoch", "val_macro_f1", "stopped", "promoted"]
        if k:
            summary.update(folds=k, folds_completed=len(outcomes),
                           val_macro_f1_std=record["kfold"]["std"],
                           fold_val_macro_f1=record["kfold"]["values"],
                           fold_models=record["kfold"]["models"],
                           eval_command=record["kfold"]["eval_command"])
            shown += ["folds", "folds_completed", "val_macro_f1_std", "fold_val_macro_f1"]
        added_total = first["record"]["dataset"].get("added")
        if added_total:
            summary["train_beats_added"] = added_total
            shown.append("train_beats_added")
        # The sweep's objective is the summary value: the best epoch, whose weights we keep
        # (k-fold: the mean over the folds of each fold's best epoch).
        run.summary.update({key: summary[key] for key in shown})
        artifacts.atomic_write_json(files_dir / SUMMARY_FILE, summary)
        note = " (stopped early by request)" if stopped else ""
        if k:
            print(f"done: val_macro_f1 {best_value:.4f} +- {record['kfold']['std']:.4f} over "
                  f"{len(outcomes)} of {k} folds{note}", flush=True)
            print(f"evaluate the {len(outcomes)}-fold ensemble on the test data:\n  "
                  f"{record['kfold']['eval_command']}", flush=True)
        else:
            print(f"done: best val_macro_f1 {best_value:.4f} at epoch {best_epoch}{note}",
                  flush=True)
            print(f"evaluate on the test data:\n  "
                  f"{_eval_command([slot.model_path if promoted else first['path']])}", flush=True)
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
