"""How a step after the model changes a beat's call: the probability of some classes moves,
whole, to another class, so each row still sums to 1 and the call follows the argmax."""

from __future__ import annotations

import numpy as np

from .data.datasets import MITBIH_CLASSES

# The columns of the classes the steps after the model move probability between.
N_INDEX, S_INDEX, V_INDEX = (MITBIH_CLASSES.index(c) for c in ("N", "S", "V"))


def move_probability(probs: np.ndarray, rows: np.ndarray, to_index: int,
                     from_indices: tuple[int, ...]) -> np.ndarray:
    """A copy of ``probs`` (n, k) in which the beats of ``rows`` (a mask or indexes) have
    the probability of the classes ``from_indices`` added to class ``to_index``."""
    moved = np.asarray(probs, dtype=np.float64).copy()
    for index in from_indices:
        moved[rows, to_index] += moved[rows, index]
        moved[rows, index] = 0.0
    return moved
