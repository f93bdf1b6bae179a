"""One training run, as ``wandb agent`` (or our offline runner, or a user by hand) starts it.

Parameters arrive the way the agent passes them (``--key=value`` arguments and the
``WANDB_SWEEP_PARAM_PATH`` file that ``wandb.init`` applies), and are read only through
``wandb.config``. The run cannot tell who started it. Each epoch's metrics go to
``wandb.log`` and the outcome to ``run.summary``, nowhere else: the offline sweep runner
reads them from the run's own W&B record, as it does for any program.

The ``objective`` key names the validation metric that keeps epochs and ranks runs
(``val_macro_f1`` by default, or ``val_sveb_veb_f1``); both are logged when the classes
have S and V, and the summary holds each one's kept value as ``kept_<metric>``.

Cross-validation (``folds: k``, k >= 2) trains k models one after the other, saved as
``<run dir>/fold<i>.keras`` with a ``fold<i>.json`` record each. Their epochs go to W&B
as ``fold<i>/val_macro_f1`` etc. (with ``fold``); W&B's plain ``val_macro_f1`` etc. get
the epoch-wise mean over the folds, written once all folds have trained. Not fold 1's
epochs live: the offline runner (like W&B) scores a run by the best value in its history
and summary, so a lucky fold 1 would lift the run above its mean; the mean rows never
exceed the summary's value of the objective (the mean of the folds' kept epochs). The
price: hyperband sees a k-fold run's epochs only at its end, so it cannot stop it early.
The promoted ``best.keras`` is fold 1's model with the mean as its value and the fold
files listed in ``best.json`` (``kfold.models``); the run ends by printing the
``code/eval.py --model ... --model ...`` command that scores the k models as an ensemble.

Only a run that ends by itself (all its epochs, or its own early stopping) is offered to the
best-model slot. A run stopped from outside (SIGTERM: hyperband, the sweep runner ending, a
stop by hand), k-fold between folds included, keeps its model in its run folder, marked
``stopped`` in its record, and says that it was not promoted.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np
import yaml

from . import backend, ec57, params
from .cv_report import pooled_ec57, print_record_errors
from .cli import (EXIT_ERROR, EXIT_NAN, EXIT_OK, EXIT_USAGE, UserError, expected_errors,
                  wandb_start_failed)
from .config import resolve
from .contract import (FOLD_MODEL_FILE, PROMOTE_BY_COORDINATOR, PROMOTE_ENV, RUN_MODEL_FILE,
                       VAL_METRICS, kept_metric)


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
    """Receives each epoch's metrics: W&B (where the offline sweep runner reads them, from the
    run's own record) and one terminal line."""

    def __init__(self, run, epochs: int):
        self.run = run
        self.epochs = epochs

    def __call__(self, metrics: dict[str, float]) -> None:
        self.run.log(metrics)
        shown = _format_metrics(metrics)
        print(f"epoch {metrics['epoch']}/{self.epochs}  {shown}", flush=True)


def _artifact_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-")[:120]


class FoldLog:
    """A fold's epochs in k-fold cross-validation: to W&B under ``fold<i>/`` and the terminal.

    Their keys carry the fold, so the sweep's metric (``val_macro_f1`` etc.) is logged
    only by the epoch-wise mean over the folds, once they have all trained
    (``_mean_history``).
    """

    def __init__(self, run, fold: int, folds: int, epochs: int):
        self.run, self.fold, self.folds, self.epochs = run, fold, folds, epochs

    def __call__(self, metrics: dict[str, float]) -> None:
        self.run.log({"fold": self.fold, **{f"fold{self.fold}/{k}": v for k, v in metrics.items()}})
        shown = _format_metrics(metrics)
        print(f"fold {self.fold}/{self.folds} epoch {metrics['epoch']}/{self.epochs}  {shown}",
              flush=True)


def _mean_history(histories: list[list[dict[str, float]]]) -> list[dict[str, float]]:
    """Epoch-wise mean over folds, with the spread of each validation F1. A fold that
    stopped early (early stopping, SIGTERM) counts with its last epoch's values for the
    later epochs, so every row averages all folds and no row's objective exceeds the mean
    of the folds' best epochs (the run's value)."""
    histories = [h for h in histories if h]
    rows = []
    for e in range(max((len(h) for h in histories), default=0)):
        at = [h[min(e, len(h) - 1)] for h in histories]
        keys = [k for k in at[0] if k != "epoch" and all(k in r for r in at)]
        row: dict[str, float] = {"epoch": e + 1}
        row.update({k: float(np.mean([r[k] for r in at])) for k in keys})
        row.update({f"{k}_std": float(np.std([r[k] for r in at]))
                    for k in VAL_METRICS if k in keys})
        rows.append(row)
    return rows


