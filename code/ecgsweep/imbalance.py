"""Class imbalance: SMOTE, synthetic-beat augmentation and the focal loss.

83% of MIT-BIH beats are normal, so a network that ignores the rare classes already
scores 0.83 accuracy. Besides per-class loss weights (``class_weight`` in training.py)
a run can choose, from its config:

- ``resample: smote``: SMOTE (Chawla et al., "SMOTE: Synthetic Minority Over-sampling
  Technique", JAIR 16, 2002; the imbalanced-learn implementation) draws new beats on the
  segments between a beat and its nearest neighbours of the same class, until every
  class has as many beats as the majority class.
- ``augment_synthetic: <fraction>``: adds beats from our synthetic generator
  (``data/synth.py``) of the rarest classes, as the published "mitbih_with_synthetic"
  sets do with GAN beats. ``fraction`` x the training set size beats are added, raising
  the rarest classes to a common level, never above the majority class.
- ``loss: focal``: the focal loss of Lin et al. ("Focal Loss for Dense Object Detection",
  ICCV 2017), ``-alpha_t (1 - p_t)^gamma log p_t``, which down-weights beats the model
  already gets right. Its ``alpha_t`` is the run's ``class_weight`` (Keras multiplies each
  beat's loss by its class weight), so ``loss: focal`` with ``class_weight: balanced`` is
  the alpha-balanced form of the paper.

Only training beats are touched: ``rebalance`` is called on a training split after the
validation split (or fold) has been taken, so validation and test data stay real, and
the reported ``val_loss`` stays the unweighted cross-entropy (computed by
``training._validation_metrics`` from the predicted probabilities, whatever the loss).
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import keras
import numpy as np
from keras import ops

from .cli import UserError
from .data.datasets import MITBIH_CLASSES, PTBDB_CLASSES, Split

SMOTE_K_NEIGHBORS = 5  # imbalanced-learn's default


def _child_seed(*entropy: int) -> int:
    """An independent 32-bit seed for each (run seed, fold, class, purpose)."""
    return int(np.random.SeedSequence([int(e) for e in entropy]).generate_state(1)[0])


# --------------------------------------------------------------------------- SMOTE


def smote(train: Split, seed: int, class_names: Sequence[str] = (),
          k_neighbors: int = SMOTE_K_NEIGHBORS) -> tuple[Split, dict[int, int]]:
    """SMOTE every class up to the majority count; returns (original + new beats, added per class).

    The original beats come first, unchanged and in order; only new beats of non-majority
    classes follow. A class with fewer beats than ``k_neighbors + 1`` is interpolated
    among as many neighbours as it has; one with a single beat cannot be, and is skipped
    with a warning that names it.
    """
    from imblearn.over_sampling import SMOTE

    labels, counts = np.unique(train.y, return_counts=True)
    if len(labels) < 2:
        return train, {}
    target = int(counts.max())
    new_X, new_y, added = [train.X], [train.y], {}
    for label, count in zip(labels.tolist(), counts.tolist()):
        if count == target:
            continue
        name = class_names[label] if label < len(class_names) else str(label)
        if count < 2:
            warnings.warn(f"SMOTE: class {name} (label {label}) has {count} training beat; "
                          "it needs 2 or more to interpolate, so it is not oversampled",
                          stacklevel=2)
            continue
        k = min(k_neighbors, count - 1)
        if k < k_neighbors:
            warnings.warn(f"SMOTE: class {name} (label {label}) has only {count} training "
                          f"beats; using k_neighbors={k} instead of {k_neighbors}", stacklevel=2)
        sampler = SMOTE(sampling_strategy={label: target}, k_neighbors=k,
                        random_state=_child_seed(seed, label, 1))
        X_res, y_res = sampler.fit_resample(train.X, train.y)
        # imbalanced-learn returns the input rows first, then the new ones.
        new_X.append(np.asarray(X_res[len(train):], dtype=np.float32))
        new_y.append(np.asarray(y_res[len(train):], dtype=train.y.dtype))
        added[label] = int(len(y_res) - len(train))
    if not added:
        return train, {}
    return Split(np.concatenate(new_X).astype(np.float32, copy=False),
                 np.concatenate(new_y)), added


# --------------------------------------------------------------------------- synthetic beats


def generator_for(class_names: Sequence[str]) -> str:
    """The synthetic generator ("mitbih" or "ptbdb") whose classes are these."""
    if tuple(class_names) == MITBIH_CLASSES:
        return "mitbih"
    if tuple(class_names) == PTBDB_CLASSES:
        return "ptbdb"
    raise UserError(f"config key 'augment_synthetic': the synthetic generator draws MIT-BIH "
                    f"({' '.join(MITBIH_CLASSES)}) or PTB ({' '.join(PTBDB_CLASSES)}) beats, not "
                    f"classes {', '.join(class_names) or '(unknown)'}; use augment_synthetic=0 "
                    "for this data set")


def water_fill(counts: Sequence[int], budget: int) -> np.ndarray:
    """Beats to add per class: raise the smallest classes to a common level, at most the largest.

    Returns an int array; its sum is ``budget``, or less when ``budget`` would go past a
    fully balanced set. Leftover single beats go to the classes that had fewest.
    """
    counts = np.asarray(counts, dtype=np.int64)
    top = int(counts.max()) if len(counts) else 0
    deficit = top - counts
    if budget >= deficit.sum():
        return deficit
    order = np.argsort(counts, kind="stable")
    level = int(counts[order[0]])
    remaining = int(budget)
    for i in range(len(order)):
        group = order[: i + 1]
        next_level = int(counts[order[i + 1]]) if i + 1 < len(order) else top
        need = (next_level - level) * len(group)
        if need >= remaining:
            step, extra = divmod(remaining, len(group))
            add = np.zeros_like(counts)
            add[group] = level + step - counts[group]
            add[group[:extra]] += 1
            return add
        remaining -= need
        level = next_level
    return deficit  # not reached: budget < deficit.sum() ends inside the loop


def augment_synthetic(train: Split, fraction: float, class_names: Sequence[str],
                      seed: int) -> tuple[Split, dict[int, int]]:
    """Add ``round(fraction * len(train))`` synthetic beats of the rarest classes.

    Beats come from ``synth.make_class`` (the MIT-BIH or PTB generator, by the class
    names), so they have the Kaggle format of the real ones. Returns (original beats
    followed by the new ones, added per class).
    """
    from .data import synth

    if fraction <= 0 or len(train) == 0:
        return train, {}
    dataset = generator_for(class_names)
    if train.X.shape[1] != synth.BEAT_LENGTH:
        raise UserError(f"config key 'augment_synthetic': the synthetic generator draws beats "
                        f"of {synth.BEAT_LENGTH} samples at {synth.SAMPLE_RATE_HZ} Hz (the Kaggle "
                        f"layout), but the data has {train.X.shape[1]} per beat; use "
                        "augment_synthetic=0 for this data set")
    counts = np.bincount(train.y, minlength=len(class_names))[: len(class_names)]
    add = water_fill(counts, int(round(fraction * len(train))))
    new_X, new_y, added = [train.X], [train.y], {}
    for label, n in enumerate(add.tolist()):
        if n <= 0:
            continue
        new_X.append(synth.make_class(label, n, _child_seed(seed, label, 2), dataset))
        new_y.append(np.full(n, label, dtype=train.y.dtype))
        added[label] = n
    if not added:
        return train, {}
    return Split(np.concatenate(new_X).astype(np.float32, copy=False),
                 np.concatenate(new_y)), added


# --------------------------------------------------------------------------- both


def rebalance(train: Split, config: Mapping[str, Any], class_names: Sequence[str],
              seed: int) -> tuple[Split, dict[str, dict[str, int]]]:
    """Apply the config's augment_synthetic, then resample, to a training split.

    Returns the new training split and what was added, by method and class name (e.g.
    ``{"synthetic": {"F": 120}, "smote": {"S": 900, ...}}``). Synthetic beats come first so
    that SMOTE balances what is left with interpolations of real and synthetic beats.
    """
    def named(added: dict[int, int]) -> dict[str, int]:
        return {(class_names[c] if c < len(class_names) else str(c)): n for c, n in added.items()}

    report: dict[str, dict[str, int]] = {}
    fraction = float(config.get("augment_synthetic", 0.0))
    if fraction > 0:
        train, added = augment_synthetic(train, fraction, class_names, seed)
        report["synthetic"] = named(added)
    if config.get("resample", "none") == "smote":
        train, added = smote(train, seed, class_names)
        report["smote"] = named(added)
    return train, report


# --------------------------------------------------------------------------- focal loss


@keras.saving.register_keras_serializable(package="ecgsweep")
class SparseCategoricalFocalLoss(keras.losses.Loss):
    """Focal loss on integer labels and softmax probabilities (Lin et al. 2017).

    Per beat: ``-alpha[y] * (1 - p_y)^gamma * log(p_y)``, with ``p_y`` the predicted
    probability of the true class, clipped to [epsilon, 1 - epsilon] as Keras clips for
    cross-entropy. ``gamma = 0`` without ``alpha`` is the sparse categorical cross-entropy.
    ``alpha`` (one weight per class) is optional; runs leave it unset and weight classes
    through ``class_weight``, which has the same effect. Written with ``keras.ops`` only.
    """

    def __init__(self, gamma: float = 2.0, alpha: Sequence[float] | None = None,
                 name: str = "sparse_categorical_focal_loss",
                 reduction: str = "sum_over_batch_size", dtype: Any = None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if gamma < 0:
            raise ValueError(f"focal loss: gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.alpha = None if alpha is None else [float(a) for a in alpha]

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        y_true = ops.cast(y_true, "int32")
        one_hot = ops.one_hot(y_true, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        eps = keras.config.epsilon()
        p_t = ops.clip(ops.sum(one_hot * y_pred, axis=-1), eps, 1.0 - eps)
        loss = -ops.power(1.0 - p_t, self.gamma) * ops.log(p_t)
        if self.alpha is not None:
            loss = loss * ops.take(ops.convert_to_tensor(self.alpha, dtype=y_pred.dtype), y_true)
        return loss

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


def make_loss(config: Mapping[str, Any]):
    """The training loss the config asks for (what ``model.compile(loss=...)`` takes)."""
    if config.get("loss", "crossentropy") == "focal":
        return SparseCategoricalFocalLoss(gamma=float(config.get("focal_gamma", 2.0)))
    return "sparse_categorical_crossentropy"
