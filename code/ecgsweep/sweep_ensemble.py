"""A sweep's best ensemble: the top K runs' saved models, their probabilities averaged.

    python code/sweep.py ensemble SWEEP_ID --top K

No retraining: each run folder keeps model.keras and its record (model.json). The members
are scored with ``evaluation.predict_proba`` (code/eval.py's ensemble path) on the runs' own
validation split, rebuilt from their config as the run made it, and on the test data; the
best single run is printed beside the ensemble. The runs are read through the sweep store's
public reader and ranked as the sweep's leaderboard ranks them (``sweep.ranking``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from . import params
from .cli import UserError, script_command
from .contract import RUN_MODEL_FILE
from .model_record import ModelRecord
from .sweep import config as sweep_config
from .sweep.bookkeeping import RUNS_FOLDER_KEY
from .sweep.commands import default_console
from .sweep.hints import another_runs_folder, sweep_command
from .sweep.ranking import metric_and_goal, ranked
from .sweep.store import DEFAULT_STORE, Store, open_store, sqlite_errors
from .sweep_hooks import ECG_PROGRAM, TRAIN_PROGRAM

# Config keys that fix the development data and its validation split (folds.development_folds).
SPLIT_KEYS = ("dataset", "data_dir", "seed", "split_seed", "val_fraction", "max_train_beats",
              "folds", "val_split", "classes")


def model_path(row: dict) -> Path | None:
    """The run's saved model: <wandb run folder>/model.keras (files_dir is its files/)."""
    return Path(row["files_dir"]).parent / RUN_MODEL_FILE if row.get("files_dir") else None


def split_of(record: ModelRecord) -> dict[str, Any]:
    """What a run's validation split depends on: its data, seed, fraction, cap and folds."""
    out = {k: record.config.get(k) for k in SPLIT_KEYS}
    out["data fingerprint"] = record.dataset.fingerprint
    return out


def check_same_split(members: list[tuple[str, ModelRecord]]) -> None:
    """Refuse (UserError) unless every member was trained on the same data and split."""
    if not members:
        return
    first_id, first = members[0][0], split_of(members[0][1])
    if first["folds"] is not None and int(first["folds"]) >= 2:
        raise UserError(f"run {first_id} used {first['folds']}-fold cross-validation: its models "
                        "have no single validation split to score an ensemble on; use a sweep "
                        "with folds 0 or 1")
    for run_id, record in members[1:]:
        theirs = split_of(record)
        for key, value in first.items():
            if theirs[key] != value:
                raise UserError(
                    f"runs {first_id} and {run_id} were trained on different data or splits "
                    f"({key} {value!r} vs {theirs[key]!r}); an ensemble needs one validation "
                    "split: lower --top, or fix that parameter in the sweep")


def pick_members(rows: list[dict], goal: str, top: int) -> list[tuple[dict, Path]]:
    """The top ``top`` runs with their model files; a clear error when there are not enough."""
    best_first = ranked(rows, goal)
    if top < 1:
        raise UserError(f"--top {top}: give 1 or more runs")
    picked = [(r, model_path(r)) for r in best_first[:top]]
    missing = [r["run_id"] for r, p in picked if p is None or not p.is_file()]
    if not best_first:
        raise UserError("the sweep has no finished runs (nor runs stopped early) with a "
                        "metric, so no models to average; let some runs finish first "
                        "(--resume continues a sweep that was not stopped or cancelled)")
    if len(best_first) < top:
        raise UserError(f"--top {top}: the sweep has only {len(best_first)} runs with a "
                        f"metric, finished or stopped early; use --top {len(best_first)} or "
                        "run more")
    if missing:
        raise UserError(f"runs {', '.join(missing)} kept no {RUN_MODEL_FILE} in their run "
                        "folder (was it deleted, or did the program not save one?); lower --top")
    return picked


def validation_split(record: ModelRecord) -> Any:
    """The runs' validation beats, rebuilt as the run's own data step and split make them."""
    from .data import datasets
    from .folds import split_seed
    from .run_start import load_protocol_data

    defaults = {name: p.default for name, p in params.all_params().items()}
    # A record that names no val_split predates the choice: its split was random.
    cfg = {**defaults, "val_split": "random", **record.config}
    source = datasets.resolve_source(cfg["dataset"], cfg["data_dir"])
    dev = load_protocol_data(cfg, source).dev
    want = record.dataset.fingerprint
    if want and datasets.fingerprint(dev) != want:
        raise UserError(f"the {cfg['dataset']} data in {cfg['data_dir']} changed since the runs "
                        "were trained (fingerprint differs); their validation split cannot be "
                        "rebuilt")
    _, val = datasets.holdout_split(dev, cfg["val_split"], cfg["val_fraction"],
                                    split_seed(cfg), cfg["max_train_beats"])
    return val