def load_protocol_data(config: dict[str, Any], source):
    """The development beats in the config's class set (aami4 drops Q); ``source``'s class
    names follow. Options that read the beat sidecar (``params.SIDECAR_NEEDS``) need one:
    a clear error without it, as for options the classes or each other rule out."""
    from .data import datasets

    dev = datasets.load_development(source)
    dev = datasets.restrict_classes(dev, source.class_names, config["classes"])
    source.class_names = datasets.class_names_for(source.class_names, config["classes"])
    if config["s_gate_irregularity"] > 0:
        _check_s_gate(config, source)
    if config["v_template_clusters"] > 0:
        _check_v_templates(config, source)
    _check_objective(config, source)
    _check_sidecar(config, dev, source)
    if config["model"] in params.SEQUENCE_FAMILIES:
        _check_sequence_combinations(config)
    if config["rr_features"]:
        _check_rr_combinations(config)
    if config["beat_normalization"] != "none":
        _check_beat_normalization(config)
    return dev


def _check_sidecar(config: dict[str, Any], dev, source) -> None:
    """Every option the config turns on finds the sidecar field it reads."""
    need = params.missing_sidecar_need(config, dev)
    if need is None:
        return
    from .data.sidecar import sidecar_path

    data = source.files.get("train", source.name)
    missing = f" ({sidecar_path(data)} missing)" if "train" in source.files else ""
    raise UserError(f"config key '{need.key}': {config[need.key]} {need.says()}, from the beat "
                    "sidecar (<name>.beats.csv, written by `python code/data.py wfdb`); the "
                    f"data ({data}) has none{missing}")


