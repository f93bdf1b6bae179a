"""The sweep's best ensemble: the top K runs' saved models, their probabilities averaged.

    python code/sweep.py ensemble SWEEP_ID --top K

No retraining: each run folder keeps model.keras and its record (model.json, see run.py).
The members are scored with ``evaluation.predict_proba`` (code/eval.py's ensemble path) on
the runs' own validation split, rebuilt from their config as run.py made it, and on the
test data; the best single run is printed beside the ensemble.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..cli import UserError
from .store import FINISHED, STOPPED, Store
from .report_data import finite

MODEL_FILE = "model.keras"  # what run.py saves in the run folder (one split, no k-fold)

# Config keys that fix the development data and its validation split (run.development_folds).
SPLIT_KEYS = ("dataset", "data_dir", "seed", "split_seed", "val_fraction", "max_train_beats",
              "folds", "val_split", "classes")


def ranked_runs(rows: list[dict], goal: str) -> list[dict]:
    """Finished (or hyperband-stopped) runs with a metric, best first."""
    sign = -1.0 if goal == "maximize" else 1.0
    done = [r for r in rows if r["state"] in (FINISHED, STOPPED) and finite(r.get("metric_best"))]
    return sorted(done, key=lambda r: sign * float(r["metric_best"]))


def model_path(row: dict) -> Path | None:
    """The run's saved model: <wandb run folder>/model.keras (files_dir is its files/)."""
    return Path(row["files_dir"]).parent / MODEL_FILE if row.get("files_dir") else None


def split_of(record: dict) -> dict[str, Any]:
    """What a run's validation split depends on: its data, seed, fraction, cap and folds."""
    cfg = record.get("config") or {}
    out = {k: cfg.get(k) for k in SPLIT_KEYS}
    out["data fingerprint"] = (record.get("dataset") or {}).get("fingerprint")
    return out


def check_same_split(members: list[tuple[str, dict]]) -> None:
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
    ranked = ranked_runs(rows, goal)
    if top < 1:
        raise UserError(f"--top {top}: give 1 or more runs")
    picked = [(r, model_path(r)) for r in ranked[:top]]
    missing = [r["run_id"] for r, p in picked if p is None or not p.is_file()]
    if not ranked:
        raise UserError("the sweep has no finished runs with a metric, so no models to "
                        "average; let some runs finish first (--resume continues it)")
    if len(ranked) < top:
        raise UserError(f"--top {top}: the sweep has only {len(ranked)} finished runs with a "
                        f"metric; use --top {len(ranked)} or run more")
    if missing:
        raise UserError(f"runs {', '.join(missing)} kept no {MODEL_FILE} in their run folder "
                        "(was it deleted, or did the program not save one?); lower --top")
    return picked


def validation_split(record: dict) -> Any:
    """The runs' validation beats, rebuilt as run.development_folds makes them."""
    from ..data import datasets

    cfg = record["config"]
    from ..run import load_protocol_data, split_seed  # the run's own data step and seed

    source = datasets.resolve_source(cfg["dataset"], cfg["data_dir"])
    cfg = {"classes": "aami5", "rr_features": False, "beat_normalization": "none",
           "split_seed": -1, **cfg}
    dev = load_protocol_data(cfg, source)
    want = (record.get("dataset") or {}).get("fingerprint")
    if want and datasets.fingerprint(dev) != want:
        raise UserError(f"the {cfg['dataset']} data in {cfg['data_dir']} changed since the runs "
                        "were trained (fingerprint differs); their validation split cannot be "
                        "rebuilt")
    _, val = datasets.holdout_split(dev, cfg.get("val_split", "random"), cfg["val_fraction"],
                                    split_seed(cfg), cfg["max_train_beats"])
    return val


def scores(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    pred = probs.argmax(axis=1)
    return {"macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
            "accuracy": float(accuracy_score(y, pred))}


def evaluate_top(store: Store, top: int, batch_size: int = 1024) -> dict[str, Any]:
    """Score the best run alone and the mean of the top ``top`` runs on validation and test."""
    from .. import evaluation
    from . import config as sweep_config

    m = sweep_config.engine_config(store.get("config")).get("metric") or {}
    picked = pick_members(store.runs(), m.get("goal", "minimize"), top)
    members = [evaluation.load_model(p) for _, p in picked]
    check_same_split([(r["run_id"], lm.record) for (r, _), lm in zip(picked, members)])
    val = validation_split(members[0].record)
    test, where = evaluation.test_data_for(members[0], None, None)
    out: dict[str, Any] = {"runs": [r["run_id"] for r, _ in picked],
                           "models": [str(p) for _, p in picked], "test_data": where}
    for name, split in (("validation", val), ("test", test)):
        for lm in members:
            evaluation.check_fit(lm, split, f"the {name} data")
        each = [evaluation.predict_proba([lm], split, batch_size) for lm in members]
        out[name] = {"best": scores(split.y, each[0]),
                     "ensemble": scores(split.y, np.mean(each, axis=0))}
    return out