def scores(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import confusion_matrix

    from . import ec57

    pred = probs.argmax(axis=1)
    cm = confusion_matrix(y, pred, labels=list(range(probs.shape[1])))
    return {"macro_f1": ec57.macro_f1(cm), "accuracy": float((pred == y).mean())}


def evaluate_top(store: Store, top: int, batch_size: int = 1024) -> dict[str, Any]:
    """Score the best run alone and the mean of the top ``top`` runs on validation and test."""
    from . import evaluation

    cfg = store.get("config")
    if not ECG_PROGRAM.owns(cfg, store.get(RUNS_FOLDER_KEY)):  # judged where the runs ran
        runs = (f"another program ({cfg['program']})" if cfg.get("program")
                else "the program its command names")
        raise UserError(f"the sweep runs {runs}, not this project's {TRAIN_PROGRAM}: its runs "
                        "keep no model of this project to average; the ensemble is for sweeps "
                        f"of {TRAIN_PROGRAM}")
    goal = metric_and_goal(sweep_config.engine_config(cfg))[1]
    picked = pick_members(store.runs(), goal, top)
    members = [evaluation.load_model(p) for _, p in picked]
    check_same_split([(r["run_id"], lm.record) for (r, _), lm in zip(picked, members)])
    val = validation_split(members[0].record)
    test, where = evaluation.test_data_for(members[0], None, None)
    out: dict[str, Any] = {"runs": [r["run_id"] for r, _ in picked],
                           "models": [str(p) for _, p in picked], "test_data": where}
    for name, split in (("validation", val), ("test", test)):
        for lm in members:
            evaluation.check_fit(lm, split, f"the {name} data")
        best = evaluation.predict_proba(members[:1], split, batch_size)
        together = evaluation.predict_proba(members, split, batch_size)  # as code/eval.py does
        out[name] = {"best": scores(split.y, best), "ensemble": scores(split.y, together)}
    return out


def check_runs_folder(store: Store, sweep_id: str, top: int) -> None:
    """The runs' data and models are named from the folder they ran in: an ensemble made
    from another folder would read other files there, so it is refused with the command
    to run from theirs."""
    runs_folder = store.get(RUNS_FOLDER_KEY)
    if not another_runs_folder(runs_folder):
        return
    command = (f"{sweep_command('ensemble', runs_folder)} {sweep_id} --top {top} "
               f"--store {os.path.abspath(store.folder.parent)}")
    raise UserError(f"sweep {sweep_id}'s runs ran in {runs_folder} and name their data and "
                    f"models from there; run it from that folder: cd {runs_folder} && "
                    f"{command}")


def ensemble_command(sweep_id: str, *, top: int, store_root: str = DEFAULT_STORE,
                     console: Console | None = None) -> int:
    """Print the best single run against the mean of the top ``top`` runs' models."""
    from rich.table import Table

    from . import backend

    console = console or default_console()
    store = open_store(store_root, sweep_id, read_only=True)
    with sqlite_errors(store.path):
        check_runs_folder(store, sweep_id, top)
    backend.select()  # before Keras loads: KERAS_BACKEND checked, TensorFlow's notes off
    with sqlite_errors(store.path):
        result = evaluate_top(store, top)
    t = Table(title=f"sweep {sweep_id}: best run against the top {top} averaged")
    for col in ("", "val macro-F1", "val accuracy", "test macro-F1", "test accuracy"):
        t.add_column(col)
    for key, label in (("best", f"best run {result['runs'][0]}"),
                       ("ensemble", f"ensemble of {', '.join(result['runs'])}")):
        t.add_row(label, *(f"{result[split][key][m]:.4f}" for split in ("validation", "test")
                           for m in ("macro_f1", "accuracy")))
    console.print(t)
    console.print(f"test data: {result['test_data']}; full report: "
                  f"{script_command('eval.py', 'eval')} "
                  + " ".join(f"--model {p}" for p in result["models"]), markup=False,
                  soft_wrap=True)
    return 0
