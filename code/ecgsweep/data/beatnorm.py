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


def channels(mode: str, leads: int = 1) -> int:
    """Input channels a model gets for ``mode`` and rows of ``leads`` leads: each lead's
    beat, and with ``record_median`` each lead's beat minus its record's median beat."""
    if mode not in MODES:
        raise ValueError(f"beat_normalization {mode!r} is not one of {', '.join(MODES)}")
    return leads if mode == "none" else 2 * leads


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


def beat_width(row_width: int, leads: int) -> int:
    """Samples per beat in rows of ``leads`` leads side by side; ValueError when the rows
    cannot hold them."""
    if leads < 1 or row_width % leads:
        raise ValueError(f"rows of {row_width} samples do not hold {leads} leads of equal width")
    return row_width // leads


def beat_channels(X: np.ndarray, records: np.ndarray | None, mode: str,
                  leads: int = 1) -> np.ndarray:
    """The model's beat input (n, width, channels(mode, leads)) for rows ``X`` of ``leads``
    leads side by side: the leads, then (``record_median``) each lead against its record's
    median beat."""
    X = np.asarray(X, dtype=np.float32)
    width = beat_width(X.shape[1], leads)

    def as_channels(rows: np.ndarray) -> np.ndarray:
        return rows.reshape(len(rows), leads, width).transpose(0, 2, 1)

    if channels(mode) == 1:
        return np.ascontiguousarray(as_channels(X))
    if records is None:
        raise ValueError(f"beat_normalization={mode} needs each beat's record (the beat sidecar)")
    relative = X - record_median_beats(X, records)
    return np.ascontiguousarray(np.concatenate([as_channels(X), as_channels(relative)], axis=-1))
