"""Which lead of a record without MLII to read, from its beats' shape, without labels: the
lead whose median beat looks most like the reference beat, the median beat of the data a
model trained on (``code/data.py wfdb --lead-like``).

A model trained on MLII misses far more of another database's ventricular beats when it
reads a lead unlike MLII. Databases such as SVDB name their leads ECG1 and ECG2, so the name
cannot say which lead is MLII-like; the beats can. The comparison covers the QRS complex
and the start of the ST segment (``SHAPE_WINDOW_S`` from the R peak): the part of a beat
that differs most between leads and least with the rhythm, since a row's tail holds
however much of the next interval the record's rate leaves. How well it picks MLII on DS1
is in docs/data.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..cli import UserError
from .classes import MITBIH_FILES

SHAPE_WINDOW_S = 0.16


def shape_window(before_r: int, target_fs: float) -> slice:
    """The samples of a row compared between leads: ``SHAPE_WINDOW_S`` from the R peak,
    which sits ``before_r`` samples into the row."""
    return slice(before_r, before_r + round(SHAPE_WINDOW_S * target_fs))


def median_beat(X: np.ndarray, records: np.ndarray | None = None) -> np.ndarray:
    """The median beat of rows ``X``; with ``records``, the median of each record's median
    beat, so that no patient with many beats outweighs the others."""
    if records is None:
        return np.median(X, axis=0)
    return np.median([np.median(X[records == r], axis=0) for r in np.unique(records)], axis=0)


def likeness(beat: np.ndarray, reference: np.ndarray, window: slice) -> float:
    """Pearson correlation of two median beats over ``window`` (a flat beat: -1)."""
    a, b = beat[window], reference[window]
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return -1.0
    return float(np.corrcoef(a, b)[0, 1])


def most_alike(beats: dict[str, np.ndarray], reference: np.ndarray,
               window: slice) -> tuple[str, dict[str, float]]:
    """(the lead whose median beat is most like ``reference``, every lead's likeness);
    ``beats``: each lead's median beat, in the record's channel order (the first wins a tie)."""
    scores = {lead: round(likeness(beat, reference, window), 3) for lead, beat in beats.items()}
    return max(scores, key=scores.get), scores


def reference_csv(path: str | os.PathLike) -> Path:
    """The beat CSV ``--lead-like`` names: the file, or ``mitbih_train.csv`` in a folder."""
    path = Path(path)
    return path / MITBIH_FILES["train"] if path.is_dir() else path


def reference_beat(csv: Path, beat_samples: int, leads: int = 1) -> np.ndarray:
    """The median beat of a beat CSV in its first lead, per record when its beat sidecar
    names them. UserError when its rows are not ``leads`` x ``beat_samples`` wide."""
    from . import sidecar
    from .kaggle_csv import load_csv

    X, _ = load_csv(csv)
    if X.shape[1] != beat_samples * leads:
        raise UserError(f"--lead-like {csv}: its rows are {X.shape[1]} samples wide, the "
                        f"conversion's {beat_samples * leads}; give the data the model "
                        "trained on, converted with the same --beat-samples and --two-leads")
    X = X[:, :beat_samples]
    beside = sidecar.read_beside(csv, len(X))
    return median_beat(X, None if beside is None else beside[0])
