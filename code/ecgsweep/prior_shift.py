"""Each record's class prior, re-estimated from the model's outputs on that record alone.

A model's softmax outputs are calibrated to the class mix it was trained on (its training
beats' class frequencies times their loss weights: ``model_prior``). A patient's record has
a mix of its own: one with hundreds of premature atrial beats, another with none. With the
record's beats but not their labels, the expectation-maximization of Saerens, Latinne and
Decaestecker (2002, "Adjusting the outputs of a classifier to new a priori probabilities")
finds the mix under which the outputs are consistent, and re-weights each beat's
probabilities to it (``adapt_record``).

Only the balance of N and S is re-estimated (``ADAPTED_CLASSES``): the two are told apart
by timing, and their mix is what differs most between patients. The other classes keep the
model's shares: V and F are told by shape (the V templates, ``beat_templates``, pool V
within a record), and F's few training beats give EM nothing steady to fit, so a free F
share grows on normal beats (measured on DS1 in docs/results-log.md).
``prior_adaptation`` sets how far the outputs move, in log space, from the model's (0) to
the re-estimated mix's (1). Each record is adapted on its own: no beat's verdict depends on
another patient.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

ADAPTED_CLASSES = ("N", "S")
EM_ITERATIONS = 100
EM_TOLERANCE = 1e-6
_FLOOR = 1e-12


def model_prior(y: np.ndarray, n_classes: int, weights: Mapping[int, float] | None) -> np.ndarray:
    """The class mix a model trained on labels ``y`` with loss ``weights`` (None: all 1)
    is calibrated to: each class's count times its weight, normalized. A class without a
    training beat counts as one, so every class keeps a share to be re-estimated from."""
    counts = np.maximum(np.bincount(np.asarray(y, dtype=int), minlength=n_classes), 1)
    w = np.array([1.0 if weights is None else float(weights.get(c, 1.0))
                  for c in range(n_classes)])
    mix = counts[:n_classes] * w
    return mix / mix.sum()


def estimate_mix(probs: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The class mix of the beats whose outputs (calibrated to ``prior``) are ``probs``:
    EM, from the model's own mix, until no share moves by more than EM_TOLERANCE."""
    mix = prior.copy()
    for _ in range(EM_ITERATIONS):
        new = reweighted(probs, prior, mix).mean(axis=0)
        done = np.abs(new - mix).max() < EM_TOLERANCE
        mix = new
        if done:
            break
    return mix


def reweighted(probs: np.ndarray, prior: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """``probs`` (calibrated to ``prior``) re-weighted to the class mix ``mix``."""
    out = probs * (mix / np.maximum(prior, _FLOOR))
    return out / np.maximum(out.sum(axis=1, keepdims=True), _FLOOR)


def adapt_record(probs: np.ndarray, prior: np.ndarray, strength: float,
                 keep: Sequence[int] = ()) -> np.ndarray:
    """One record's beats' probabilities adapted to the mix EM estimates for it, among the
    classes not in ``keep`` (whose columns stay as the model gives them), then moved
    ``strength`` of the way from the model's outputs in log space."""
    others = [c for c in range(probs.shape[1]) if c not in keep]
    rest = probs[:, others].sum(axis=1, keepdims=True)
    within = probs[:, others] / np.maximum(rest, _FLOOR)
    prior_within = prior[others] / prior[others].sum()
    adapted = probs.copy()
    adapted[:, others] = reweighted(within, prior_within,
                                    estimate_mix(within, prior_within)) * rest
    if strength >= 1.0:
        return adapted
    moved = np.exp((1.0 - strength) * np.log(np.maximum(probs, _FLOOR))
                   + strength * np.log(np.maximum(adapted, _FLOOR)))
    return moved / moved.sum(axis=1, keepdims=True)


def adapt_by_record(probs: np.ndarray, records: np.ndarray, prior: Sequence[float],
                    strength: float, keep: Sequence[int] = ()) -> np.ndarray:
    """``adapt_record`` on each record's beats on their own (``records``: one per row)."""
    prior = np.asarray(prior, dtype=np.float64)
    if prior.shape != (probs.shape[1],):
        raise ValueError(f"the model's class prior has {prior.size} shares for "
                         f"{probs.shape[1]} classes")
    records = np.asarray(records).astype(str)
    out = probs.copy()
    for record in np.unique(records):
        rows = records == record
        out[rows] = adapt_record(probs[rows], prior, strength, keep)
    return out


def kept_columns(class_names: Sequence[str]) -> list[int]:
    """The columns whose shares stay as the model gives them: every class but
    ADAPTED_CLASSES."""
    return [i for i, name in enumerate(class_names) if name not in ADAPTED_CLASSES]


def mean_prior(priors: Sequence[Sequence[float] | None]) -> list[float] | None:
    """The class prior of models averaged together (an ensemble): the mean of theirs;
    None when one of them has none."""
    if not priors or any(p is None for p in priors):
        return None
    return np.mean(np.asarray(priors, dtype=np.float64), axis=0).tolist()
