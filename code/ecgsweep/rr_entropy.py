"""How disordered the rhythm around each beat is: the Shannon entropy of its RR intervals.

Atrial fibrillation's intervals spread over a wide continuous range, so a histogram of the
intervals around a beat fills many bins; sinus rhythm fills one or two, and frequent
premature beats, bigeminy or runs of tachycardia fill a few, each of them at its own
interval (the sinus one, the coupling interval, the pause after it, the run's rate). The
entropy of that histogram, over a window long enough to sample it (the AF detectors of
Dash et al. 2009 use 128 beats, Tateno & Glass 2001 50), tells fibrillation from ectopy
where the difference between successive intervals cannot: every second interval of
bigeminy is as different from the one before as fibrillation's.

The intervals are binned on a log scale (``BIN_WIDTH`` 0.1, about 10% apart), so the
measure reads the same at any heart rate. It is computed from each beat's preceding
interval, the beats of each record taken in their order, at the time of scoring: it needs
no column of the beat sidecar beyond ``pre_rr``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .data.datasets import Split

WINDOW_BEATS = 64  # intervals in each beat's histogram, centred on it (fewer at a record's ends)
BIN_WIDTH = 0.1  # of the log interval: bins about 10% apart


def rr_entropy(pre_rr: np.ndarray, records: np.ndarray) -> np.ndarray:
    """Per beat, the entropy (bits) of the histogram of the ``WINDOW_BEATS`` intervals
    around it within its record; 0 where all of them fall in one bin."""
    pre_rr = np.asarray(pre_rr, dtype=np.float64)
    records = np.asarray(records).astype(str)
    entropy = np.zeros(len(pre_rr))
    for record in np.unique(records):
        rows = np.flatnonzero(records == record)
        entropy[rows] = _entropy_in_record(pre_rr[rows])
    return entropy


def split_entropy(split: "Split", needed_by: str) -> np.ndarray:
    """``rr_entropy`` of every beat of ``split``, from its beat sidecar's ``pre_rr`` and
    records; a ValueError saying that ``needed_by`` needs each beat's record when the split
    names none."""
    from .data import sidecar

    if split.records is None:
        raise ValueError(f"{needed_by} needs each beat's record (the beat sidecar)")
    return rr_entropy(split.rr[:, sidecar.RR_FEATURES.index("pre_rr")], split.records)


def _entropy_in_record(pre_rr: np.ndarray) -> np.ndarray:
    n = len(pre_rr)
    bins = np.floor(np.log(np.maximum(pre_rr, 1e-3)) / BIN_WIDTH).astype(np.int64)
    bins -= bins.min()
    one_hot = np.zeros((n + 1, bins.max() + 1))
    one_hot[np.arange(1, n + 1), bins] = 1.0
    cumulative = np.cumsum(one_hot, axis=0)  # row i: how many of the first i beats are in each bin
    half = WINDOW_BEATS // 2
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half, 0, n)
    hi = np.maximum(hi, lo + 1)
    counts = cumulative[hi] - cumulative[lo]
    p = counts / counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(p), 0.0)
    return -terms.sum(axis=1)