def _options_on(config: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    """Those of ``names`` that the config turns on: the options that add beats, take beats
    out, change them or start from another model, named as the refusals print them."""
    from . import augment, transfer

    is_on = {"max_train_beats": int(config["max_train_beats"]) > 0,
             "val_split=random": config["val_split"] == "random",
             "resample": config["resample"] != "none",
             "augment_synthetic": float(config["augment_synthetic"]) > 0,
             "pretrained": transfer.is_set(config["pretrained"]),
             "aug_*": augment.is_on(config),
             "beat_normalization": config["beat_normalization"] != "none",
             "beat_dropout": float(config["beat_dropout"]) > 0}
    return [name for name in names if is_on[name]]


def _check_sequence_combinations(config: dict[str, Any]) -> None:
    """A sequence model (seq2seq) reads consecutive beats of one record: nothing may take
    beats out of a record or add beats from none. Refused here, before any training."""
    # beat_normalization: its windows are gathered from the beats alone (beat_windows.gather);
    # beat_dropout: it joins the RR features per beat itself, without the shared RR branch.
    clash = _options_on(config, ("max_train_beats", "val_split=random", "resample",
                                 "augment_synthetic", "pretrained", "beat_normalization",
                                 "beat_dropout"))
    if clash:
        raise UserError(f"config key 'model': {config['model']} is not supported together with "
                        f"{', '.join(clash)} (they leave gaps in a record's beats, add beats of no "
                        "record, start from a single-beat model, or add a channel its windows do "
                        "not carry); turn those off")


def _check_rr_combinations(config: dict[str, Any]) -> None:
    """Beats added by SMOTE or the synthetic generator, and a pretrained single-input model,
    have no RR features: refuse the combination at the start, not mid-training."""
    clash = _options_on(config, ("resample", "augment_synthetic", "pretrained"))
    if clash:
        raise UserError(f"config key 'rr_features': not supported together with "
                        f"{', '.join(clash)} (added beats and a pretrained beat-only model have no "
                        "RR features); set rr_features=false or turn those off")


def _check_beat_normalization(config: dict[str, Any]) -> None:
    """beat_normalization refuses beats or beat changes that have no record (SMOTE,
    synthetic beats) or that the second channel would not follow (augmentation of the beat
    alone, a pretrained one-channel model)."""
    clash = _options_on(config, ("resample", "augment_synthetic", "pretrained", "aug_*"))
    if clash:
        raise UserError(f"config key 'beat_normalization': {config['beat_normalization']}: not "
                        f"supported together with {', '.join(clash)}; set "
                        "beat_normalization=none or turn those off")


def _check_s_gate(config: dict[str, Any], source) -> None:
    """s_gate_irregularity moves S calls to N: the classes must include both."""
    if not {"N", "S"} <= set(source.class_names):
        raise UserError(f"config key 's_gate_irregularity': {config['s_gate_irregularity']} "
                        "moves S calls to N, but the data's classes are "
                        f"{', '.join(source.class_names)}; set it to 0")


def _check_v_templates(config: dict[str, Any], source) -> None:
    """v_template_clusters shares the V probability within each record's templates: the
    classes must include V."""
    if "V" not in source.class_names:
        raise UserError(f"config key 'v_template_clusters': {config['v_template_clusters']} "
                        "shares the V probability among beats of one shape, but the data's "
                        f"classes are {', '.join(source.class_names)}; set it to 0")


def _check_objective(config: dict[str, Any], source) -> None:
    """sveb_veb_f1 scores the EC57 SVEB and VEB rows: the classes must include S and V."""
    if config["objective"] == "sveb_veb_f1" and not ec57.has_ec57_rows(source.class_names):
        raise UserError(f"config key 'objective': sveb_veb_f1 is the mean F1 of classes S and "
                        f"V, but the data's classes are {', '.join(source.class_names)}; set "
                        "objective=macro_f1")


def split_seed(config: dict[str, Any]) -> int:
    """The seed of the validation split and the folds: split_seed, else the run's seed."""
    return int(config["seed"]) if int(config["split_seed"]) < 0 else int(config["split_seed"])


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
    by_record, note = datasets.choose_val_split(config["val_split"], dev)
    print(note, flush=True)
    if int(config["folds"]) >= 2:
        folds = datasets.kfold_splits(dev, int(config["folds"]), split_seed(config),
                                      config["max_train_beats"], by_record=by_record)
    else:
        train, val = datasets.holdout_split(dev, config["val_split"], config["val_fraction"],
                                            split_seed(config), config["max_train_beats"])
        folds = [datasets.Fold(1, train, val)]
    for fold in folds:
        if by_record:
            print(f"fold {fold.index}: held-out records {datasets.describe_records(fold.val)}",
                  flush=True)
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
    from .data import beatnorm

    if not transfer.is_set(config["pretrained"]):
        shape = (input_width, beatnorm.channels(config["beat_normalization"]))
        return models.build(config, shape, n_classes), None
    where = f"config key 'pretrained': {config['pretrained']}"
    pretrained = transfer.load_pretrained(config["pretrained"], input_width)
    model, base = transfer.build(config, pretrained, n_classes, where)
    return model, training.FineTune(base, int(config["freeze_epochs"]),
                                    float(config["fine_tune_lr_factor"]))


class ValidationConfusion(NamedTuple):
    """A model's confusion matrix on the validation beats, and one per held-out record."""

    total: np.ndarray
    by_record: dict[str, Any] | None  # None when the beats name no record


def validation_confusion(model, val, config: dict[str, Any],
                         n_classes: int) -> ValidationConfusion:
    """Confusion matrix of ``model`` (its kept epoch's weights) on the validation beats, and
    one per held-out record when the beats name their records (else None)."""
    from sklearn.metrics import confusion_matrix

    from .training import predict_proba

    pred = predict_proba(model, val, config, batch_size=1024).argmax(axis=1)
    cm = confusion_matrix(val.y, pred, labels=list(range(n_classes)))
    by_record = (ec57.confusion_by_record(val.y, pred, val.records, n_classes)
                 if val.records is not None else None)
    return ValidationConfusion(cm, by_record)


def _eval_command(paths: list[Path]) -> str:
    return "python code/eval.py " + " ".join(f"--model {p}" for p in paths)


@dataclass
class RunContext:
    """What every step of one run reads: the W&B run, its config, folders, data and device."""

    run: Any
    config: dict[str, Any]
    stop: Any  # training.StopRequest
    device: str
    source: Any  # datasets.DataSource
    dev: Any  # datasets.Split: the development beats
    folds: int  # k for k-fold, 0 for one split
    transfer_info: dict[str, Any] | None

    @property
    def files_dir(self) -> Path:
        return Path(self.run.dir)

    @property
    def run_dir(self) -> Path:
        return self.files_dir.parent

    @property
    def n_classes(self) -> int:
        return len(self.source.class_names)

    def tag(self, fold) -> str:
        return f"fold {fold.index}/{self.folds}: " if self.folds else ""


def _train(run, config: dict[str, Any]) -> int:
    """Everything after wandb.init, as named steps; returns the process exit code."""
    from . import training

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
            record["stopped"] = True
        promoted, slot = promote(ctx, outcomes[0]["path"], record)
        log_model_artifact(ctx, outcomes, record, promoted)
        finish(ctx, outcomes, record, best_value, best_epoch, promoted, slot)
        return EXIT_OK
    finally:
        stop.uninstall()


def prepare(run, config: dict[str, Any], stop) -> RunContext:
    """Device, data in the config's protocol, and the pretrained model's check."""
    from .data import datasets

    device = backend.configure_device(config["mixed_precision"]).describe()
    print(f"run {run.id}: {config['model']} on {config['dataset']}, training on {device}",
          flush=True)
    source = datasets.resolve_source(config["dataset"], config["data_dir"])
    dev = load_protocol_data(config, source)
    transfer_info = _check_pretrained(config, int(dev.X.shape[1]))
    k = int(config["folds"]) if int(config["folds"]) >= 2 else 0
    if k:
        print(f"{k}-fold cross-validation on {len(dev)} development beats (val_fraction "
              "unused); the run's metrics are the means over the folds", flush=True)
    return RunContext(run, config, stop, device, source, dev, k, transfer_info)


def train_folds(ctx: RunContext) -> list[dict[str, Any]]:
    """Train every fold (one split: one fold); each saved with its record."""
    from .data import datasets

    fingerprint = datasets.fingerprint(ctx.dev)
    outcomes: list[dict[str, Any]] = []
    for fold, added in development_folds(ctx.config, ctx.source, ctx.dev):
        outcome = train_fold(ctx, fold, added, fingerprint)
        if outcome is None:
            if outcomes:
                break  # stopped between folds: keep the folds that trained
            raise UserError("the run was stopped before finishing one epoch; nothing to keep")
        outcomes.append(outcome)
        if ctx.stop.requested:
            break
    return outcomes


def train_fold(ctx: RunContext, fold, added: dict, fingerprint: str) -> dict[str, Any] | None:
    """Build, fit and save one fold's model; None when stopped before its first epoch."""
    from . import artifacts, training

    training.seed_everything(ctx.config["seed"])  # each fold starts alike: reproducible alone
    tag = ctx.tag(fold)
    n_added = sum(n for per_class in added.values() for n in per_class.values())
    extra = "".join(f"; {method} added " + ", ".join(f"{n} {c}" for c, n in per.items())
                    for method, per in added.items() if per)
    print(f"{tag}data: {len(fold.train)} training{f' ({n_added} added)' if n_added else ''}"
          f" and {len(fold.val)} validation beats, classes "
          f"{', '.join(ctx.source.class_names)}{extra}", flush=True)
    model, fine_tune = _build(ctx.config, int(ctx.dev.X.shape[1]), ctx.n_classes)
    sink = (FoldLog(ctx.run, fold.index, ctx.folds, ctx.config["epochs"]) if ctx.folds
            else EpochLog(ctx.run, ctx.config["epochs"]))
    try:
        result = training.fit(model, ctx.config, fold.train, fold.val, ctx.source.class_names,
                              sink, ctx.stop, fine_tune=fine_tune)
    except training.TrainingDiverged as e:
        raise training.TrainingDiverged(f"{tag}{e}") from None
    if not result.history:
        return None
    confusion = validation_confusion(model, fold.val, ctx.config, ctx.n_classes)
    print(ec57.format_table(ec57.ec57_table(confusion.total, ctx.source.class_names),
                            f"{tag}validation at the kept epoch {result.kept_epoch} "
                            f"({ctx.config['keep_epoch']}), AAMI EC57:"), flush=True)
    if confusion.by_record is not None and not ctx.folds:  # k-fold: pooled, at the end
        print_record_errors(confusion.by_record, ctx.source.class_names)
    path = ctx.run_dir / (FOLD_MODEL_FILE.format(index=fold.index) if ctx.folds
                        else RUN_MODEL_FILE)
    model.save(path)
    record = fold_record(ctx, fold, result, confusion, fingerprint, added if n_added else None)
    artifacts.atomic_write_json(artifacts.sidecar_path(path), record)
    if ctx.folds:
        print(f"{tag}{ctx.config['keep_epoch']} {training.objective_metric(ctx.config)} "
              f"{result.kept_value:.4f} "
              f"at epoch {result.kept_epoch}; saved {path}", flush=True)
    return {"path": path, "record": record, "result": result}


def fold_record(ctx: RunContext, fold, result, confusion: ValidationConfusion,
                fingerprint: str, added: dict | None) -> dict[str, Any]:
    """The JSON record saved beside a fold's model (and, promoted, as best.json)."""
    import keras

    from . import training

    run = ctx.run
    return {
        "metric": training.objective_metric(ctx.config), "goal": "maximize",
        "value": result.kept_value,
        "best_epoch": result.kept_epoch, "metrics": result.kept_metrics,
        "config": ctx.config, "run_id": run.id, "project": run.project,
        "sweep_id": os.environ.get("WANDB_SWEEP_ID") or getattr(run, "sweep_id", None),
        "run_dir": str(ctx.run_dir), "class_names": list(ctx.source.class_names),
        "n_classes": ctx.n_classes, "input_shape": [int(ctx.dev.X.shape[1]), 1],
        "dataset": {"name": ctx.source.name, "files": ctx.source.files,
                    "fingerprint": fingerprint, "n_train": len(fold.train),
                    "n_val": len(fold.val), **({"added": added} if added else {})},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": ctx.device,
        "keras_version": keras.__version__, "backend": keras.backend.backend(),
        "stopped": result.stopped, "val_confusion": confusion.total.tolist(),
        "val_records": (sorted(set(fold.val.records.tolist()))
                        if fold.val.records is not None else None),
        **({"val_confusion_by_record": confusion.by_record}
           if confusion.by_record is not None else {}),
        **({"transfer": ctx.transfer_info} if ctx.transfer_info else {}),
        **({"fold": fold.index, "folds": ctx.folds} if ctx.folds else {}),
    }


def record_divergence(ctx: RunContext, message: str) -> int:
    """A diverged run: nothing saved; the error goes to W&B's summary and stderr."""
    summary = {"model": ctx.config["model"], "stopped": False, "promoted": False,
               "error": message}
    ctx.run.summary.update(summary)
    print(f"error: {message}", file=sys.stderr, flush=True)
    return EXIT_NAN


def combine_folds(ctx: RunContext, outcomes: list[dict[str, Any]]) -> tuple[dict, float, int]:
    """The run's record and (value, epoch): fold 1's record, with k-fold's means and the
    cross-validated EC57 table when there are folds."""
    from . import training

    first = outcomes[0]
    record = dict(first["record"])
    if not ctx.folds:
        return record, first["result"].kept_value, first["result"].kept_epoch
    values = [o["result"].kept_value for o in outcomes]
    mean_rows = _mean_history([o["result"].history for o in outcomes])
    sink_all = EpochLog(ctx.run, ctx.config["epochs"])
    for row in mean_rows:
        sink_all(row)
    kept_row = training.kept_row(mean_rows, ctx.config["keep_epoch"],
                                 training.objective_metric(ctx.config))
    kept_keys = set.intersection(*(set(o["result"].kept_metrics) for o in outcomes))
    paths = [o["path"] for o in outcomes]
    kfold = {"folds": ctx.folds, "completed": len(outcomes), "values": values,
             "mean": float(np.mean(values)), "std": float(np.std(values)),
             "best_epochs": [o["result"].kept_epoch for o in outcomes],
             **pooled_ec57([o["record"] for o in outcomes], ctx.source.class_names),
             "models": [str(p) for p in paths], "eval_command": _eval_command(paths)}
    # The promoted file is fold 1's model; the value it competes with is the mean.
    record.update(value=kfold["mean"], best_epoch=int(kept_row["epoch"]),
                  stopped=any(o["result"].stopped for o in outcomes) or ctx.stop.requested,
                  metrics={key: float(np.mean([o["result"].kept_metrics[key] for o in outcomes]))
                           for key in sorted(kept_keys)},
                  kfold=kfold)
    return record, kfold["mean"], int(kept_row["epoch"])


NOT_FINISHED = ("the run was stopped before it finished (SIGTERM: hyperband, the sweep "
                "runner ending, or a stop by hand); only a run that ends by itself is promoted")


def promote(ctx: RunContext, path: Path, record: dict[str, Any]):
    """Offer the run's model to its data set's best-model slot, unless the run was stopped
    (``record['stopped']``); returns (promoted, slot)."""
    from . import artifacts

    slot = artifacts.BestModelSlot(ctx.config["models_dir"], ctx.config["model"])
    if record.get("stopped"):
        _mark_stopped(artifacts.sidecar_path(path))  # so the coordinator does not offer it
        print(f"best model: not promoted: {NOT_FINISHED}; the run's model stays in {path}",
              flush=True)
        return False, slot
    if os.environ.get(PROMOTE_ENV) == PROMOTE_BY_COORDINATOR:
        print("best model: offered by the sweep's coordinator once this run folder is back "
              "on its disk", flush=True)
        return False, slot
    promoted, reason = slot.promote_if_better(path, record)
    print(f"best model {'updated' if promoted else 'kept'}: {slot.model_path} ({reason})",
          flush=True)
    return promoted, slot


def _mark_stopped(record_path: Path) -> None:
    """Say ``stopped`` in the record beside the run's model, which a stop that came after it
    was written (or between folds) left saying otherwise."""
    from . import artifacts

    saved = json.loads(record_path.read_text())
    if not saved.get("stopped"):
        artifacts.atomic_write_json(record_path, {**saved, "stopped": True})


def log_model_artifact(ctx: RunContext, outcomes: list[dict[str, Any]], record: dict[str, Any],
                       promoted: bool) -> None:
    """The run's model file(s) and records as a W&B artifact (offline: kept for sync)."""
    import wandb

    from . import artifacts

    artifact = wandb.Artifact(_artifact_name(ctx.config["model"], ctx.source.name), type="model",
                              metadata={key: record[key] for key in ("metric", "value",
                                                                     "best_epoch", "class_names")})
    for o in outcomes:
        name = o["path"].stem if ctx.folds else "model"
        artifact.add_file(str(o["path"]), name=f"{name}.keras")
        artifact.add_file(str(artifacts.sidecar_path(o["path"])), name=f"{name}.json")
    ctx.run.log_artifact(artifact, aliases=["latest", "best"] if promoted else ["latest"])


def finish(ctx: RunContext, outcomes: list[dict[str, Any]], record: dict[str, Any],
           best_value: float, best_epoch: int, promoted: bool, slot) -> None:
    """The run's summary (in W&B's run record, where the sweep runner reads it) and its
    last lines."""
    first = outcomes[0]
    metric = record["metric"]
    stopped = bool(record.get("stopped")) or ctx.stop.requested
    # The kept epoch's values (best, or last with keep_epoch: last; k-fold: the mean over
    # the folds), whose weights we keep. A sweep on the objective's metric is judged by the
    # highest value logged, which is the kept one with keep_epoch: best; kept_<metric> is
    # the kept one always (contract.kept_metric).
    summary: dict[str, Any] = {
        "model": ctx.config["model"], f"best_{metric}": best_value, "best_epoch": best_epoch,
        metric: best_value, **{kept_metric(m): float(record["metrics"][m])
                               for m in VAL_METRICS if m in record["metrics"]},
        kept_metric(metric): best_value, "stopped": stopped,
        "promoted": promoted, "model_path": str(slot.model_path),
        "run_model_path": str(first["path"])}
    if ctx.folds:
        kfold = record["kfold"]
        summary.update({"folds": ctx.folds, "folds_completed": len(outcomes),
                        f"{metric}_std": kfold["std"], f"fold_{metric}": kfold["values"],
                        "fold_models": kfold["models"], "eval_command": kfold["eval_command"]})
    added_total = first["record"]["dataset"].get("added")
    if added_total:
        summary["train_beats_added"] = added_total
    ctx.run.summary.update(summary)
    _print_done(ctx, record, best_value, best_epoch, stopped, len(outcomes),
                slot.model_path if promoted else first["path"])


def _print_done(ctx: RunContext, record: dict[str, Any], best_value: float, best_epoch: int,
                stopped: bool, completed: int, model_path: Path) -> None:
    note = " (stopped early by request)" if stopped else ""
    if ctx.folds:
        print(f"done: {record['metric']} {best_value:.4f} +- {record['kfold']['std']:.4f} over "
              f"{completed} of {ctx.folds} folds{note}", flush=True)
        print(f"evaluate the {completed}-fold ensemble on the test data:\n  "
              f"{record['kfold']['eval_command']}", flush=True)
    else:
        print(f"done: {ctx.config['keep_epoch']} {record['metric']} {best_value:.4f} at epoch "
              f"{best_epoch}{note}", flush=True)
        print(f"evaluate on the test data:\n  {_eval_command([model_path])}", flush=True)


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

    try:
        run = wandb.init(project=os.environ.get("WANDB_PROJECT", "ecg-sweeps"),
                         config=cli_config, job_type="train")
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
    finally:
        run.finish(exit_code=exit_code)
    return exit_code
