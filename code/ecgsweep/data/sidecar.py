"""The per-beat sidecar of a Kaggle-format CSV: which record each beat comes from, where
its R peak is, and its RR-interval features.

The CSV stays exactly the Kaggle format (187 samples + label), so everything that reads
it keeps working; ``<name>.beats.csv`` beside ``<name>.csv`` holds one row per beat, in the
same order, with a header:

    record, r_peak, pre_rr, post_rr, local_rr, record_rr, pre_ratio, post_ratio,
    local_ratio, pre_local_ratio, local_spread, local_irregularity

RR intervals (seconds) come from the reference annotations, every QRS annotation counted
(also beats whose class is not kept): ``pre_rr`` and ``post_rr`` to the previous and next
beat, ``local_rr`` the mean of the ``LOCAL_RR_BEATS`` intervals around the beat,
``record_rr`` the record's mean RR. The ratios divide by the record mean (and pre by
local): the per-patient normalization of the inter-patient literature (de Chazal et al.
2004; Mar et al. 2011; Zhang et al. 2014), which makes a premature beat stand out
whatever the patient's heart rate. Two measures of how irregular the rhythm around the
beat is, both over the local mean: ``local_spread``, the standard deviation of the local
intervals, and ``local_irregularity``, the median absolute difference between successive
intervals among the ``IRREGULARITY_RR_BEATS`` around the beat. Both are high all along
atrial fibrillation, whose short intervals are not premature beats; the median ignores
an occasional premature beat's own two differences, so in sinus rhythm it stays near 0
at the premature beat too, where the standard deviation rises.

The record's mean fails as a reference where ectopic beats are common: a record whose
premature beats are a third of all beats, or whose rate drifts over a Holter half-hour,
shifts it. The rhythm features therefore take as reference ``ref_rr``, the median of the
``REFERENCE_RR_BEATS`` intervals around the beat (about four minutes: the underlying
rhythm as long as ectopic beats, runs of them included, are fewer than half of them, while
it follows the slow drift of the rate): ``pre_ref_ratio``,
``post_ref_ratio``, ``local_ref_ratio``, and ``post_pre_ratio`` (the pause after a
premature beat, which needs no reference at all). ``rhythm_irregularity`` tells atrial
fibrillation from a regular pattern of ectopic beats: the smallest, over lags 1 to 3
(``PATTERN_LAGS``), of the median absolute difference between intervals that many apart,
over the reference. Bigeminy and trigeminy repeat at lag 2 or 3 and read near 0 there;
fibrillation is irregular at every lag.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..cli import DataFormatError
from ..params import RECORD_SCALED_RR
from ..sweep.files import replaced_whole
from .kaggle_csv import csv_stem

LOCAL_RR_BEATS = 10  # intervals averaged for local_rr, centred on the beat
IRREGULARITY_RR_BEATS = 20  # intervals whose successive differences give local_irregularity
REFERENCE_RR_BEATS = 300  # intervals whose median is the rhythm's reference, ref_rr: about 4 min
PATTERN_LAGS = (1, 2, 3)  # lags of rhythm_irregularity: bigeminy repeats at 2, trigeminy at 3
RR_SECONDS = ("pre_rr", "post_rr", "local_rr", "record_rr")
RR_RATIOS = ("pre_ratio", "post_ratio", "local_ratio", "pre_local_ratio", "local_spread",
             "local_irregularity")
RHYTHM_SECONDS = ("ref_rr",)
LOCAL_RATIOS = ("pre_local_ratio", "local_spread", "local_irregularity")  # need no reference
# The intervals' timing alone: the ratios without the two spread measures, so the model
# judges prematurity and leaves telling fibrillation from frequent ectopy to the S gate.
TIMING_RATIOS = ("pre_ratio", "post_ratio", "local_ratio", "pre_local_ratio")
# Inputs computed from each record's intervals when the beats are fed, not stored in the file.
FED_RR = ("rr_entropy",)
RHYTHM_RATIOS = ("pre_ref_ratio", "post_ref_ratio", "local_ref_ratio", "post_pre_ratio",
                 "rhythm_irregularity")
RR_FEATURES = RR_SECONDS + RR_RATIOS + RHYTHM_SECONDS + RHYTHM_RATIOS
COLUMNS = ("record", "r_peak") + RR_FEATURES
SUFFIX = ".beats.csv"


def sidecar_path(csv_path: str | os.PathLike) -> Path:
    """data/mitbih_train.csv (or .csv.gz) -> data/mitbih_train.beats.csv"""
    path = Path(csv_path)
    return path.with_name(csv_stem(path) + SUFFIX)


def rr_features(qrs_samples: np.ndarray, fs: float) -> np.ndarray:
    """RR features (n x len(RR_FEATURES), seconds and ratios) of every QRS annotation.

    The first beat has no previous interval and the last no next one: each borrows its
    other interval. A record of one beat has no rhythm: its features are 0 and ratios 1.
    """
    samples = np.asarray(qrs_samples, dtype=np.float64)
    n = len(samples)
    if n < 2:
        seconds = [name in RR_SECONDS + RHYTHM_SECONDS for name in RR_FEATURES]
        return np.where(seconds, 0.0, 1.0) * np.ones((n, len(RR_FEATURES)))
    rr = np.diff(samples) / fs  # rr[i] is between beat i and i+1
    pre = np.concatenate([[rr[0]], rr])
    post = np.concatenate([rr, [rr[-1]]])
    half = LOCAL_RR_BEATS // 2
    cumulative = np.concatenate([[0.0], np.cumsum(rr)])
    squares = np.concatenate([[0.0], np.cumsum(rr ** 2)])
    # intervals rr[i-half .. i+half-1] around beat i (clipped at the record's ends)
    lo = np.clip(np.arange(n) - half, 0, len(rr) - 1)
    hi = np.clip(np.arange(n) + half, lo + 1, len(rr))
    local = (cumulative[hi] - cumulative[lo]) / (hi - lo)
    local_var = (squares[hi] - squares[lo]) / (hi - lo) - local ** 2
    spread = np.sqrt(np.maximum(local_var, 0.0)) / local
    record = np.full(n, rr.mean())
    irregularity = _successive_difference_median(rr) / local
    reference = _window_median(rr, REFERENCE_RR_BEATS)
    pattern = np.min([_lag_difference_median(rr, lag) for lag in PATTERN_LAGS], axis=0)
    return np.column_stack([pre, post, local, record, pre / record, post / record,
                            local / record, pre / local, spread, irregularity,
                            reference, pre / reference, post / reference, local / reference,
                            post / pre, pattern / reference])


def _windows_around(values: np.ndarray, n: int, width: int, before: int) -> np.ndarray:
    """(n, width) windows of ``values``, NaN past the ends: beat i sees
    values[i - before .. i - before + width - 1]."""
    padded = np.concatenate([np.full(before, np.nan), values, np.full(width, np.nan)])
    return np.lib.stride_tricks.sliding_window_view(padded, width)[:n]


def _window_median(rr: np.ndarray, width: int) -> np.ndarray:
    """Per beat (len(rr) + 1 of them), the median of the ``width`` intervals around it:
    rr[i - width//2 .. i + width//2 - 1] (fewer at a record's ends)."""
    return np.nanmedian(_windows_around(rr, len(rr) + 1, width, width // 2), axis=1)


def _lag_difference_median(rr: np.ndarray, lag: int) -> np.ndarray:
    """Per beat (len(rr) + 1 of them), the median of |rr[j+lag] - rr[j]| over the
    ``IRREGULARITY_RR_BEATS`` intervals around it, rr[i-half .. i+half-1] (fewer at a
    record's ends; 0 where the record has no two intervals ``lag`` apart)."""
    n = len(rr) + 1
    if len(rr) <= lag:
        return np.zeros(n)
    diffs = np.abs(rr[lag:] - rr[:-lag])
    half = IRREGULARITY_RR_BEATS // 2
    return np.nanmedian(_windows_around(diffs, n, IRREGULARITY_RR_BEATS - lag, half), axis=1)


def _successive_difference_median(rr: np.ndarray) -> np.ndarray:
    """Per beat, the median of |rr[j+1] - rr[j]| over the intervals around it."""
    return _lag_difference_median(rr, 1)


def write(path: str | os.PathLike, records: np.ndarray, r_peaks: np.ndarray,
          rr: np.ndarray) -> Path:
    """Write the sidecar atomically (a temp file in the same folder, then rename)."""
    import pandas as pd

    path = Path(path)
    frame = pd.DataFrame(np.asarray(rr, dtype=np.float64), columns=list(RR_FEATURES))
    frame.insert(0, "r_peak", np.asarray(r_peaks, dtype=np.int64))
    frame.insert(0, "record", np.asarray(records).astype(str))
    with replaced_whole(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6f")
    return path


def read(path: str | os.PathLike, n_beats: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(records str, r_peaks int64, rr float32 n x len(RR_FEATURES)) of a sidecar, checked
    against the CSV it belongs to: same number of rows, every column, finite values."""
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"record": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataFormatError(f"{path}: not a beat sidecar ({e})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{path}: missing column(s) {', '.join(missing)}; a beat sidecar "
                              f"has {', '.join(COLUMNS)}: convert the records again with "
                              "`code/data.py wfdb`")
    if len(frame) != n_beats:
        raise DataFormatError(f"{path}: {len(frame)} rows but its CSV has {n_beats} beats; the "
                              "sidecar is out of step with the CSV: convert again with "
                              "`code/data.py wfdb`, or delete the sidecar")
    rr = frame[list(RR_FEATURES)].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(rr)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataFormatError(f"{path}, row {row + 2}, column {RR_FEATURES[col]}: "
                              f"{frame.iat[row, col + 2]!r} is not a finite number")
    if frame["record"].isna().any():
        row = int(np.argmax(frame["record"].isna().to_numpy()))
        raise DataFormatError(f"{path}, row {row + 2}, column record: empty record name")
    return (frame["record"].to_numpy(dtype=str), frame["r_peak"].to_numpy(dtype=np.int64),
            rr.astype(np.float32))


def read_beside(csv_path: str | os.PathLike, n_beats: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``read`` of the sidecar beside a CSV of ``n_beats`` beats; None when it has none."""
    path = sidecar_path(csv_path)
    return read(path, n_beats) if path.is_file() else None


SCALED_BY_REFERENCE = ("pre_rr", "post_rr", "local_rr")
RR_COLUMNS_BY_NORMALIZATION = {
    "record": RR_RATIOS,
    "record_timing": TIMING_RATIOS,
    "record_entropy": TIMING_RATIOS + ("rr_entropy",),
    "none": RR_SECONDS,
    "both": RR_SECONDS + RR_RATIOS,
    "rhythm": LOCAL_RATIOS + RHYTHM_RATIOS,
    "record_p75": SCALED_BY_REFERENCE + LOCAL_RATIOS,
}
# Runs of premature beats, even a third of a record's, pull its mean interval down, not this.
REFERENCE_PERCENTILE = 75.0


def rr_columns(normalization: str) -> list[int]:
    """Columns of RR_FEATURES a model sees: ratios to the record's mean (record), the same
    without the spread measures (record_timing, and record_entropy beside the ``FED_RR``
    input), seconds (none), both, ratios to the local rhythm's reference (rhythm), or the
    intervals that ``reference_scaled`` divides by the record's 75th-percentile interval
    (record_p75)."""
    chosen = RR_COLUMNS_BY_NORMALIZATION[normalization]
    return [RR_FEATURES.index(name) for name in chosen if name not in FED_RR]


def record_reference(pre_rr: np.ndarray, records: np.ndarray, rows: Any = None) -> np.ndarray:
    """For each beat (or each of ``rows``, any NumPy index), the REFERENCE_PERCENTILE-th
    percentile of the preceding intervals of all its record's beats (seconds): the record's
    usual interval where premature beats are common enough to pull its mean down. Only the
    records ``rows`` touch are measured."""
    pre_rr, records = np.asarray(pre_rr, dtype=np.float64), np.asarray(records)
    wanted = records if rows is None else records[rows]
    names, which = np.unique(wanted, return_inverse=True)
    per_record = np.array([np.percentile(pre_rr[records == name], REFERENCE_PERCENTILE)
                           for name in names])
    return per_record[which].reshape(wanted.shape)


def reference_scaled(rr: np.ndarray, records: np.ndarray, normalization: str,
                     rows: Any = None) -> np.ndarray:
    """The model's RR columns for ``normalization`` from sidecar rows ``rr`` (n x
    len(RR_FEATURES)) of beats from ``records``, for every beat or for ``rows`` of them:
    the file's columns as they are, or, for a RECORD_SCALED_RR one, its interval columns
    over each beat's record reference (taken over all the record's beats in ``rr``)."""
    chosen = (rr if rows is None else rr[rows])[..., rr_columns(normalization)]
    chosen = chosen.astype(np.float64)
    if normalization not in RECORD_SCALED_RR:
        return chosen
    reference = record_reference(rr[:, RR_FEATURES.index("pre_rr")], records, rows)
    names = RR_COLUMNS_BY_NORMALIZATION[normalization]
    for i, name in enumerate(names):
        if name in SCALED_BY_REFERENCE:
            chosen[..., i] /= np.where(reference > 0, reference, 1.0)
    return chosen
