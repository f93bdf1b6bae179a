"""Beat morphology relative to the beat's own record (``beat_normalization``).

The beats of the Kaggle format are each scaled to [0, 1] on their own, so a patient's
typical beat shape (a bundle branch block, a low T wave) is the same for every beat of
that patient and unlike other patients'. ``record_median`` gives the model, beside the
beat, a second channel: the beat minus the median beat of its record (sample by sample).
A patient's usual beat then reads near zero in that channel whatever its shape, and an
ectopic beat stands out against its own patient's. Like the record's mean RR interval
(``rr_normalization: record``) it is an unsupervised statistic of the record, taken the
same way on training, validation and test beats: no label is read, and each beat sees
only the beats of its own record in the split it is fed with.
"""

from __future__ import annotations

import numpy as np

MODES = ("none", "record_median")


def channels(mode: str) -> int:
    """Input channels a model gets for ``mode``: the beat, and the beat minus its record's
    median beat with ``record_median``."""
    if mode not in MODES:
        raise ValueError(f"beat_normalization {mode!r} is not one of {', '.join(MODES)}")
    return 1 if mode == "none" else 2


def record_median_beats(X: np.ndarray, records: np.ndarray) -> np.ndarray:
    """For each beat (row of ``X``), the sample-wise median of the beats of its record."""
    X = np.asarray(X, dtype=np.float32)
    records = np.asarray(records)
    if len(records) != len(X):
        raise ValueError(f"{len(X)} beats but {len(records)} record names")
    medians = np.empty_like(X)
    for name in np.unique(records):
        rows = records == name
        medians[rows] = np.median(X[rows], axis=0)
    return medians


def beat_channels(X: np.ndarray, records: np.ndarray | None, mode: str) -> np.ndarray:
    """The model's beat input (n, length, channels(mode)) for ``mode``."""
    X = np.asarray(X, dtype=np.float32)
    if channels(mode) == 1:
        return X[..., None]
    if records is None:
        raise ValueError(f"beat_normalization={mode} needs each beat's record (the beat sidecar)")
    relative = X - record_median_beats(X, records)
    return np.ascontiguousarray(np.stack([X, relative], axis=-1))
