"""How early a beat must come to be called premature: a fixed share of the intervals around
it, or a threshold set by its own record's rhythm.

A Holter system calls a beat of normal shape premature when its interval falls below a fixed
share (0.8-0.9) of the intervals around it. A patient whose sinus rhythm is steady shows an
atrial premature beat that comes only 10% early plainly against their own rhythm, while a
patient with sinus arrhythmia has normal beats that early. So a record's own threshold is
its median ``pre_local_ratio`` minus ``spread`` robust standard deviations (the median
absolute deviation, scaled to a normal's) over the beats the model calls N. The fixed share
stays the least threshold, and no threshold rises above ``RATIO_CAP``: in a record steady to
the millisecond a beat 3% early is still sinus rhythm. The statistics read no label.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import median_abs_deviation

RATIO_CAP = 0.95  # no record's threshold rises above this share of the intervals around
MIN_RECORD_BEATS = 20  # beats called N a record needs for its own threshold


def premature_thresholds(pre_local_ratio: np.ndarray, records: np.ndarray | None,
                         called_n: np.ndarray, ratio: float, spread: float) -> np.ndarray:
    """Per beat, the ``pre_local_ratio`` below which it is premature: ``ratio``, raised in each
    record with at least ``MIN_RECORD_BEATS`` beats in ``called_n`` to that record's median
    minus ``spread`` robust standard deviations of it over those beats, up to ``RATIO_CAP``
    (``ratio`` itself is never lowered). ``records`` is read only when ``spread`` is on."""
    thresholds = np.full(len(pre_local_ratio), float(ratio))
    if spread <= 0:
        return thresholds
    for name in np.unique(records):
        rows = records == name
        normal = pre_local_ratio[rows & called_n]
        if len(normal) < MIN_RECORD_BEATS:
            continue
        own = np.median(normal) - spread * median_abs_deviation(normal, scale="normal")
        thresholds[rows] = max(float(ratio), min(RATIO_CAP, float(own)))
    return thresholds
