"""The final step before promotion: the model a run saves as its own and offers to the
best-model slot, ``<run dir>/model.keras`` with its record ``model.json``.

A single split's model is the one it trained. A k-fold run (``folds`` >= 2) saves one
model whose predictions are those its cross-validation measured (``final_model``):

- ``ensemble`` (default): the k fold models in one Keras model, which takes the fold
  models' inputs, calls each as a nested layer and averages their softmax outputs; it
  saves, loads and predicts as any model does, on every Keras backend. The per-record
  steps after the model (the S gate, the V templates: ``training.per_record_steps``) run
  once on the averaged probabilities, as ``evaluation.predict_proba`` runs them for the
  fold models given together (``code/eval.py --model fold1.keras --model ...``).
- ``refit``: one model trained after the folds on every development beat, for the rounded
  mean of the epochs the folds kept (keep_epoch last: the configured epochs, unless early
  stopping ended the folds sooner), with the run's seed. It has no validation data, so
  nothing of it is scored: its record carries the k-fold figures.

Either record holds the k-fold mean as its value and says which it is (``final_model``;
an ensemble lists its ``members``). A run stopped before its end builds none: it is never
promoted, and its folds stay in its run folder (``run_end``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import prior_shift
from .contract import ENSEMBLE_MODEL_NAME, RUN_MODEL_FILE
from .folds import FoldOutcome, PrefixedLog
from .model_record import ModelRecord, record_path
from .run_record import final_record
from .run_start import RunContext

ENSEMBLE, REFIT = "ensemble", "refit"


@dataclass(frozen=True)
class FinalModel:
    """The model file a run offers to the best-model slot, and its record."""

    path: Path
    record: ModelRecord


def final_model(ctx: RunContext, outcomes: list[FoldOutcome], record: ModelRecord) -> FinalModel:
    """The run's own model: a single split's, or a k-fold run's ensemble or refit; a
    stopped k-fold run's fold 1 (kept where it is, never promoted)."""
    if not ctx.folds or record.stopped:
        return FinalModel(outcomes[0].path, record)
    if ctx.config["final_model"] == REFIT:
        return refit(ctx, outcomes, record)
    return save_ensemble(ctx, outcomes, record)


def ensemble_model(paths: Sequence[str | Path]):
    """One Keras model that averages the softmax outputs of the models saved at ``paths``
    (which share their inputs): each is a nested layer named ``fold<i>``."""
    import keras

    from . import models as _families  # noqa: F401  (registers the custom layers)

    members = [keras.models.load_model(p, compile=False) for p in paths]
    first = members[0]

    def like(tensor):
        return keras.Input(shape=tensor.shape[1:], dtype=tensor.dtype, name=tensor.name)

    inputs = (like(first.inputs[0]) if len(first.inputs) == 1
              else {t.name: like(t) for t in first.inputs})
    outputs = []
    for i, member in enumerate(members, start=1):
        member.name = f"fold{i}"  # nested layers need names of their own
        outputs.append(member(inputs))
    mean = (keras.layers.Average(name="fold_mean")(outputs) if len(outputs) > 1
            else outputs[0])
    return keras.Model(inputs, mean, name=ENSEMBLE_MODEL_NAME)


def save_ensemble(ctx: RunContext, outcomes: list[FoldOutcome], record: ModelRecord) -> FinalModel:
    """The fold models averaged in one file, saved as the run's model with its record."""
    paths = [o.path for o in outcomes]
    path = ctx.run_dir / RUN_MODEL_FILE
    ensemble_model(paths).save(path)
    final = final_record(record, ENSEMBLE, n_train=len(ctx.dev), best_epoch=record.best_epoch,
                         class_prior=prior_shift.mean_prior([o.record.class_prior
                                                             for o in outcomes]),
                         members=[str(p) for p in paths])
    final.write(record_path(path))
    print(f"final model: the {len(paths)} fold models averaged in one file, {path} "
          f"(final_model {ENSEMBLE})", flush=True)
    return FinalModel(path, final)


def refit_epochs(kept_epochs: Sequence[int]) -> int:
    """The epochs a refit trains: the folds' kept epochs' mean, rounded half up."""
    return max(1, math.floor(float(np.mean(kept_epochs)) + 0.5))


def refit_config(config: dict[str, Any], epochs: int) -> dict[str, Any]:
    """The run's config for a refit of ``epochs`` epochs: every epoch kept, nothing that
    follows validation (there is none)."""
    return {**config, "epochs": epochs, "keep_epoch": "last", "early_stopping_patience": 0}


def refit(ctx: RunContext, outcomes: list[FoldOutcome], record: ModelRecord) -> FinalModel:
    """One model trained on every development beat (those the S gate clears left out and
    the rest rebalanced, as in a fold's training part), for ``refit_epochs`` epochs with
    the run's seed; saved as the run's model. A stop before its first epoch leaves fold 1's
    model, marked stopped."""
    from . import imbalance, training
    from .fold_training import build_model
    from .folds import with_other_lead

    seed = int(ctx.config["seed"])
    epochs = refit_epochs([o.result.kept_epoch for o in outcomes])
    config = refit_config(ctx.config, epochs)
    every_beat = with_other_lead(ctx.dev, ctx.data.other_lead, "refit")
    train, added = imbalance.rebalance(training.beats_outside_s_gate(every_beat, config), config,
                                       ctx.class_names, seed=seed)
    print(f"final model: refit on all {len(train)} development beats for {epochs} epochs "
          f"(the folds kept epochs {[o.result.kept_epoch for o in outcomes]}), seed {seed}; "
          "no validation data: the refit itself is not scored, its record carries the "
          f"{len(outcomes)}-fold figures", flush=True)
    training.seed_everything(seed)
    model, fine_tune = build_model(config, int(ctx.dev.X.shape[1]), ctx.n_classes)
    result = training.fit(model, config, train, None, ctx.class_names,
                          PrefixedLog(ctx.run, "refit/", "refit", epochs), ctx.stop, fine_tune=fine_tune)
    if not result.history or result.stopped:
        return FinalModel(outcomes[0].path, dataclasses.replace(record, stopped=True))
    path = ctx.run_dir / RUN_MODEL_FILE
    model.save(path)
    n_added = sum(n for per_class in added.values() for n in per_class.values())
    final = final_record(record, REFIT, n_train=len(train), best_epoch=epochs,
                         class_prior=result.class_prior, added=added if n_added else None)
    final.write(record_path(path))
    print(f"final model: {path} (final_model {REFIT})", flush=True)
    return FinalModel(path, final)
